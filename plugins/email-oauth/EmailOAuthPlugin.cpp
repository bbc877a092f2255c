// The e-mail channel for Gmail and Microsoft 365 with OAuth2: no password ever reaches the host.
//
// Sign-in is the authorization-code flow with PKCE (S256) and the host's single-use state; the
// mailbox address comes from the provider (ID token or user info). Access and refresh tokens are
// stored as secrets; the shared mail engine (plugins/email-common) asks for a current access
// token before every login and send, and this plugin refreshes it shortly before it expires,
// saving the rotated refresh token every time. A refused refresh puts the account in
// "reauth_needed" with the provider's reason in the integration log.
//
// Microsoft 365 tenants may turn SMTP AUTH off (535 5.7.139). With graph_send the sign-in also
// asks for Graph's Mail.Send, and such a mailbox sends through Graph sendMail instead: the whole
// MIME message, with a Graph token of its own got from the same refresh token.
#include <connector/sdk.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>

#include "MailEngine.hpp"
#include "OAuthClient.hpp"
#include "Pkce.hpp"

namespace {

using connector::email::AccessTokenSource;
using connector::email::FailureKind;
using connector::email::MailEngine;
using connector::email::MailFailure;
using connector::email::MailServers;
using connector::email::Security;
using connector::email::ServerAddress;
using connector::email::SyncSettings;
using connector::email_oauth::OAuthFailure;
using connector::email_oauth::Provider;
using connector::email_oauth::Tokens;
using connector::sdk::fail;
using connector::sdk::Host;
using connector::sdk::Json;
using connector::sdk::LinkKeys;
using connector::sdk::Result;
using connector::sdk::Status;

const char *kPendingKey = "oauth.pending";  // secret: state, PKCE verifier, provider
const char *kTokensKey = "oauth.tokens";    // secret: access and refresh token, expiry
const char *kMailboxKey = "oauth.mailbox";  // provider and address (not secret)
const char *kGraphTokenKey = "oauth.graph";  // secret: Microsoft Graph access token, expiry

const char *kGraphMailSend = "https://graph.microsoft.com/Mail.Send";

Json label(const char *en, const char *pt) { return {{"en", en}, {"pt-BR", pt}}; }

Json setting(const char *key, const char *type, Json value, const char *description) {
  return {
      {"key", key}, {"type", type}, {"default", std::move(value)}, {"description", description}};
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "imaps://host:993" (implicit TLS) or "imap://host:143" (STARTTLS); smtps/smtp likewise.
std::optional<ServerAddress> server_of(const std::string &url) {
  static const std::regex kUrl(R"(^(imaps?|smtps?)://([^:/]+):(\d+)/?$)");
  std::smatch m;
  if (!std::regex_match(url, m, kUrl)) return std::nullopt;
  const int port = std::stoi(m[3]);
  if (port <= 0 || port > 65535) return std::nullopt;
  const bool implicit = m[1].str().back() == 's';
  return ServerAddress{m[2], static_cast<uint16_t>(port),
                       implicit ? Security::kImplicitTls : Security::kStartTls};
}

// A client secret from a file, an environment variable or the YAML itself, in that order. A
// file or variable that is named but gives nothing is an error naming the setting: a token
// request without the secret would only fail later, at the provider, in far vaguer words.
struct Secret {
  std::string value;
  std::string error;
};

Secret secret_from(const Json &s, const std::string &key) {
  const Json file_setting = s.value(key + "_file", Json());
  if (file_setting.is_string() && !file_setting.get<std::string>().empty()) {
    const std::string file = file_setting.get<std::string>();
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      return {"", key + "_file names a file that does not exist or cannot be read by the host"};
    }
    std::stringstream text;
    text << in.rdbuf();
    std::string value = text.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r' ||
                              value.back() == ' ' || value.back() == '\t')) {
      value.pop_back();
    }
    if (value.empty()) return {"", key + "_file names a file which is empty"};
    return {value, ""};
  }
  const Json env_setting = s.value(key + "_env", Json());
  if (env_setting.is_string() && !env_setting.get<std::string>().empty()) {
    const std::string env = env_setting.get<std::string>();
    const char *value = std::getenv(env.c_str());
    if (value == nullptr || *value == '\0') {
      return {"", key + "_env names the environment variable " + env +
                      ", which is not set (or empty) in the host's environment"};
    }
    return {value, ""};
  }
  return {s.value(key, std::string()), ""};
}

// One provider with its mail servers and what its sign-in needs.
struct ProviderSetup {
  Provider oauth;
  ServerAddress imap;
  ServerAddress smtp;
  bool server_saves_sent = true;
  // Microsoft with graph_send: Graph's sendMail, used when SMTP AUTH is off; empty otherwise.
  std::string graph_send_url;
};

// A Microsoft tenant as Entra names it: common, organizations, consumers, a GUID or a domain.
bool valid_tenant(const std::string &tenant) {
  static const std::regex kTenant(R"(^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$)");
  return std::regex_match(tenant, kTenant);
}

class EmailOAuthPlugin final : public connector::sdk::Plugin {
 public:
  explicit EmailOAuthPlugin(Host host) : Plugin(host) {}

  Json descriptor() const override {
    Json provider = {{"name", "provider"},
                     {"type", "select"},
                     {"label", label("Provider", "Provedor")},
                     {"required", true},
                     {"default", "google"},
                     {"choices",
                      {{{"value", "google"}, {"label", label("Gmail (Google)", "Gmail (Google)")}},
                       {{"value", "microsoft"},
                        {"label", label("Microsoft 365 / Outlook", "Microsoft 365 / Outlook")}}}}};
    return {
        {"id", "email-oauth"},
        {"name", label("E-mail (Gmail, Microsoft 365)", "E-mail (Gmail, Microsoft 365)")},
        {"version", "0.1.0"},
        {"capabilities", {"oauth", "send", "media", "receive"}},
        {"connect_fields", {provider}},
        {"settings",
         {setting("google_client_id", "string", "", "OAuth client id registered with Google."),
          setting("google_client_secret", "string", "", "Its secret (prefer _env or _file)."),
          setting("google_client_secret_env", "string", "",
                  "Environment variable holding the Google client secret."),
          setting("google_client_secret_file", "string", "",
                  "File holding the Google client secret."),
          setting("google_authorize_url", "string",
                  "https://accounts.google.com/o/oauth2/v2/auth", "Google's authorization page."),
          setting("google_token_url", "string", "https://oauth2.googleapis.com/token",
                  "Google's token endpoint."),
          setting("google_revoke_url", "string", "https://oauth2.googleapis.com/revoke",
                  "Google's revocation endpoint."),
          setting("google_userinfo_url", "string",
                  "https://openidconnect.googleapis.com/v1/userinfo", "Google's user info."),
          setting("google_imap", "string", "imaps://imap.gmail.com:993", "Gmail's IMAP server."),
          setting("google_smtp", "string", "smtps://smtp.gmail.com:465", "Gmail's SMTP server."),
          setting("microsoft_client_id", "string", "",
                  "Application (client) id registered in Microsoft Entra."),
          setting("microsoft_client_secret", "string", "", "Its secret (prefer _env or _file)."),
          setting("microsoft_client_secret_env", "string", "",
                  "Environment variable holding the Microsoft client secret."),
          setting("microsoft_client_secret_file", "string", "",
                  "File holding the Microsoft client secret."),
          setting("microsoft_tenant", "string", "common",
                  "Tenant id or domain (common: any organisation)."),
          setting("microsoft_authority", "string", "https://login.microsoftonline.com",
                  "Microsoft identity platform."),
          setting("microsoft_userinfo_url", "string", "https://graph.microsoft.com/oidc/userinfo",
                  "Microsoft's user info."),
          setting("graph_send", "boolean", false,
                  "Microsoft: also ask for Graph's Mail.Send, and send through Graph sendMail "
                  "when the tenant has SMTP AUTH turned off (535 5.7.139)."),
          setting("microsoft_graph_url", "string", "https://graph.microsoft.com",
                  "Microsoft Graph's base address."),
          setting("microsoft_imap", "string", "imaps://outlook.office365.com:993",
                  "Microsoft 365 IMAP server."),
          setting("microsoft_smtp", "string", "smtp://smtp.office365.com:587",
                  "Microsoft 365 SMTP server (STARTTLS)."),
          setting("ca_file", "string", "", "A CA file to trust in addition to the system's."),
          setting("refresh_margin_s", "integer", 300,
                  "Access tokens are refreshed this long before they expire."),
          setting("initial_sync_days", "integer", 30,
                  "How many days back the first sync reaches (0: the whole inbox)."),
          setting("max_message_mb", "integer", 50,
                  "Mails larger than this are recorded with their headers only."),
          setting("idle_restart_s", "integer", 600,
                  "IMAP IDLE is renewed this often (also the liveness check)."),
          setting("timeout_s", "integer", 30, "Deadline of one network step."),
          setting("case_id_pattern", "string", R"(\[#(\d+)\])",
                  "Regular expression of the case id in a subject; its first group is the id.")}}};
  }

  Status configure(const Json &s) override {
    SyncSettings sync;
    sync.initial_sync_days = s.value("initial_sync_days", 30);
    sync.max_message_bytes = static_cast<uint64_t>(s.value("max_message_mb", 50)) << 20;
    sync.idle_restart = std::chrono::seconds(s.value("idle_restart_s", 600));
    sync.timeout = std::chrono::seconds(s.value("timeout_s", 30));
    sync.case_id_pattern = s.value("case_id_pattern", std::string(R"(\[#(\d+)\])"));
    try {
      std::regex check(sync.case_id_pattern);
    } catch (const std::regex_error &) {
      return fail(CN_ERR_INVALID_ARGUMENT, "case_id_pattern is not a valid regular expression");
    }
    ca_file_ = s.value("ca_file", std::string());
    send_timeout_ms_ = static_cast<long>(sync.timeout.count()) * 2;
    refresh_margin_ms_ = int64_t{s.value("refresh_margin_s", 300)} * 1000;

    ProviderSetup google;
    google.oauth.id = "google";
    google.oauth.client_id = s.value("google_client_id", std::string());
    const Secret google_secret = secret_from(s, "google_client_secret");
    if (!google_secret.error.empty()) return fail(CN_ERR_INVALID_ARGUMENT, google_secret.error);
    google.oauth.client_secret = google_secret.value;
    google.oauth.authorize_url = s.value("google_authorize_url", std::string());
    google.oauth.token_url = s.value("google_token_url", std::string());
    google.oauth.revoke_url = s.value("google_revoke_url", std::string());
    google.oauth.userinfo_url = s.value("google_userinfo_url", std::string());
    // Without offline access and consent Google sends no refresh token.
    google.oauth.scopes = {"https://mail.google.com/", "openid", "email"};
    google.oauth.authorize_extras = {{"access_type", "offline"}, {"prompt", "consent"}};
    auto google_imap = server_of(s.value("google_imap", std::string()));
    auto google_smtp = server_of(s.value("google_smtp", std::string()));
    if (!google_imap || !google_smtp) {
      return fail(CN_ERR_INVALID_ARGUMENT,
                  "google_imap and google_smtp must look like imaps://host:port");
    }
    google.imap = *google_imap;
    google.smtp = *google_smtp;

    ProviderSetup microsoft;
    const std::string tenant = s.value("microsoft_tenant", std::string("common"));
    if (!valid_tenant(tenant)) {
      return fail(CN_ERR_INVALID_ARGUMENT,
                  "microsoft_tenant must be common, organizations, consumers, the tenant's id "
                  "(a GUID) or its domain");
    }
    const std::string authority = s.value("microsoft_authority", std::string()) + "/" + tenant;
    microsoft.oauth.id = "microsoft";
    microsoft.oauth.client_id = s.value("microsoft_client_id", std::string());
    const Secret microsoft_secret = secret_from(s, "microsoft_client_secret");
    if (!microsoft_secret.error.empty()) {
      return fail(CN_ERR_INVALID_ARGUMENT, microsoft_secret.error);
    }
    microsoft.oauth.client_secret = microsoft_secret.value;
    microsoft.oauth.authorize_url = authority + "/oauth2/v2.0/authorize";
    microsoft.oauth.token_url = authority + "/oauth2/v2.0/token";
    microsoft.oauth.userinfo_url = s.value("microsoft_userinfo_url", std::string());
    microsoft.oauth.scopes = {"https://outlook.office.com/IMAP.AccessAsUser.All",
                              "https://outlook.office.com/SMTP.Send", "offline_access", "openid",
                              "email"};
    // Microsoft gives one token per resource: refreshes name the mail scopes, so the token for
    // IMAP and SMTP never turns into a Graph token.
    microsoft.oauth.refresh_scope =
        "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send "
        "offline_access";
    if (s.value("graph_send", false)) {
      microsoft.oauth.scopes.push_back(kGraphMailSend);
      microsoft.graph_send_url =
          s.value("microsoft_graph_url", std::string("https://graph.microsoft.com")) +
          "/v1.0/me/sendMail";
    }
    microsoft.oauth.authorize_extras = {{"prompt", "select_account"}};
    auto ms_imap = server_of(s.value("microsoft_imap", std::string()));
    auto ms_smtp = server_of(s.value("microsoft_smtp", std::string()));
    if (!ms_imap || !ms_smtp) {
      return fail(CN_ERR_INVALID_ARGUMENT,
                  "microsoft_imap and microsoft_smtp must look like imaps://host:port");
    }
    microsoft.imap = *ms_imap;
    microsoft.smtp = *ms_smtp;

    for (auto *p : {&google, &microsoft}) {
      p->oauth.ca_file = ca_file_;
      // Half a network step: a sign-in or refresh must end well before the host gives up.
      p->oauth.timeout_ms = static_cast<long>(sync.timeout.count() / 2);
      providers_[p->oauth.id] = *p;
    }
    engine_ = std::make_unique<MailEngine>(host(), sync);
    return connector::sdk::ok();
  }

  Result<Json> oauth_start(const std::string &id, const Json &request) override {
    const Json values = request.value("values", Json::object());
    const std::string provider_id = values.value("provider", std::string("google"));
    auto provider = configured(provider_id);
    if (!provider) return provider.error();
    const std::string state = request.value("state", std::string());
    const std::string redirect_uri = request.value("redirect_uri", std::string());
    if (state.empty() || redirect_uri.empty()) {
      return fail(CN_ERR_INVALID_ARGUMENT, "the host gave no state or redirect URI");
    }
    const std::string verifier = connector::email_oauth::random_base64url(48);
    const Json pending = {{"state", state}, {"verifier", verifier}, {"provider", provider_id}};
    if (host().put(id, kPendingKey, pending.dump(), true) != CN_OK) {
      return fail(CN_ERR_STORAGE, "could not store the sign-in attempt");
    }
    return Json{{"authorization_url",
                 connector::email_oauth::authorization_url(
                     provider.value()->oauth, redirect_uri, state,
                     connector::email_oauth::pkce_challenge(verifier))}};
  }

  Status connect(const std::string &id, const Json &params) override {
    if (!engine_) return fail(CN_ERR_STATE, "the plugin is not configured");
    if (params.value("resume", false)) return resume(id);
    if (params.contains("oauth")) return finish_sign_in(id, params["oauth"]);
    return fail(CN_ERR_UNSUPPORTED, "sign in with the provider's button (Connect with Google or "
                                    "Microsoft); this channel takes no password");
  }

  Status disconnect(const std::string &id, bool forget) override {
    if (engine_) engine_->stop(id);
    if (forget) {
      // Revoke where the provider can (Google); Microsoft has no revocation endpoint for a
      // single grant, so deleting our copy is all that can be done there.
      auto stored = tokens_of(id);
      auto mailbox = mailbox_of(id);
      if (stored && mailbox) {
        auto provider = providers_.find(mailbox->value("provider", ""));
        if (provider != providers_.end()) {
          if (auto failure = connector::email_oauth::revoke_token(provider->second.oauth,
                                                                  stored->refresh_token)) {
            host().emit_log(id, "warn",
                            "the provider did not confirm revoking the sign-in: " +
                                failure->text());
          }
        }
      }
      for (const char *key : {kTokensKey, kGraphTokenKey, kPendingKey, kMailboxKey, "sync.inbox"}) {
        host().erase(id, key);
      }
    }
    host().emit_status(id, "disconnected");
    return connector::sdk::ok();
  }

  Result<Json> status(const std::string &id) override {
    if (!engine_) return Json{{"type", "status"}, {"state", "disconnected"}};
    return engine_->status(id);
  }

  Result<Json> send(const std::string &id, const Json &message) override {
    if (!engine_) return fail(CN_ERR_STATE, "the plugin is not configured");
    return engine_->send(id, message);
  }

  Result<LinkKeys> link(const Json &message) override {
    if (!engine_) return fail(CN_ERR_STATE, "the plugin is not configured");
    return engine_->link_keys(message);
  }

 private:
  Result<const ProviderSetup *> configured(const std::string &provider_id) const {
    auto it = providers_.find(provider_id);
    if (it == providers_.end()) {
      return fail(CN_ERR_INVALID_ARGUMENT, "unknown provider \"" + provider_id + "\"");
    }
    if (it->second.oauth.client_id.empty()) {
      return fail(CN_ERR_STATE, "the admin has not registered this host with " + provider_id +
                                    " yet (" + provider_id + "_client_id is empty)");
    }
    return &it->second;
  }

  // The provider refuses the host's own registration: the admin's business, not the attendant's.
  static std::string bad_client_words(const std::string &provider_id, const OAuthFailure &failure) {
    return "The provider does not accept this host's registration (" + failure.text() +
           "): an admin must check " + provider_id + "_client_id and the client secret (" +
           provider_id + "_client_secret, _env or _file) against the app registered with " +
           provider_id + "; signing in again does not help until then";
  }

  // Ends a sign-in attempt: status "error" with the reason, which also goes to the log. A
  // mailbox that is connected with an earlier sign-in stays connected: only the log says that
  // the new sign-in failed.
  Status sign_in_failed(const std::string &id, cn_result code, const std::string &why) {
    if (connected(id)) {
      host().emit_log(id, "warn",
                      "A new sign-in failed; the mailbox stays connected with its earlier "
                      "sign-in: " + why);
    } else {
      host().emit_status(id, "error", "", why);
    }
    return fail(code, why);
  }

  bool connected(const std::string &id) {
    if (!tokens_of(id) || !mailbox_of(id)) return false;
    return engine_->status(id).value("state", "") == "connected";
  }

  Status finish_sign_in(const std::string &id, const Json &answer) {
    auto pending_text = host().get(id, kPendingKey);
    Json pending = pending_text ? Json::parse(*pending_text, nullptr, false) : Json();
    if (!pending.is_object() || pending.value("state", "") != answer.value("state", "")) {
      return sign_in_failed(id, CN_ERR_STATE,
                            "This sign-in answer does not belong to the latest sign-in: connect "
                            "again");
    }
    host().erase(id, kPendingKey);  // one code exchange per attempt
    auto provider = configured(pending.value("provider", ""));
    if (!provider) return sign_in_failed(id, provider.error().code, provider.error().message);
    const ProviderSetup &setup = *provider.value();
    if (answer.contains("error")) {
      return sign_in_failed(id, CN_ERR_AUTH, "the provider refused the sign-in: " +
                                                 answer.value("error", std::string()));
    }

    auto exchanged = connector::email_oauth::exchange_code(
        setup.oauth, answer.value("code", ""), pending.value("verifier", ""),
        answer.value("redirect_uri", ""));
    if (auto *failure = std::get_if<OAuthFailure>(&exchanged)) {
      if (failure->bad_client) {
        return sign_in_failed(id, CN_ERR_AUTH, bad_client_words(setup.oauth.id, *failure));
      }
      return sign_in_failed(id, failure->refused ? CN_ERR_AUTH : CN_ERR_NETWORK,
                            "The provider did not accept the sign-in (" + failure->text() +
                                "): connect again");
    }
    Tokens tokens = std::get<Tokens>(exchanged);
    if (tokens.refresh_token.empty()) {
      return sign_in_failed(id, CN_ERR_AUTH,
                            "The provider sent no refresh token (offline access was not "
                            "granted): connect again");
    }
    auto address = connector::email_oauth::mailbox_address(setup.oauth, tokens);
    if (auto *failure = std::get_if<OAuthFailure>(&address)) {
      return sign_in_failed(id, CN_ERR_AUTH, "Signed in, but " + failure->text());
    }
    const Json mailbox = {{"provider", setup.oauth.id}, {"address", std::get<std::string>(address)}};
    if (!save_tokens(id, tokens) || host().put(id, kMailboxKey, mailbox.dump()) != CN_OK) {
      return fail(CN_ERR_STORAGE, "could not store the account's tokens");
    }
    host().emit_log(id, "info", "Signed in with " + setup.oauth.id + " as " +
                                    mailbox.value("address", ""));
    engine_->start(id, servers_for(id, setup, mailbox.value("address", "")), true);
    return connector::sdk::ok();
  }

  Status resume(const std::string &id) {
    auto mailbox = mailbox_of(id);
    if (!mailbox || !tokens_of(id)) {
      host().emit_status(id, "reauth_needed", "", "no stored sign-in: connect again",
                         "credentials_missing");
      return fail(CN_ERR_AUTH, "no stored sign-in: connect again");
    }
    auto provider = configured(mailbox->value("provider", ""));
    if (!provider) return provider.error();
    engine_->start(id, servers_for(id, *provider.value(), mailbox->value("address", "")), false);
    return connector::sdk::ok();
  }

  MailServers servers_for(const std::string &id, const ProviderSetup &setup,
                          const std::string &address) {
    MailServers servers;
    servers.address = address;
    servers.imap = setup.imap;
    servers.smtp = setup.smtp;
    servers.ca_file = ca_file_;
    servers.server_saves_sent = setup.server_saves_sent;
    servers.credentials.user = address;
    const std::string provider_id = setup.oauth.id;
    servers.credentials.access_token_source = [this, id, provider_id] {
      return current_token(id, provider_id);
    };
    if (!setup.graph_send_url.empty()) {
      servers.alternate_sender = [this, id, provider_id](const std::string &mime) {
        return send_through_graph(id, provider_id, mime);
      };
    }
    return servers;
  }

  // Graph sendMail with the whole message (threading headers, Cc, Bcc, attachments and our
  // Message-ID travel inside it). A refused token (401) is refreshed and tried once more.
  std::optional<MailFailure> send_through_graph(const std::string &id,
                                                const std::string &provider_id,
                                                const std::string &mime) {
    auto provider = providers_.find(provider_id);
    if (provider == providers_.end() || provider->second.graph_send_url.empty()) {
      return MailFailure{FailureKind::kProtocol, "Microsoft Graph is not set up for " + provider_id};
    }
    const ProviderSetup &setup = provider->second;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto token = graph_token(id, setup, attempt > 0);
      if (auto *none = std::get_if<MailFailure>(&token)) return *none;
      auto sent = connector::email_oauth::graph_send_mime(
          setup.graph_send_url, std::get<std::string>(token), mime, ca_file_, send_timeout_ms_);
      if (auto *failure = std::get_if<OAuthFailure>(&sent)) {
        return MailFailure{FailureKind::kUnreachable,
                           "Microsoft Graph: cannot send (" + failure->text() + ")"};
      }
      const auto &answer = std::get<connector::email_oauth::HttpAnswer>(sent);
      if (answer.status == 202 || answer.status == 200) {
        host().emit_log(id, "info", "sent through Microsoft Graph (SMTP AUTH is off)");
        return std::nullopt;
      }
      const std::string reason = connector::email_oauth::graph_reason(answer);
      if (answer.status == 401 && attempt == 0) {
        host().debug(id, "Microsoft Graph refused the access token (" + reason +
                             "); refreshing it once");
        continue;
      }
      if (answer.status == 401) {
        return MailFailure{FailureKind::kWrongCredentials,
                           "Microsoft Graph refused the sign-in even with a fresh token (" +
                               reason + "): connect again"};
      }
      if (answer.status == 403) {
        return MailFailure{FailureKind::kWrongCredentials,
                           "Microsoft Graph refused to send from this mailbox (" + reason +
                               "): the sign-in lacks the Mail.Send permission. An admin must "
                               "grant Mail.Send (Microsoft Graph, delegated) to the app "
                               "registration; then connect the mailbox again"};
      }
      if (answer.status == 429) {
        return MailFailure{FailureKind::kUnreachable,
                           "Microsoft Graph is throttling this mailbox (" + reason +
                               "): the mail was not sent, try again later"};
      }
      if (answer.status >= 500) {
        return MailFailure{FailureKind::kUnreachable,
                           "Microsoft Graph failed (" + reason +
                               "): the mail was not sent, try again later"};
      }
      return MailFailure{FailureKind::kProtocol,
                         "Microsoft Graph did not accept the mail (" + reason + ")"};
    }
    return MailFailure{FailureKind::kProtocol, "Microsoft Graph: no answer"};
  }

  // A Graph access token (scope Mail.Send), kept apart from the mail token: Microsoft issues one
  // per resource. Got by refreshing with Graph's scope; the rotated refresh token is saved.
  std::variant<std::string, MailFailure> graph_token(const std::string &id,
                                                     const ProviderSetup &setup, bool fresh) {
    std::lock_guard lock(refresh_mutex_);
    if (!fresh) {
      if (auto text = host().get(id, kGraphTokenKey)) {
        Json cached = Json::parse(*text, nullptr, false);
        if (cached.is_object() &&
            cached.value("expires_at_ms", int64_t{0}) - refresh_margin_ms_ > now_ms()) {
          return cached.value("access_token", "");
        }
      }
    }
    auto tokens = tokens_of(id);
    if (!tokens) {
      return MailFailure{FailureKind::kReauthorisationNeeded,
                         "No stored sign-in: reauthorisation needed, connect again"};
    }
    auto refreshed = connector::email_oauth::refresh_tokens(
        setup.oauth, tokens->refresh_token, std::string(kGraphMailSend) + " offline_access");
    if (auto *failure = std::get_if<OAuthFailure>(&refreshed)) {
      host().emit_log(id, "error",
                      "Microsoft gave no token for Graph sendMail (" + failure->text() + ")");
      return MailFailure{failure->refused ? FailureKind::kWrongCredentials
                                          : FailureKind::kUnreachable,
                         "Microsoft Graph: no token for sending (" + failure->text() +
                             (failure->refused ? "); an admin must grant Mail.Send and the "
                                                 "mailbox connect again"
                                               : ")")};
    }
    const Tokens &graph = std::get<Tokens>(refreshed);
    tokens->refresh_token = graph.refresh_token;  // rotated: the old one no longer works
    const Json cached = {{"access_token", graph.access_token},
                         {"expires_at_ms", graph.expires_at_ms}};
    if (!save_tokens(id, *tokens) || host().put(id, kGraphTokenKey, cached.dump(), true) != CN_OK) {
      host().emit_log(id, "error", "could not store the refreshed tokens");
    }
    host().debug(id, "Microsoft Graph token refreshed");
    return graph.access_token;
  }

  // The engine's AccessTokenSource: the stored access token while it has more than the margin
  // left, otherwise a refreshed one (and the rotated refresh token saved).
  std::variant<std::string, MailFailure> current_token(const std::string &id,
                                                       const std::string &provider_id) {
    std::lock_guard lock(refresh_mutex_);
    auto tokens = tokens_of(id);
    if (!tokens) {
      return MailFailure{FailureKind::kReauthorisationNeeded,
                         "No stored sign-in: reauthorisation needed, connect again"};
    }
    if (tokens->expires_at_ms - refresh_margin_ms_ > now_ms()) return tokens->access_token;
    auto provider = providers_.find(provider_id);
    if (provider == providers_.end()) {
      return MailFailure{FailureKind::kReauthorisationNeeded, "Unknown provider " + provider_id};
    }
    auto refreshed =
        connector::email_oauth::refresh_tokens(provider->second.oauth, tokens->refresh_token);
    if (auto *failure = std::get_if<OAuthFailure>(&refreshed)) {
      if (failure->bad_client) {
        const std::string why = bad_client_words(provider_id, *failure);
        host().emit_log(id, "error", why);
        return MailFailure{FailureKind::kWrongCredentials, why};
      }
      if (!failure->refused) {
        // Throttled, failing or unreachable: the engine tries again later, with backoff.
        return MailFailure{FailureKind::kUnreachable,
                           "Refreshing the access token failed: " + failure->text()};
      }
      host().emit_log(id, "error",
                      "The provider refused to refresh the sign-in (" + failure->text() + ")");
      return MailFailure{FailureKind::kReauthorisationNeeded,
                         "Reauthorisation needed: the provider no longer accepts this sign-in (" +
                             failure->text() + "); connect again"};
    }
    const Tokens &fresh = std::get<Tokens>(refreshed);
    if (!save_tokens(id, fresh)) {
      // The rotated refresh token could not be kept: the next refresh would fail. Say so now.
      host().emit_log(id, "error", "could not store the refreshed tokens");
    }
    host().debug(id, "access token refreshed");
    return fresh.access_token;
  }

  bool save_tokens(const std::string &id, const Tokens &tokens) {
    const Json json = {{"access_token", tokens.access_token},
                       {"refresh_token", tokens.refresh_token},
                       {"expires_at_ms", tokens.expires_at_ms}};
    return host().put(id, kTokensKey, json.dump(), true) == CN_OK;
  }

  std::optional<Tokens> tokens_of(const std::string &id) const {
    auto text = host().get(id, kTokensKey);
    if (!text) return std::nullopt;
    Json json = Json::parse(*text, nullptr, false);
    if (!json.is_object()) return std::nullopt;
    Tokens tokens;
    tokens.access_token = json.value("access_token", "");
    tokens.refresh_token = json.value("refresh_token", "");
    tokens.expires_at_ms = json.value("expires_at_ms", int64_t{0});
    return tokens;
  }

  std::optional<Json> mailbox_of(const std::string &id) const {
    auto text = host().get(id, kMailboxKey);
    if (!text) return std::nullopt;
    Json json = Json::parse(*text, nullptr, false);
    if (!json.is_object()) return std::nullopt;
    return json;
  }

  std::map<std::string, ProviderSetup> providers_;
  std::string ca_file_;
  int64_t refresh_margin_ms_ = 300000;
  long send_timeout_ms_ = 60000;
  std::mutex refresh_mutex_;  // one refresh at a time: a rotated token must not be used twice
  std::unique_ptr<MailEngine> engine_;  // last: stopped before the rest goes away
};

}  // namespace

CONNECTOR_PLUGIN(EmailOAuthPlugin)

#include "OAuthClient.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <chrono>
#include <memory>
#include <mutex>

#include "Pkce.hpp"

namespace connector::email_oauth {
namespace {

struct CurlDeleter {
  void operator()(CURL *c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist *l) const { curl_slist_free_all(l); }
};

size_t collect(char *data, size_t size, size_t n, void *out) {
  static_cast<std::string *>(out)->append(data, size * n);
  return size * n;
}

std::string escaped(const std::string &text) {
  char *e = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
  std::string out = e != nullptr ? e : "";
  curl_free(e);
  return out;
}

std::string form_of(const std::map<std::string, std::string> &fields) {
  std::string out;
  for (const auto &[k, v] : fields) out += (out.empty() ? "" : "&") + escaped(k) + "=" + escaped(v);
  return out;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One HTTP request. `body` empty and `content_type` empty: a GET.
OAuthResult<HttpAnswer> http(const std::string &url, const std::string &content_type,
                             const std::string &body, const std::string &bearer,
                             const std::string &ca_file, long timeout_ms) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  CURL *c = curl.get();
  HttpAnswer answer;
  char error[CURL_ERROR_SIZE] = {};
  curl_slist *list = nullptr;
  if (!content_type.empty()) list = curl_slist_append(list, ("Content-Type: " + content_type).c_str());
  list = curl_slist_append(list, "Accept: application/json");
  if (!bearer.empty()) list = curl_slist_append(list, ("Authorization: Bearer " + bearer).c_str());
  std::unique_ptr<curl_slist, SlistDeleter> headers(list);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer.body);
  if (!content_type.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    // The URL is the admin's configuration, never a secret; the error text names no token.
    return OAuthFailure{false, "the provider could not be reached",
                        std::string(error[0] != '\0' ? error : curl_easy_strerror(rc))};
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &answer.status);
  return answer;
}

// A token endpoint's answer: tokens, or the OAuth error (RFC 6749 section 5.2).
OAuthResult<Tokens> token_answer(const OAuthResult<HttpAnswer> &sent) {
  if (auto *failure = std::get_if<OAuthFailure>(&sent)) return *failure;
  const auto &answer = std::get<HttpAnswer>(sent);
  Json json = Json::parse(answer.body, nullptr, false);
  if (answer.status >= 400 && json.is_object() && json.contains("error")) {
    return OAuthFailure{answer.status < 500, json.value("error", "error"),
                        json.value("error_description", "")};
  }
  if (answer.status != 200 || !json.is_object() || !json.contains("access_token")) {
    return OAuthFailure{false, "the token endpoint answered HTTP " + std::to_string(answer.status),
                        ""};
  }
  Tokens tokens;
  tokens.access_token = json.value("access_token", "");
  tokens.refresh_token = json.value("refresh_token", "");
  tokens.id_token = json.value("id_token", "");
  tokens.scope = json.value("scope", "");
  const int64_t expires_in = json.contains("expires_in") && json["expires_in"].is_number()
                                 ? json["expires_in"].get<int64_t>()
                                 : 3600;
  tokens.expires_at_ms = now_ms() + expires_in * 1000;
  return tokens;
}

std::map<std::string, std::string> client_fields(const Provider &p) {
  std::map<std::string, std::string> f{{"client_id", p.client_id}};
  if (!p.client_secret.empty()) f["client_secret"] = p.client_secret;
  return f;
}

std::string joined(const std::vector<std::string> &items) {
  std::string out;
  for (const auto &i : items) out += (out.empty() ? "" : " ") + i;
  return out;
}

}  // namespace

std::string authorization_url(const Provider &provider, const std::string &redirect_uri,
                              const std::string &state, const std::string &code_challenge) {
  std::map<std::string, std::string> q = provider.authorize_extras;
  q["response_type"] = "code";
  q["client_id"] = provider.client_id;
  q["redirect_uri"] = redirect_uri;
  q["scope"] = joined(provider.scopes);
  q["state"] = state;
  q["code_challenge"] = code_challenge;
  q["code_challenge_method"] = "S256";
  const char *glue = provider.authorize_url.find('?') == std::string::npos ? "?" : "&";
  return provider.authorize_url + glue + form_of(q);
}

OAuthResult<Tokens> exchange_code(const Provider &provider, const std::string &code,
                                  const std::string &verifier, const std::string &redirect_uri) {
  auto fields = client_fields(provider);
  fields["grant_type"] = "authorization_code";
  fields["code"] = code;
  fields["code_verifier"] = verifier;
  fields["redirect_uri"] = redirect_uri;
  return token_answer(http(provider.token_url, "application/x-www-form-urlencoded",
                           form_of(fields), "", provider.ca_file, provider.timeout_ms));
}

OAuthResult<Tokens> refresh_tokens(const Provider &provider, const std::string &refresh_token,
                                   const std::string &scope) {
  auto fields = client_fields(provider);
  fields["grant_type"] = "refresh_token";
  fields["refresh_token"] = refresh_token;
  const std::string asked = scope.empty() ? provider.refresh_scope : scope;
  if (!asked.empty()) fields["scope"] = asked;
  auto result = token_answer(http(provider.token_url, "application/x-www-form-urlencoded",
                                  form_of(fields), "", provider.ca_file, provider.timeout_ms));
  if (auto *tokens = std::get_if<Tokens>(&result); tokens && tokens->refresh_token.empty()) {
    tokens->refresh_token = refresh_token;  // not rotated: the old one stays valid
  }
  return result;
}

std::optional<OAuthFailure> revoke_token(const Provider &provider, const std::string &token) {
  if (provider.revoke_url.empty() || token.empty()) return std::nullopt;
  auto fields = client_fields(provider);
  fields["token"] = token;
  auto sent = http(provider.revoke_url, "application/x-www-form-urlencoded", form_of(fields), "",
                   provider.ca_file, provider.timeout_ms);
  if (auto *failure = std::get_if<OAuthFailure>(&sent)) return *failure;
  const auto &answer = std::get<HttpAnswer>(sent);
  if (answer.status != 200) {
    return OAuthFailure{false, "revocation answered HTTP " + std::to_string(answer.status), ""};
  }
  return std::nullopt;
}

OAuthResult<HttpAnswer> graph_send_mime(const std::string &send_url, const std::string &token,
                                        const std::string &mime, const std::string &ca_file,
                                        long timeout_ms) {
  std::string encoded(4 * ((mime.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(encoded.data()),
                                reinterpret_cast<const unsigned char *>(mime.data()),
                                static_cast<int>(mime.size()));
  encoded.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return http(send_url, "text/plain", encoded, token, ca_file, timeout_ms);
}

std::string graph_reason(const HttpAnswer &answer) {
  std::string reason = "HTTP " + std::to_string(answer.status);
  Json json = Json::parse(answer.body, nullptr, false);
  if (json.is_object() && json.contains("error") && json["error"].is_object()) {
    const Json &error = json["error"];
    const std::string code = error.value("code", "");
    const std::string message = error.value("message", "");
    if (!code.empty()) reason += " " + code;
    if (!message.empty()) reason += ": " + message;
  }
  for (char &c : reason) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  if (reason.size() > 400) reason.resize(400);
  return reason;
}

OAuthResult<std::string> mailbox_address(const Provider &provider, const Tokens &tokens) {
  // The ID token came straight from the token endpoint over the connection we opened, so its
  // claims are taken as they are (OpenID Connect Core 3.1.3.7 allows skipping the signature).
  const size_t dot1 = tokens.id_token.find('.');
  const size_t dot2 = dot1 == std::string::npos ? dot1 : tokens.id_token.find('.', dot1 + 1);
  if (dot2 != std::string::npos) {
    Json claims = Json::parse(base64url_decode(tokens.id_token.substr(dot1 + 1, dot2 - dot1 - 1)),
                              nullptr, false);
    if (claims.is_object()) {
      for (const char *claim : {"email", "preferred_username", "upn"}) {
        const std::string value = claims.value(claim, "");
        if (value.find('@') != std::string::npos) return value;
      }
    }
  }
  if (provider.userinfo_url.empty()) {
    return OAuthFailure{false, "the provider named no mailbox address", ""};
  }
  auto sent = http(provider.userinfo_url, "", "", tokens.access_token, provider.ca_file,
                   provider.timeout_ms);
  if (auto *failure = std::get_if<OAuthFailure>(&sent)) return *failure;
  const auto &answer = std::get<HttpAnswer>(sent);
  Json info = Json::parse(answer.body, nullptr, false);
  if (answer.status == 200 && info.is_object()) {
    for (const char *claim : {"email", "mail", "userPrincipalName", "preferred_username"}) {
      const std::string value = info.value(claim, "");
      if (value.find('@') != std::string::npos) return value;
    }
  }
  return OAuthFailure{false, "the provider named no mailbox address",
                      "user info answered HTTP " + std::to_string(answer.status)};
}

}  // namespace connector::email_oauth

#include "OAuthClient.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>

#include "Pkce.hpp"

namespace connector::email_oauth {
namespace {

struct CurlDeleter {
  void operator()(CURL *c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist *l) const { curl_slist_free_all(l); }
};

// Token, user info and Graph answers are small; a larger one is refused, not kept in memory.
constexpr size_t kMaxAnswerBytes = size_t{1} << 20;

struct Collected {
  std::string *body;
  bool too_big = false;
};

size_t collect(char *data, size_t size, size_t n, void *out) {
  auto *collected = static_cast<Collected *>(out);
  if (collected->body->size() + size * n > kMaxAnswerBytes) {
    collected->too_big = true;
    return 0;  // curl stops with a write error
  }
  collected->body->append(data, size * n);
  return size * n;
}

// A member that is text, or nullopt (absent, or of another JSON type).
std::optional<std::string> text_member(const Json &json, const char *key) {
  if (!json.is_object()) return std::nullopt;
  auto it = json.find(key);
  if (it == json.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// An answer's words for a log line: one line, bounded.
std::string one_line(std::string text) {
  for (char &c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (text.size() > 400) text.resize(400);
  return text;
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
  Collected collected{&answer.body};
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &collected);
  if (!content_type.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  const CURLcode rc = curl_easy_perform(c);
  if (collected.too_big) {
    return OAuthFailure{false, "the provider's answer is larger than 1 MiB and was refused", ""};
  }
  if (rc != CURLE_OK) {
    // The URL is the admin's configuration, never a secret; the error text names no token.
    return OAuthFailure{false, "the provider could not be reached",
                        std::string(error[0] != '\0' ? error : curl_easy_strerror(rc))};
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &answer.status);
  return answer;
}

// A token endpoint's answer: tokens, or the OAuth error (RFC 6749 section 5.2). Only
// invalid_grant means the grant is gone; invalid_client is the host's own registration; throttling
// (429) and server failures (5xx) are temporary.
OAuthResult<Tokens> token_answer(const OAuthResult<HttpAnswer> &sent) {
  if (auto *failure = std::get_if<OAuthFailure>(&sent)) return *failure;
  const auto &answer = std::get<HttpAnswer>(sent);
  const std::string http_status = "HTTP " + std::to_string(answer.status);
  Json json = Json::parse(answer.body, nullptr, false);
  if (answer.status == 429 || answer.status >= 500) {
    const auto error = text_member(json, "error");
    return OAuthFailure{false,
                        "the token endpoint is busy or failing (" + http_status +
                            (error ? " " + one_line(*error) : std::string()) +
                            "); trying again later",
                        ""};
  }
  if (answer.status >= 400) {
    const auto error = text_member(json, "error");
    if (!error) {
      return OAuthFailure{false, "the token endpoint answered " + http_status +
                                     " without an OAuth error",
                          ""};
    }
    OAuthFailure failure{false, one_line(*error),
                         one_line(text_member(json, "error_description").value_or(""))};
    failure.refused = *error == "invalid_grant";
    failure.bad_client = *error == "invalid_client" || *error == "unauthorized_client";
    return failure;
  }
  if (answer.status != 200) {
    return OAuthFailure{false, "the token endpoint answered " + http_status, ""};
  }
  if (!json.is_object()) {
    return OAuthFailure{false, "the token endpoint's answer (HTTP 200) is not a JSON object", ""};
  }
  const auto access_token = text_member(json, "access_token");
  if (!access_token || access_token->empty()) {
    return OAuthFailure{false,
                        json.contains("access_token")
                            ? "the token endpoint's access_token is not text"
                            : "the token endpoint's answer has no access_token",
                        ""};
  }
  for (const char *key : {"refresh_token", "id_token", "scope"}) {
    if (json.contains(key) && !json[key].is_string() && !json[key].is_null()) {
      return OAuthFailure{false, std::string("the token endpoint's ") + key + " is not text", ""};
    }
  }
  Tokens tokens;
  tokens.access_token = *access_token;
  tokens.refresh_token = text_member(json, "refresh_token").value_or("");
  tokens.id_token = text_member(json, "id_token").value_or("");
  tokens.scope = text_member(json, "scope").value_or("");
  // Seconds the access token lives: a number (or a number as text, as some servers send);
  // anything odd counts as an hour, and the value is kept within a year.
  constexpr double kYear = 365.0 * 24 * 3600;
  double expires_in = 3600;
  if (json.contains("expires_in")) {
    const Json &e = json["expires_in"];
    if (e.is_number()) {
      expires_in = e.get<double>();
    } else if (e.is_string()) {
      try {
        expires_in = std::stod(e.get<std::string>());
      } catch (const std::exception &) {
      }
    }
  }
  if (!(expires_in >= 0)) expires_in = 0;  // also NaN
  if (expires_in > kYear) expires_in = kYear;
  tokens.expires_at_ms = now_ms() + static_cast<int64_t>(expires_in) * 1000;
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
    const std::string code = text_member(error, "code").value_or("");
    const std::string message = text_member(error, "message").value_or("");
    if (!code.empty()) reason += " " + code;
    if (!message.empty()) reason += ": " + message;
  }
  for (char &c : reason) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  if (reason.size() > 400) reason.resize(400);
  return reason;
}

bool plain_address(const std::string &address) {
  // local@domain: dot-atom letters on the left, host name labels on the right; no spaces,
  // quotes, brackets or control characters, which could end up in IMAP or SMTP commands.
  static const std::regex kAddress(
      R"(^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@)"
      R"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$)");
  return address.size() <= 254 && std::regex_match(address, kAddress);
}

namespace {

// The first of these claims that holds an '@': the address, or a failure when it is no plain
// address; nullopt when none holds one.
std::optional<OAuthResult<std::string>> address_claim(const Json &claims,
                                                      std::initializer_list<const char *> keys,
                                                      const std::string &where) {
  for (const char *claim : keys) {
    const std::string value = text_member(claims, claim).value_or("");
    if (value.find('@') == std::string::npos) continue;
    if (!plain_address(value)) {
      return OAuthResult<std::string>(OAuthFailure{
          false, "the provider named a mailbox address that is not a plain e-mail address",
          where + " claim " + claim + " holds spaces, control characters or other characters "
                                      "an address cannot have"});
    }
    return OAuthResult<std::string>(value);
  }
  return std::nullopt;
}

}  // namespace

OAuthResult<std::string> mailbox_address(const Provider &provider, const Tokens &tokens) {
  // The ID token came straight from the token endpoint over the connection we opened, so its
  // claims are taken as they are (OpenID Connect Core 3.1.3.7 allows skipping the signature).
  const size_t dot1 = tokens.id_token.find('.');
  const size_t dot2 = dot1 == std::string::npos ? dot1 : tokens.id_token.find('.', dot1 + 1);
  if (dot2 != std::string::npos) {
    Json claims = Json::parse(base64url_decode(tokens.id_token.substr(dot1 + 1, dot2 - dot1 - 1)),
                              nullptr, false);
    if (auto found = address_claim(claims, {"email", "preferred_username", "upn"}, "the ID token's")) {
      return *found;
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
  if (answer.status == 200 && !info.is_object()) {
    return OAuthFailure{false, "the provider named no mailbox address",
                        "its user info answer is not a JSON object"};
  }
  if (answer.status == 200) {
    if (auto found = address_claim(info, {"email", "mail", "userPrincipalName", "preferred_username"},
                                   "the user info's")) {
      return *found;
    }
  }
  return OAuthFailure{false, "the provider named no mailbox address",
                      "user info answered HTTP " + std::to_string(answer.status)};
}

}  // namespace connector::email_oauth

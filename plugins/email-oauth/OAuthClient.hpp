// The OAuth2 client side over libcurl: authorization URL, code exchange, refresh, revocation and
// user info. Blocking: call from verb threads or the engine's
// workers, never from the mail loop.
#pragma once

#include <connector/sdk.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace connector::email_oauth {

using sdk::Json;

// One provider as the admin configured it (endpoints may point anywhere, e.g. a test server).
struct Provider {
  std::string id;  // google, microsoft
  std::string client_id;
  std::string client_secret;  // secret
  std::string authorize_url;
  std::string token_url;
  std::string revoke_url;    // empty: the provider cannot revoke (Microsoft)
  std::string userinfo_url;  // used when the ID token names no address
  std::vector<std::string> scopes;
  // Asked for on every refresh of the mail token; empty: the grant's own. Microsoft hands out one
  // token per resource, so a grant that also covers Graph must name the mail scopes here.
  std::string refresh_scope;
  std::map<std::string, std::string> authorize_extras;  // access_type=offline, prompt=consent
  std::string ca_file;                                  // extra CA for the HTTPS endpoints
  long timeout_ms = 15000;
};

struct Tokens {
  std::string access_token;   // secret
  std::string refresh_token;  // secret
  std::string id_token;
  std::string scope;
  int64_t expires_at_ms = 0;  // absolute, from expires_in
};

// Why a call to the provider failed. `refused` is an OAuth error answer (invalid_grant and its
// kin): the grant is gone and only a new sign-in helps. Otherwise the provider could not be
// reached or answered nonsense, and a later retry may work.
struct OAuthFailure {
  // The provider no longer honours the grant (invalid_grant): only a new sign-in helps.
  bool refused = false;
  std::string error;        // the provider's error code, or a short description of the failure
  std::string description;  // the provider's words (never a token)
  // The provider does not accept the host's own registration (invalid_client): the admin's
  // client id or secret is wrong; signing in again does not help.
  bool bad_client = false;
  std::string text() const { return description.empty() ? error : error + ": " + description; }
};

template <typename T>
using OAuthResult = std::variant<T, OAuthFailure>;

struct HttpAnswer {
  long status = 0;
  std::string body;
};

std::string authorization_url(const Provider &provider, const std::string &redirect_uri,
                              const std::string &state, const std::string &code_challenge);

OAuthResult<Tokens> exchange_code(const Provider &provider, const std::string &code,
                                  const std::string &verifier, const std::string &redirect_uri);

// The new tokens; refresh_token is the rotated one when the provider sent one, else the old.
// `scope` empty: the provider's refresh_scope.
OAuthResult<Tokens> refresh_tokens(const Provider &provider, const std::string &refresh_token,
                                   const std::string &scope = {});

// RFC 7009 revocation; nothing to do (and success) when the provider has no revoke URL.
std::optional<OAuthFailure> revoke_token(const Provider &provider, const std::string &token);

// The mailbox address: the ID token's claims (email, then preferred_username), else user info.
// local@domain with nothing an IMAP or SMTP command could trip on (no spaces, controls, quotes).
bool plain_address(const std::string &address);

OAuthResult<std::string> mailbox_address(const Provider &provider, const Tokens &tokens);

// Microsoft Graph sendMail with a whole MIME message: POST to `send_url` (…/v1.0/me/sendMail)
// with the message base64-encoded as text/plain. Graph's answer as it came (202: accepted), or
// a failure when Graph could not be reached.
OAuthResult<HttpAnswer> graph_send_mime(const std::string &send_url, const std::string &token,
                                        const std::string &mime, const std::string &ca_file,
                                        long timeout_ms);

// Graph's error answer in words: "HTTP 403 ErrorAccessDenied: Access is denied…".
std::string graph_reason(const HttpAnswer &answer);

}  // namespace connector::email_oauth

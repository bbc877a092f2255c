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
  bool refused = false;
  std::string error;        // the provider's error code, or a short description of the failure
  std::string description;  // the provider's words (never a token)
  std::string text() const { return description.empty() ? error : error + ": " + description; }
};

template <typename T>
using OAuthResult = std::variant<T, OAuthFailure>;

std::string authorization_url(const Provider &provider, const std::string &redirect_uri,
                              const std::string &state, const std::string &code_challenge);

OAuthResult<Tokens> exchange_code(const Provider &provider, const std::string &code,
                                  const std::string &verifier, const std::string &redirect_uri);

// The new tokens; refresh_token is the rotated one when the provider sent one, else the old.
OAuthResult<Tokens> refresh_tokens(const Provider &provider, const std::string &refresh_token,
                                   const std::string &scope = {});

// RFC 7009 revocation; nothing to do (and success) when the provider has no revoke URL.
std::optional<OAuthFailure> revoke_token(const Provider &provider, const std::string &token);

// The mailbox address: the ID token's claims (email, then preferred_username), else user info.
OAuthResult<std::string> mailbox_address(const Provider &provider, const Tokens &tokens);


}  // namespace connector::email_oauth

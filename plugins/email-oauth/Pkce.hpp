// PKCE (RFC 7636, S256) and random values for the OAuth flow, from OpenSSL.
#pragma once

#include <string>

namespace connector::email_oauth {

// `bytes` cryptographically random bytes as unpadded base64url text.
std::string random_base64url(size_t bytes);

// base64url without padding, as JWTs and PKCE use it.
std::string base64url(const std::string &bytes);
std::string base64url_decode(const std::string &text);

// The S256 challenge of a verifier: BASE64URL(SHA256(verifier)).
std::string pkce_challenge(const std::string &verifier);

}  // namespace connector::email_oauth

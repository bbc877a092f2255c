// Who may call the host: attendants and admins, their bearer tokens and one-time login links.
// Tokens and link codes are random 256-bit values shown once; only their BLAKE2b hashes are
// stored, so a copy of the database lets no one in.
#pragma once

#include "common/Expected.hpp"
#include "store/Database.hpp"

#include <optional>
#include <string>
#include <vector>

namespace connector::auth {

enum class Role { kAdmin, kAttendant };

std::string to_string(Role role);
std::optional<Role> role_from_string(std::string_view text);

// The caller of a request, once its token is accepted.
struct Principal {
  std::string attendant_id;
  std::string name;
  Role role = Role::kAttendant;
  std::string token_id;  // the token the caller signed in with
  bool admin() const { return role == Role::kAdmin; }
};

struct Attendant {
  std::string id;
  std::string name;
  Role role = Role::kAttendant;
  int64_t created_at = 0;
};

struct TokenInfo {
  std::string id;
  std::string attendant_id;
  std::string label;
  int64_t created_at = 0;
  std::optional<int64_t> last_used_at;
  std::optional<int64_t> revoked_at;
};

// A token as issued: `secret` is shown to the caller once and never again.
struct IssuedToken {
  TokenInfo info;
  std::string secret;
};

class Attendants {
 public:
  explicit Attendants(store::Database &db) : db_(db) {}

  Expected<Attendant> create(const std::string &name, Role role);
  std::vector<Attendant> list();
  Expected<Attendant> find(const std::string &id);
  bool any();

  Expected<IssuedToken> issue_token(const std::string &attendant_id, const std::string &label);
  std::vector<TokenInfo> tokens(const std::string &attendant_id);
  // Revokes a token; `owner` (when set) must own it, so attendants revoke only their own.
  Outcome revoke_token(const std::string &token_id, const std::optional<std::string> &owner);

  // The principal a bearer token belongs to, or nullopt for an unknown or revoked token.
  std::optional<Principal> authenticate(std::string_view token);

  // A login code valid for `ttl_minutes`, redeemable once for a new token.
  Expected<std::string> create_login_code(const std::string &attendant_id, int ttl_minutes);
  Expected<IssuedToken> redeem_login_code(std::string_view code);

 private:
  store::Database &db_;
};

}  // namespace connector::auth

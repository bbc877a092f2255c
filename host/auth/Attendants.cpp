#include "auth/Attendants.hpp"

#include "common/RandomId.hpp"

#include <algorithm>

#include <sodium.h>

namespace connector::auth {
namespace {

using store::Blob;
using store::now_ms;
using store::Row;

Blob hash(std::string_view secret) {
  std::string digest(crypto_generichash_BYTES, '\0');
  crypto_generichash(reinterpret_cast<unsigned char *>(digest.data()), digest.size(),
                     reinterpret_cast<const unsigned char *>(secret.data()), secret.size(),
                     nullptr, 0);
  return Blob{digest};
}

Attendant attendant_from(const Row &row) {
  return Attendant{row.text(0), row.text(1), role_from_string(row.text(2)).value_or(Role::kAttendant),
                   row.integer(3)};
}

TokenInfo token_from(const Row &row) {
  return TokenInfo{row.text(0), row.text(1), row.text(2), row.integer(3),
                   row.optional_integer(4), row.optional_integer(5)};
}

constexpr const char *kTokenColumns =
    "SELECT id, attendant_id, label, created_at, last_used_at, revoked_at FROM tokens ";

}  // namespace

std::string to_string(Role role) { return role == Role::kAdmin ? "admin" : "attendant"; }

std::optional<Role> role_from_string(std::string_view text) {
  if (text == "admin") return Role::kAdmin;
  if (text == "attendant") return Role::kAttendant;
  return std::nullopt;
}

Expected<Attendant> Attendants::create(const std::string &name, Role role) {
  if (name.empty() || name.size() > 200) {
    return failure("invalid_request", "an attendant needs a name of 1 to 200 characters");
  }
  if (std::any_of(name.begin(), name.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return failure("invalid_request", "an attendant's name cannot contain control characters");
  }
  Attendant attendant{random_id("att"), name, role, now_ms()};
  auto inserted = db_.run("INSERT INTO attendants (id, name, role, created_at) VALUES (?, ?, ?, ?)",
                          {attendant.id, name, to_string(role), attendant.created_at});
  if (!inserted) return inserted.failure();
  return attendant;
}

std::vector<Attendant> Attendants::list() {
  std::vector<Attendant> out;
  (void)db_.run("SELECT id, name, role, created_at FROM attendants ORDER BY created_at, id", {},
                [&](const Row &row) { out.push_back(attendant_from(row)); });
  return out;
}

Expected<Attendant> Attendants::find(const std::string &id) {
  std::optional<Attendant> found;
  auto read = db_.run("SELECT id, name, role, created_at FROM attendants WHERE id = ?", {id},
                      [&](const Row &row) { found = attendant_from(row); });
  if (!read) return read.failure();
  if (!found) return failure("not_found", "no attendant " + id);
  return *found;
}

bool Attendants::any() {
  bool found = false;
  (void)db_.run("SELECT 1 FROM attendants LIMIT 1", {}, [&](const Row &) { found = true; });
  return found;
}

Expected<IssuedToken> Attendants::issue_token(const std::string &attendant_id,
                                              const std::string &label) {
  if (auto owner = find(attendant_id); !owner) return owner.failure();
  IssuedToken token;
  token.secret = "cht_" + random_text(32);
  token.info = TokenInfo{random_id("tok"), attendant_id, label, now_ms(), {}, {}};
  auto inserted = db_.run(
      "INSERT INTO tokens (id, attendant_id, hash, label, created_at) VALUES (?, ?, ?, ?, ?)",
      {token.info.id, attendant_id, hash(token.secret), label, token.info.created_at});
  if (!inserted) return inserted.failure();
  return token;
}

std::vector<TokenInfo> Attendants::tokens(const std::string &attendant_id) {
  std::vector<TokenInfo> out;
  (void)db_.run(std::string(kTokenColumns) + "WHERE attendant_id = ? ORDER BY created_at",
                {attendant_id}, [&](const Row &row) { out.push_back(token_from(row)); });
  return out;
}

Outcome Attendants::revoke_token(const std::string &token_id,
                                 const std::optional<std::string> &owner) {
  bool revoked = false;
  auto on_row = [&](const Row &) { revoked = true; };
  auto done = owner ? db_.run("UPDATE tokens SET revoked_at = ? WHERE id = ? AND attendant_id = ? "
                              "AND revoked_at IS NULL RETURNING id",
                              {now_ms(), token_id, *owner}, on_row)
                    : db_.run("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL "
                              "RETURNING id",
                              {now_ms(), token_id}, on_row);
  if (!done) return done;
  if (!revoked) return failure("not_found", "no active token " + token_id);
  return Ok{};
}

std::optional<Principal> Attendants::authenticate(std::string_view token) {
  if (token.size() < 10 || token.size() > 200) return std::nullopt;
  std::optional<Principal> principal;
  std::string token_id;
  (void)db_.run(
      "SELECT t.id, a.id, a.name, a.role FROM tokens t JOIN attendants a ON a.id = t.attendant_id "
      "WHERE t.hash = ? AND t.revoked_at IS NULL",
      {hash(token)}, [&](const Row &row) {
        token_id = row.text(0);
        principal = Principal{row.text(1), row.text(2),
                              role_from_string(row.text(3)).value_or(Role::kAttendant),
                              row.text(0)};
      });
  if (principal) {
    (void)db_.run("UPDATE tokens SET last_used_at = ? WHERE id = ?", {now_ms(), token_id});
  }
  return principal;
}

Expected<std::string> Attendants::create_login_code(const std::string &attendant_id,
                                                    int ttl_minutes) {
  if (auto owner = find(attendant_id); !owner) return owner.failure();
  const std::string code = random_text(32);
  auto inserted = db_.run(
      "INSERT INTO login_links (hash, attendant_id, expires_at) VALUES (?, ?, ?)",
      {hash(code), attendant_id, now_ms() + int64_t{ttl_minutes} * 60'000});
  if (!inserted) return inserted.failure();
  return code;
}

Expected<IssuedToken> Attendants::redeem_login_code(std::string_view code) {
  const auto refused = failure("invalid_login_link",
                               "this login link is unknown, expired or already used: ask an admin "
                               "for a new one (connector-host login-link)");
  if (code.empty() || code.size() > 200) return refused;

  // Marking the link used and reading its owner happen in one statement, so two requests racing
  // with the same link cannot both succeed.
  std::optional<std::string> attendant_id;
  auto claimed = db_.run(
      "UPDATE login_links SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ? "
      "RETURNING attendant_id",
      {now_ms(), hash(code), now_ms()}, [&](const Row &row) { attendant_id = row.text(0); });
  if (!claimed) return claimed.failure();
  if (!attendant_id) return refused;
  return issue_token(*attendant_id, "login link");
}

}  // namespace connector::auth

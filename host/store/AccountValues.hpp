// The plugins' durable per-account values (sync state, credentials, keys). Secret values are
// sealed with the SecretBox before they reach the database and registered with the log masker
// when read or written, so they never appear in a log line.
#pragma once

#include "common/Expected.hpp"
#include "store/Database.hpp"
#include "store/SecretBox.hpp"

#include <optional>
#include <string>

namespace connector::store {

class AccountValues {
 public:
  AccountValues(Database &db, const SecretBox &box) : db_(db), box_(box) {}

  Outcome put(const std::string &account_id, const std::string &key, std::string_view value,
              bool secret);
  // nullopt when absent; a Failure when stored but unreadable (e.g. another secret key).
  Expected<std::optional<std::string>> get(const std::string &account_id, const std::string &key);
  Outcome erase(const std::string &account_id, const std::string &key);

  // How many secret values are stored, of every account.
  Expected<int64_t> count_secrets();
  // Opens one stored secret, if any: a Failure ("secret_key_mismatch") when the key in use is not
  // the one the secrets were sealed with. Checked at start, so that a replaced key is found there
  // rather than account by account.
  Outcome check_key();
  // Deletes every stored secret and marks every account as not to be resumed: the way out when
  // the key is lost for good. Returns how many secrets were deleted.
  Expected<int64_t> forget_secrets();

 private:
  static std::string context(const std::string &account_id, const std::string &key);

  Database &db_;
  const SecretBox &box_;
};

}  // namespace connector::store

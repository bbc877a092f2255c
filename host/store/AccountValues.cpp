#include "store/AccountValues.hpp"

#include "log/Log.hpp"

namespace connector::store {

std::string AccountValues::context(const std::string &account_id, const std::string &key) {
  return account_id + '\0' + key;
}

Outcome AccountValues::put(const std::string &account_id, const std::string &key,
                           std::string_view value, bool secret) {
  if (secret) log::add_secret(value);
  const std::string stored = secret ? box_.seal(value, context(account_id, key)) : std::string(value);
  return db_.run(
      "INSERT INTO account_values (account_id, key, value, secret, updated_at) "
      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, key) DO UPDATE SET "
      "value = excluded.value, secret = excluded.secret, updated_at = excluded.updated_at",
      {account_id, key, Blob{stored}, int64_t{secret ? 1 : 0}, now_ms()});
}

Expected<std::optional<std::string>> AccountValues::get(const std::string &account_id,
                                                        const std::string &key) {
  std::optional<std::string> stored;
  bool secret = false;
  auto read = db_.run("SELECT value, secret FROM account_values WHERE account_id = ? AND key = ?",
                      {account_id, key}, [&](const Row &row) {
                        stored = row.text(0);
                        secret = row.integer(1) != 0;
                      });
  if (!read) return read.failure();
  if (!stored || !secret) return stored;

  auto plain = box_.open(*stored, context(account_id, key));
  if (!plain) return plain.failure();
  log::add_secret(*plain);
  return std::optional<std::string>(std::move(*plain));
}

Outcome AccountValues::erase(const std::string &account_id, const std::string &key) {
  return db_.run("DELETE FROM account_values WHERE account_id = ? AND key = ?", {account_id, key});
}

Expected<int64_t> AccountValues::count_secrets() {
  int64_t count = 0;
  auto read = db_.run("SELECT count(*) FROM account_values WHERE secret = 1", {},
                      [&](const Row &row) { count = row.integer(0); });
  if (!read) return read.failure();
  return count;
}

Outcome AccountValues::check_key() {
  std::optional<std::pair<std::string, std::string>> sample;
  std::string sealed;
  auto read = db_.run("SELECT account_id, key, value FROM account_values WHERE secret = 1 LIMIT 1",
                      {}, [&](const Row &row) {
                        sample.emplace(row.text(0), row.text(1));
                        sealed = row.text(2);
                      });
  if (!read) return read;
  if (!sample) return Ok{};
  auto plain = box_.open(sealed, context(sample->first, sample->second));
  if (!plain) return plain.failure();
  return Ok{};
}

Expected<int64_t> AccountValues::forget_secrets() {
  auto count = count_secrets();
  if (!count) return count;
  auto done = db_.transaction([&]() -> Outcome {
    if (auto erased = db_.run("DELETE FROM account_values WHERE secret = 1"); !erased) {
      return erased;
    }
    return db_.run(
        "UPDATE accounts SET wanted_connected = 0, state = 'disconnected', "
        "detail = 'stored credentials were deleted; connect again', updated_at = ?",
        {now_ms()});
  });
  if (!done) return done.failure();
  return *count;
}

}  // namespace connector::store

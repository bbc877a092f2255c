// Migration 008 remembers a Message-ID for every stored message that carries it: the messages a
// store of an older host holds are all remembered, not only the first one with each id.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "TempDir.hpp"
#include "store/Database.hpp"

namespace connector::embedded {
extern const char kMigration001[];
extern const char kMigration002[];
extern const char kMigration003[];
extern const char kMigration004[];
extern const char kMigration005[];
extern const char kMigration006[];
extern const char kMigration007[];
}  // namespace connector::embedded

namespace connector::cases::test {
namespace {

TEST(MessageIdsMigration, EveryStoredMessageWithAnIdIsRemembered) {
  connector::test::TempDir dir;
  const auto file = dir / "old.db";
  {
    sqlite3 *db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    for (const char *sql : {embedded::kMigration001, embedded::kMigration002,
                            embedded::kMigration003, embedded::kMigration004,
                            embedded::kMigration005, embedded::kMigration006,
                            embedded::kMigration007,
                            "PRAGMA user_version = 7;"
                            "INSERT INTO messages (account_id, channel, direction, external_id, "
                            "  stored_at, details) VALUES "
                            "  ('ana-mail', 'email-imap', 'inbound', 'a', 0, "
                            "   '{\"message_id\": \"<orig@cust.example>\"}'),"
                            "  ('beto-mail', 'email-imap', 'inbound', 'b', 0, "
                            "   '{\"message_id\": \"<orig@cust.example>\"}'),"
                            "  ('beto-mail', 'email-imap', 'outbound', '<sent@host.example>', 0, '{}');"}) {
      char *error = nullptr;
      ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &error), SQLITE_OK) << error;
    }
    sqlite3_close(db);
  }

  auto db = store::Database::open(file);
  ASSERT_TRUE(db) << db.failure().message;
  const auto count = [&](const std::string &id) {
    int64_t n = -1;
    EXPECT_TRUE((*db)->run("SELECT COUNT(*) FROM mail_message_ids WHERE message_id = ?", {id},
                           [&](const store::Row &row) { n = row.integer(0); }));
    return n;
  };
  EXPECT_EQ(count("orig@cust.example"), 2);
  EXPECT_EQ(count("sent@host.example"), 1);

  // And so is every message stored from now on (the accounts of these test rows do not exist).
  ASSERT_TRUE((*db)->run("PRAGMA foreign_keys = OFF"));
  ASSERT_TRUE((*db)->run(
      "INSERT INTO messages (account_id, channel, direction, external_id, stored_at, details) "
      "VALUES ('carla-mail', 'email-imap', 'inbound', 'c', 0, "
      "'{\"message_id\": \"<orig@cust.example>\"}')"));
  EXPECT_EQ(count("orig@cust.example"), 3);
}

}  // namespace
}  // namespace connector::cases::test

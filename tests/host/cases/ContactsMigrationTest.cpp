// The case engine's migrations on a store an older host left: 003 gives every contact one
// attendant, 007 starts the host's case counter, 008 remembers every message's Message-ID.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "OldStore.hpp"
#include "TempDir.hpp"
#include "store/Database.hpp"

namespace connector::cases::test {
namespace {

using connector::test::old_store;

// Migration 003: a contact that two attendants' cases shared is split so that each keeps a
// contact of their own with the same identities.
TEST(ContactsMigration, ASharedContactIsSplitBetweenItsAttendants) {
  connector::test::TempDir dir;
  const auto file = old_store(
      dir, 2,
      "INSERT INTO attendants (id, name, role, created_at) VALUES "
      "  ('ana', 'Ana', 'attendant', 0), ('beto', 'Beto', 'attendant', 0);"
      "INSERT INTO contacts (id, created_at) VALUES (1, 0), (2, 0);"
      "INSERT INTO contact_identities (kind, value, contact_id) VALUES "
      "  ('phone', '+5511987654321', 1), ('email', 'c@example.com', 1),"
      "  ('email', 'sem-caso@example.com', 2);"
      "INSERT INTO cases (id, attendant_id, contact_id, created_at, updated_at) VALUES "
      "  (10, 'ana', 1, 0, 0), (11, 'beto', 1, 0, 0), (12, 'beto', 1, 0, 0);");

  auto db = store::Database::open(file);
  ASSERT_TRUE(db) << db.failure().message;
  const auto one = [&](const std::string &sql) {
    std::string out;
    EXPECT_TRUE((*db)->run(sql, {}, [&](const store::Row &row) { out = row.text(0); }));
    return out;
  };

  EXPECT_EQ(one("SELECT attendant_id FROM contacts WHERE id = 1"), "ana");
  EXPECT_EQ(one("SELECT contact_id FROM cases WHERE id = 10"), "1");
  const std::string betos = one("SELECT contact_id FROM cases WHERE id = 11");
  EXPECT_NE(betos, "1");
  EXPECT_EQ(one("SELECT contact_id FROM cases WHERE id = 12"), betos);
  EXPECT_EQ(one("SELECT attendant_id FROM contacts WHERE id = " + betos), "beto");
  EXPECT_EQ(one("SELECT group_concat(value, ' ') FROM (SELECT value FROM contact_identities "
                "WHERE contact_id = " + betos + " AND attendant_id = 'beto' ORDER BY value)"),
            "+5511987654321 c@example.com");
  EXPECT_EQ(one("SELECT COUNT(*) FROM contact_identities WHERE contact_id = 1 AND "
                "attendant_id = 'ana'"),
            "2");
  EXPECT_EQ(one("SELECT attendant_id FROM contacts WHERE id = 2"), "")
      << "a contact without a case has no owner to give it";
}

// Migration 007 starts the host's own case counter: an existing store goes on from its highest
// case id, so no id the host gave before is given again.
TEST(ContactsMigration, TheHostsCaseCounterGoesOnFromAnExistingStoresHighestId) {
  connector::test::TempDir dir;
  const auto file = old_store(
      dir, 6,
      "INSERT INTO attendants (id, name, role, created_at) VALUES ('ana', 'Ana', 'attendant', 0);"
      "INSERT INTO cases (id, attendant_id, created_at, updated_at) VALUES "
      "  (5, 'ana', 0, 0), (10, 'ana', 0, 0);");
  auto db = store::Database::open(file);
  ASSERT_TRUE(db) << db.failure().message;
  int64_t last = -1;
  EXPECT_TRUE((*db)->run("SELECT last_id FROM host_case_counter", {},
                         [&](const store::Row &row) { last = row.integer(0); }));
  EXPECT_EQ(last, 10);
}

// Migration 008: every stored message with a Message-ID is remembered, not only the first one
// with each id, and so is every message stored from then on.
TEST(MessageIdsMigration, EveryStoredMessageWithAnIdIsRemembered) {
  connector::test::TempDir dir;
  const auto file = old_store(
      dir, 7,
      "INSERT INTO messages (account_id, channel, direction, external_id, stored_at, details) "
      "VALUES ('ana-mail', 'email-imap', 'inbound', 'a', 0, "
      "        '{\"message_id\": \"<orig@cust.example>\"}'),"
      "       ('beto-mail', 'email-imap', 'inbound', 'b', 0, "
      "        '{\"message_id\": \"<orig@cust.example>\"}'),"
      "       ('beto-mail', 'email-imap', 'outbound', '<sent@host.example>', 0, '{}');");

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

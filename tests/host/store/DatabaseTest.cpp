#include "TempDir.hpp"

#include "store/Database.hpp"

#include <gtest/gtest.h>

namespace connector::store {
namespace {

using test::TempDir;

TEST(DatabaseTest, AFreshDatabaseGetsTheWholeSchemaInWalMode) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db) << db.failure().message;
  std::string mode;
  int64_t version = 0;
  ASSERT_TRUE((*db)->run("PRAGMA journal_mode", {}, [&](const Row &r) { mode = r.text(0); }));
  ASSERT_TRUE((*db)->run("PRAGMA user_version", {}, [&](const Row &r) { version = r.integer(0); }));
  EXPECT_EQ(mode, "wal");
  EXPECT_EQ(version, Database::schema_version());
  std::vector<std::string> tables;
  ASSERT_TRUE((*db)->run("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", {},
                         [&](const Row &r) { tables.push_back(r.text(0)); }));
  for (const char *table : {"accounts", "attachments", "attendants", "cases", "contacts",
                            "integration_log", "message_links", "messages", "tokens"}) {
    EXPECT_NE(std::find(tables.begin(), tables.end(), table), tables.end()) << table;
  }
}

TEST(DatabaseTest, ReopeningKeepsDataAndDoesNotReapplyMigrations) {
  TempDir dir;
  {
    auto db = Database::open(dir / "a.db");
    ASSERT_TRUE(db);
    ASSERT_TRUE((*db)->run("INSERT INTO attendants VALUES ('a1', 'Ana', 'admin', 1)"));
  }
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db) << db.failure().message;
  int64_t count = 0;
  ASSERT_TRUE((*db)->run("SELECT COUNT(*) FROM attendants", {},
                         [&](const Row &r) { count = r.integer(0); }));
  EXPECT_EQ(count, 1);
}

TEST(DatabaseTest, ADatabaseFromANewerHostIsRefusedWithTheFix) {
  TempDir dir;
  {
    auto db = Database::open(dir / "a.db");
    ASSERT_TRUE(db);
    ASSERT_TRUE((*db)->run("PRAGMA user_version = 999"));
  }
  auto db = Database::open(dir / "a.db");
  ASSERT_FALSE(db);
  EXPECT_NE(db.failure().message.find("schema version 999, newer than this host's"),
            std::string::npos)
      << db.failure().message;
}

TEST(DatabaseTest, AFileThatIsNotADatabaseIsAClearError) {
  TempDir dir;
  dir.write("a.db", std::string(4096, 'z'));
  auto db = Database::open(dir / "a.db");
  ASSERT_FALSE(db);
  EXPECT_EQ(db.failure().code, "storage");
  EXPECT_NE(db.failure().message.find("a.db"), std::string::npos);
}

TEST(DatabaseTest, AFailedTransactionLeavesNothingBehind) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  auto done = (*db)->transaction([&]() -> Outcome {
    if (auto ok = (*db)->run("INSERT INTO attendants VALUES ('a1', 'Ana', 'admin', 1)"); !ok) {
      return ok;
    }
    return (*db)->run("INSERT INTO attendants VALUES ('a1', 'Again', 'admin', 1)");
  });
  ASSERT_FALSE(done);
  EXPECT_EQ(done.failure().code, "conflict");
  int64_t count = -1;
  ASSERT_TRUE((*db)->run("SELECT COUNT(*) FROM attendants", {},
                         [&](const Row &r) { count = r.integer(0); }));
  EXPECT_EQ(count, 0);
}

}  // namespace
}  // namespace connector::store

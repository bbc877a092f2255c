#include "OldStore.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <iterator>

namespace connector::embedded {
extern const char kMigration001[];
extern const char kMigration002[];
extern const char kMigration003[];
extern const char kMigration004[];
extern const char kMigration005[];
extern const char kMigration006[];
extern const char kMigration007[];
extern const char kMigration008[];
}  // namespace connector::embedded

namespace connector::test {
namespace {

void exec(sqlite3 *db, const std::string &sql) {
  char *error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "");
  sqlite3_free(error);
}

}  // namespace

std::filesystem::path old_store(const TempDir &dir, int version, const std::string &rows) {
  const char *const migrations[] = {embedded::kMigration001, embedded::kMigration002,
                                    embedded::kMigration003, embedded::kMigration004,
                                    embedded::kMigration005, embedded::kMigration006,
                                    embedded::kMigration007, embedded::kMigration008};
  EXPECT_LE(version, static_cast<int>(std::size(migrations))) << "no such older schema";
  const auto file = dir / "old.db";
  sqlite3 *db = nullptr;
  EXPECT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  for (int i = 0; i < version && i < static_cast<int>(std::size(migrations)); ++i) {
    exec(db, migrations[i]);
  }
  exec(db, "PRAGMA user_version = " + std::to_string(version) + ";" + rows);
  sqlite3_close(db);
  return file;
}

}  // namespace connector::test

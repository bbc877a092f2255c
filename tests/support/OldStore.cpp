#include "OldStore.hpp"

#include "store/Database.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

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
  EXPECT_LE(version, store::Database::schema_version()) << "no such older schema";
  const auto file = dir / "old.db";
  sqlite3 *db = nullptr;
  EXPECT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  for (int v = 1; v <= version && v <= store::Database::schema_version(); ++v) {
    exec(db, store::Database::migration(v));
  }
  exec(db, "PRAGMA user_version = " + std::to_string(version) + ";" + rows);
  sqlite3_close(db);
  return file;
}

}  // namespace connector::test

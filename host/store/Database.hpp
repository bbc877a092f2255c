// The host's SQLite database: one connection in WAL mode, schema migrations applied at open, and
// a small statement wrapper so the repositories read as SQL plus bindings.
//
// Threading: a Database may be used from any thread; every public call takes the connection's
// lock. Repositories that need several statements to be atomic use `transaction`.
#pragma once

#include "common/Expected.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace connector::store {

// A value bound to a statement parameter. std::monostate binds NULL; Blob binds bytes.
struct Blob {
  std::string bytes;
};
using Value = std::variant<std::monostate, int64_t, std::string, Blob>;

// One result row, read by column index.
class Row {
 public:
  explicit Row(sqlite3_stmt *stmt) : stmt_(stmt) {}
  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const;
  std::optional<std::string> optional_text(int column) const;
  std::optional<int64_t> optional_integer(int column) const;
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  sqlite3_stmt *stmt_;
};

class Database {
 public:
  // Opens (creating if needed) the database file and brings its schema up to date. A file that
  // is not a database, or one written by a newer host, is refused with a message that says so.
  static Expected<std::unique_ptr<Database>> open(const std::filesystem::path &file);

  ~Database();
  Database(const Database &) = delete;
  Database &operator=(const Database &) = delete;

  // Runs one statement, calling `on_row` for each result row. Returns a Failure with code
  // "storage" (or "conflict" for a constraint violation) on error.
  Outcome run(std::string_view sql, const std::vector<Value> &params = {},
              const std::function<void(const Row &)> &on_row = {});

  // Runs `body` inside BEGIN IMMEDIATE … COMMIT; rolls back when it returns a Failure or throws.
  // Calls inside `body` go through the same connection (the lock is recursive).
  Outcome transaction(const std::function<Outcome()> &body);

  // Reads the whole file for damage (SQLite's quick_check: every page, about a second a GiB):
  // "database_damaged", with SQLite's first finding and the way out, when it is not intact.
  Outcome check_intact();

  int64_t last_insert_id();
  int changes();

  // The connection itself, for a component that keeps prepared statements of its own on it
  // (the case matcher). Use it only while holding lock(), and finalize them before the
  // Database goes.
  sqlite3 *connection() { return db_; }
  std::unique_lock<std::recursive_mutex> lock() { return std::unique_lock(mutex_); }

  // The schema version this host writes (and the highest it can read).
  static int schema_version();
  // The SQL of migration `version` (1 to schema_version()): what brings version - 1 to it.
  static const char *migration(int version);

 private:
  explicit Database(sqlite3 *db) : db_(db) {}
  Outcome migrate();
  Failure error(std::string_view what) const;

  sqlite3 *db_;
  std::recursive_mutex mutex_;
  // Prepared statements by their SQL text, kept for the connection's life: preparing (parsing
  // and planning, triggers included) cost more than running for the store's small statements,
  // about a third of the ingest path per message (issue 4's benchmark). Bounded, so SQL built
  // with values inside cannot grow it without end.
  std::unordered_map<std::string, sqlite3_stmt *> statements_;
};

// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
int64_t now_ms();

}  // namespace connector::store

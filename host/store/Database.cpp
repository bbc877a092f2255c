#include "store/Database.hpp"

#include <cerrno>
#include <chrono>

namespace connector::embedded {
extern const char kMigration001[];
extern const char kMigration002[];
extern const char kMigration003[];
extern const char kMigration004[];
extern const char kMigration005[];
extern const char kMigration006[];
extern const char kMigration007[];
extern const char kMigration008[];
extern const char kMigration009[];
}

namespace connector::store {
namespace {

// Applied in order; index + 1 is the schema version each one produces.
const char *const kMigrations[] = {embedded::kMigration001, embedded::kMigration002,
                                   embedded::kMigration003, embedded::kMigration004,
                                   embedded::kMigration005, embedded::kMigration006,
                                   embedded::kMigration007, embedded::kMigration008,
                                   embedded::kMigration009};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);

constexpr size_t kMaxCachedStatements = 256;

// Gives a statement back whatever way the call that used it leaves: a cached one is reset with
// its bindings cleared (so it holds no lock and no value), any other one is finalised.
struct StatementGuard {
  sqlite3_stmt *stmt = nullptr;
  bool cached = false;
  ~StatementGuard() {
    if (!cached) {
      sqlite3_finalize(stmt);
      return;
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
};

int bind(sqlite3_stmt *stmt, int index, const Value &value) {
  return std::visit(
      [&](const auto &v) -> int {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return sqlite3_bind_null(stmt, index);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          return sqlite3_bind_int64(stmt, index, v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return sqlite3_bind_text(stmt, index, v.data(), static_cast<int>(v.size()),
                                   SQLITE_TRANSIENT);
        } else {
          return sqlite3_bind_blob(stmt, index, v.bytes.data(), static_cast<int>(v.bytes.size()),
                                   SQLITE_TRANSIENT);
        }
      },
      value);
}

}  // namespace

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string Row::text(int column) const {
  const auto *data = reinterpret_cast<const char *>(sqlite3_column_blob(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return data == nullptr ? std::string() : std::string(data, static_cast<size_t>(size));
}

std::optional<std::string> Row::optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}

std::optional<int64_t> Row::optional_integer(int column) const {
  if (is_null(column)) return std::nullopt;
  return integer(column);
}

int Database::schema_version() { return kMigrationCount; }

const char *Database::migration(int version) { return kMigrations[version - 1]; }

Expected<std::unique_ptr<Database>> Database::open(const std::filesystem::path &file) {
  sqlite3 *handle = nullptr;
  const int rc = sqlite3_open_v2(file.c_str(), &handle,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string reason = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
    sqlite3_close(handle);
    return failure("storage", "cannot open the database " + file.string() + ": " + reason);
  }
  std::unique_ptr<Database> db(new Database(handle));
  sqlite3_busy_timeout(handle, 5000);

  // WAL lets readers go on while the ingest path writes; NORMAL sync is durable in WAL mode
  // against process crashes, which is what a killed host needs. Reading through a memory map
  // turns each B-tree page visit of a cold lookup (the case matcher's, with a million contacts
  // most are cold) into a memory access instead of a read() call and a copy; the page cache
  // holds what is written and read again.
  for (const char *pragma : {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
                             "PRAGMA foreign_keys = ON", "PRAGMA mmap_size = 2147418112",
                             "PRAGMA cache_size = -65536"}) {
    if (auto done = db->run(pragma); !done) {
      return failure("storage", "the database " + file.string() +
                                    " cannot be used: " + done.failure().message +
                                    " (is it a SQLite database written by this host?)");
    }
  }
  if (auto migrated = db->migrate(); !migrated) {
    return failure("storage", file.string() + ": " + migrated.failure().message);
  }
  return db;
}

Database::~Database() {
  for (auto &[sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Failure Database::error(std::string_view what) const {
  const int code = sqlite3_extended_errcode(db_);
  const bool conflict = (code & 0xff) == SQLITE_CONSTRAINT;
  // A full disk (or quota) is told apart: it passes once space returns, and whoever wrote
  // pauses until then instead of giving up.
  const int system_error = sqlite3_system_errno(db_);
  const bool full = (code & 0xff) == SQLITE_FULL ||
                    ((code & 0xff) == SQLITE_IOERR && (system_error == ENOSPC ||
                                                       system_error == EDQUOT));
  return failure(conflict ? "conflict" : full ? "storage_full" : "storage",
                 std::string(what) + ": " + sqlite3_errmsg(db_) +
                     (full ? " (the disk is full)" : ""));
}

Outcome Database::run(std::string_view sql, const std::vector<Value> &params,
                      const std::function<void(const Row &)> &on_row) {
  std::lock_guard lock(mutex_);
  StatementGuard guard;
  auto cached = statements_.find(std::string(sql));
  // A cached statement still running belongs to an outer call with the same SQL (from its
  // on_row): this call prepares its own.
  if (cached != statements_.end() && !sqlite3_stmt_busy(cached->second)) {
    guard.stmt = cached->second;
    guard.cached = true;
  } else {
    if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &guard.stmt,
                           nullptr) != SQLITE_OK) {
      return error("cannot prepare statement");
    }
    if (guard.stmt != nullptr && cached == statements_.end() &&
        statements_.size() < kMaxCachedStatements) {
      statements_.emplace(std::string(sql), guard.stmt);
      guard.cached = true;
    }
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (bind(guard.stmt, static_cast<int>(i + 1), params[i]) != SQLITE_OK) {
      return error("cannot bind parameter");
    }
  }
  for (;;) {
    const int rc = sqlite3_step(guard.stmt);
    if (rc == SQLITE_DONE) return Ok{};
    if (rc != SQLITE_ROW) return error("statement failed");
    if (on_row) on_row(Row(guard.stmt));
  }
}

Outcome Database::transaction(const std::function<Outcome()> &body) {
  std::lock_guard lock(mutex_);
  if (auto begun = run("BEGIN IMMEDIATE"); !begun) return begun;
  try {
    Outcome result = body();
    if (result) {
      if (auto committed = run("COMMIT"); committed) return result;
      result = error("cannot commit");
    }
    run("ROLLBACK");
    return result;
  } catch (...) {
    run("ROLLBACK");
    throw;
  }
}

Outcome Database::check_intact() {
  std::vector<std::string> findings;
  auto checked = run("PRAGMA quick_check(3)", {},
                     [&](const Row &row) { findings.push_back(row.text(0)); });
  if (checked && findings.size() == 1 && findings[0] == "ok") return Ok{};
  std::string said = checked ? "" : checked.failure().message;
  for (const auto &finding : findings) said += (said.empty() ? "" : "; ") + finding;
  const std::string file = sqlite3_db_filename(db_, "main");
  return failure("database_damaged",
                 "the database " + file + " is damaged (" + said + "). Restore it from the "
                 "backup; or save what can still be read into a new file with `sqlite3 " + file +
                 " .recover | sqlite3 recovered.db` and put that in its place");
}

int64_t Database::last_insert_id() {
  std::lock_guard lock(mutex_);
  return sqlite3_last_insert_rowid(db_);
}

int Database::changes() {
  std::lock_guard lock(mutex_);
  return sqlite3_changes(db_);
}

Outcome Database::migrate() {
  int version = 0;
  if (auto read = run("PRAGMA user_version", {}, [&](const Row &row) {
        version = static_cast<int>(row.integer(0));
      });
      !read) {
    return read;
  }
  if (version > kMigrationCount) {
    return failure("storage", "the database has schema version " + std::to_string(version) +
                                  ", newer than this host's " + std::to_string(kMigrationCount) +
                                  ": use a newer connector-host, or restore a backup");
  }
  for (int next = version; next < kMigrationCount; ++next) {
    // Each migration and its version stamp commit together, so a crash never leaves a schema
    // half-applied.
    auto applied = transaction([&]() -> Outcome {
      char *message = nullptr;
      if (sqlite3_exec(db_, kMigrations[next], nullptr, nullptr, &message) != SQLITE_OK) {
        std::string reason = message != nullptr ? message : "unknown error";
        sqlite3_free(message);
        return failure("storage", "migration " + std::to_string(next + 1) + " failed: " + reason);
      }
      return run("PRAGMA user_version = " + std::to_string(next + 1));
    });
    if (!applied) return applied;
  }
  return Ok{};
}

}  // namespace connector::store

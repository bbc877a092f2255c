#include "cases/MatchLookups.hpp"

namespace connector::cases {

// One prepared statement, reset (and its bindings cleared) after every use.
class MatchLookups::Query {
 public:
  Query(sqlite3 *db, const char *sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      error_ = sqlite3_errmsg(db);
    }
  }
  ~Query() { sqlite3_finalize(stmt_); }

  const std::string &error() const { return error_; }
  sqlite3_stmt *statement() { return stmt_; }

  Query &bind(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
    return *this;
  }
  Query &bind(int index, int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }

  // Steps to the first row; false when there is none (or on error, which reads as "none":
  // the matcher then falls through to its next rule, and the write side reports real errors).
  bool row() { return sqlite3_step(stmt_) == SQLITE_ROW; }
  int64_t integer(int column) { return sqlite3_column_int64(stmt_, column); }
  bool is_null(int column) { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string text(int column) {
    const auto *data = reinterpret_cast<const char *>(sqlite3_column_text(stmt_, column));
    return data == nullptr ? std::string() : std::string(data);
  }
  void done() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  sqlite3_stmt *stmt_ = nullptr;
  std::string error_;
};

namespace {

CaseRow case_from(auto &q) {
  CaseRow row;
  row.id = q.integer(0);
  row.attendant_id = q.text(1);
  if (!q.is_null(2)) row.contact_id = q.integer(2);
  row.open = q.text(3) == "open";
  if (!q.is_null(4)) row.closed_at = q.integer(4);
  return row;
}

}  // namespace

Expected<std::unique_ptr<MatchLookups>> MatchLookups::open(store::Database &db) {
  std::unique_ptr<MatchLookups> lookups(new MatchLookups(db));
  auto lock = db.lock();
  if (auto prepared = lookups->prepare(); !prepared) return prepared.failure();
  return lookups;
}

MatchLookups::MatchLookups(store::Database &store) : store_(store), db_(store.connection()) {}

MatchLookups::Snapshot::Snapshot(MatchLookups &lookups)
    : lookups_(lookups), lock_(lookups.store_.lock()) {
  // Inside the ingest path's write transaction the reads already see one state. Otherwise a
  // failed BEGIN only means each query reads on its own again.
  if (sqlite3_get_autocommit(lookups_.db_) == 0) return;
  begun_ = sqlite3_step(lookups_.begin_->statement()) == SQLITE_DONE;
  lookups_.begin_->done();
}

MatchLookups::Snapshot::~Snapshot() {
  if (!begun_) return;
  (void)sqlite3_step(lookups_.commit_->statement());
  lookups_.commit_->done();
}

MatchLookups::~MatchLookups() {
  auto lock = store_.lock();
  begin_.reset();
  commit_.reset();
  contact_of_.reset();
  case_row_.reset();
  newest_open_.reset();
  newest_any_.reset();
  message_id_case_.reset();
  merge_undone_.reset();
  auto_linked_cases_.reset();
}

Outcome MatchLookups::prepare() {
  constexpr const char *kCase =
      "SELECT id, attendant_id, contact_id, status, closed_at FROM cases ";
  begin_ = std::make_unique<Query>(db_, "BEGIN");
  commit_ = std::make_unique<Query>(db_, "COMMIT");
  contact_of_ = std::make_unique<Query>(
      db_,
      "SELECT contact_id FROM contact_identities WHERE attendant_id = ? AND kind = ? AND value = ?");
  case_row_ = std::make_unique<Query>(db_, (std::string(kCase) + "WHERE id = ?").c_str());
  newest_open_ = std::make_unique<Query>(
      db_,
      (std::string(kCase) +
       "WHERE contact_id = ? AND attendant_id = ? AND status = 'open' ORDER BY id DESC LIMIT 1")
          .c_str());
  newest_any_ = std::make_unique<Query>(
      db_,
      (std::string(kCase) + "WHERE contact_id = ? AND attendant_id = ? ORDER BY id DESC LIMIT 1")
          .c_str());
  message_id_case_ = std::make_unique<Query>(
      db_,
      "SELECT l.case_id FROM mail_message_ids i JOIN message_links l ON l.message_id = "
      "i.message_row JOIN cases c ON c.id = l.case_id WHERE i.message_id = ? AND "
      "c.attendant_id = ? ORDER BY i.message_row LIMIT 1");
  merge_undone_ = std::make_unique<Query>(
      db_,
      "SELECT 1 FROM contact_merges WHERE undone_at IS NOT NULL AND ((kept_id = ?1 AND "
      "merged_id = ?2) OR (kept_id = ?2 AND merged_id = ?1)) LIMIT 1");
  auto_linked_cases_ = std::make_unique<Query>(
      db_,
      "SELECT COUNT(DISTINCT l.case_id) FROM message_links l JOIN messages m ON m.id = "
      "l.message_id WHERE m.account_id = ? AND l.method != 'manual'");
  for (const auto *q : {begin_.get(), commit_.get(), contact_of_.get(), case_row_.get(), newest_open_.get(), newest_any_.get(),
                        message_id_case_.get(), merge_undone_.get(),
                        auto_linked_cases_.get()}) {
    if (!q->error().empty()) {
      return failure("storage", "the case matcher cannot prepare its queries: " + q->error());
    }
  }
  return Ok{};
}

std::optional<int64_t> MatchLookups::contact_of(std::string_view attendant_id,
                                                std::string_view kind, std::string_view value) {
  auto lock = store_.lock();
  Query &q = contact_of_->bind(1, attendant_id).bind(2, kind).bind(3, value);
  std::optional<int64_t> found;
  if (q.row()) found = q.integer(0);
  q.done();
  return found;
}

std::optional<CaseRow> MatchLookups::case_row(int64_t case_id) {
  auto lock = store_.lock();
  Query &q = case_row_->bind(1, case_id);
  std::optional<CaseRow> found;
  if (q.row()) found = case_from(q);
  q.done();
  return found;
}

std::optional<CaseRow> MatchLookups::newest_case(int64_t contact_id, std::string_view attendant_id,
                                                 bool open_only) {
  auto lock = store_.lock();
  Query &q = (open_only ? *newest_open_ : *newest_any_).bind(1, contact_id).bind(2, attendant_id);
  std::optional<CaseRow> found;
  if (q.row()) found = case_from(q);
  q.done();
  return found;
}

std::optional<int64_t> MatchLookups::case_of_message_id(std::string_view message_id,
                                                        std::string_view attendant_id) {
  auto lock = store_.lock();
  Query &q = message_id_case_->bind(1, message_id).bind(2, attendant_id);
  std::optional<int64_t> found;
  if (q.row()) found = q.integer(0);
  q.done();
  return found;
}

bool MatchLookups::merge_was_undone(int64_t a, int64_t b) {
  auto lock = store_.lock();
  Query &q = merge_undone_->bind(1, a).bind(2, b);
  const bool found = q.row();
  q.done();
  return found;
}

int64_t MatchLookups::auto_linked_cases(std::string_view account_id) {
  auto lock = store_.lock();
  Query &q = auto_linked_cases_->bind(1, account_id);
  const int64_t count = q.row() ? q.integer(0) : 0;
  q.done();
  return count;
}

}  // namespace connector::cases

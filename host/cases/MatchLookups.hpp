// The matcher's read side: its own read-only SQLite connection with every query prepared once.
//
// Why a second connection: the store's Database prepares each statement on every call, which
// alone costs more than the matcher's whole budget per message (p99 ≤ 20 µs). In WAL mode a
// reader sees every committed write at its next statement and never blocks the writer; all
// writes still go through the store's Database. Each query resets its statement after use, so
// no read transaction stays open between calls.
//
// One decision reads inside one Snapshot: a single read transaction for all its queries. Without
// it each query opens its own, and taking and dropping the WAL read lock (fcntl calls) cost
// about a tenth of the matcher's time.
//
// Threading: thread-safe (one recursive mutex, held by a Snapshot for its whole life; each
// query is a few microseconds).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/Expected.hpp"
#include "store/Database.hpp"

namespace connector::cases {

struct CaseRow {
  int64_t id = 0;
  std::string attendant_id;
  std::optional<int64_t> contact_id;
  bool open = true;
  std::optional<int64_t> closed_at;
};

class MatchLookups {
 public:
  // Opens a read-only connection to the file behind `db` (found through PRAGMA database_list).
  static Expected<std::unique_ptr<MatchLookups>> open(store::Database &db);
  ~MatchLookups();
  MatchLookups(const MatchLookups &) = delete;
  MatchLookups &operator=(const MatchLookups &) = delete;

  // Holds the lookups and one read transaction until destroyed; queries made meanwhile on this
  // thread all read the same committed state.
  class Snapshot {
   public:
    explicit Snapshot(MatchLookups &lookups);
    ~Snapshot();
    Snapshot(const Snapshot &) = delete;
    Snapshot &operator=(const Snapshot &) = delete;

   private:
    MatchLookups &lookups_;
    std::unique_lock<std::recursive_mutex> lock_;
    bool begun_ = false;
  };

  // The contact of `attendant_id` that an identity reaches (contacts are per attendant).
  std::optional<int64_t> contact_of(std::string_view attendant_id, std::string_view kind,
                                    std::string_view value);

  std::optional<CaseRow> case_row(int64_t case_id);

  // The newest case of a contact for one attendant: the newest open one, or when `open_only`
  // is false the newest of any status.
  std::optional<CaseRow> newest_case(int64_t contact_id, std::string_view attendant_id,
                                     bool open_only);

  // The case of the message that carried this Message-ID (stored or sent), if it has one.
  std::optional<int64_t> case_of_message_id(std::string_view message_id);

  // True when a merge of these two contacts (either way round) was undone by hand: the matcher
  // must not merge them again by itself.
  bool merge_was_undone(int64_t a, int64_t b);

  // The figure Conversations::auto_linked_cases gives, read on this connection.
  int64_t auto_linked_cases(std::string_view account_id);

 private:
  class Query;
  MatchLookups(sqlite3 *db);
  Outcome prepare();

  sqlite3 *db_;
  std::recursive_mutex mutex_;
  std::unique_ptr<Query> begin_, commit_, contact_of_, case_row_, newest_open_, newest_any_, message_id_case_,
      merge_undone_, auto_linked_cases_;
};

}  // namespace connector::cases

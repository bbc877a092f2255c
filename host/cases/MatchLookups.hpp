// The matcher's read side: its queries prepared once, on the store's own connection.
//
// Why prepared here: preparing a statement costs more than the matcher's whole budget per
// message (p99 ≤ 20 µs). Why on the store's connection and not a read-only one of its own: the
// ingest path decides inside its write transaction, on pages that connection keeps warm. A
// second connection had to drop its whole page cache each time the writer committed, which made
// every decision during a stream of messages several times slower than an idle one.
//
// One decision reads inside one Snapshot: it holds the store's lock and, when no transaction is
// open yet, a single read transaction for all its queries (each query would otherwise open its
// own, and take and drop the WAL read lock with fcntl calls).
//
// Threading: thread-safe (the store's recursive lock is held by every query and by a Snapshot
// for its whole life).
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
  // Prepares the queries on `db`'s connection; `db` must outlive the lookups.
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
    bool begun_ = false;  // this Snapshot began the read transaction
  };

  // The contact of `attendant_id` that an identity reaches (contacts are per attendant).
  std::optional<int64_t> contact_of(std::string_view attendant_id, std::string_view kind,
                                    std::string_view value);

  std::optional<CaseRow> case_row(int64_t case_id);

  // The newest case of a contact for one attendant: the newest open one, or when `open_only`
  // is false the newest of any status.
  std::optional<CaseRow> newest_case(int64_t contact_id, std::string_view attendant_id,
                                     bool open_only);

  // The case of this attendant's (oldest) message that carried this Message-ID, stored or sent,
  // if it has one.
  std::optional<int64_t> case_of_message_id(std::string_view message_id,
                                            std::string_view attendant_id);

  // True when a merge of these two contacts (either way round) was undone by hand: the matcher
  // must not merge them again by itself.
  bool merge_was_undone(int64_t a, int64_t b);

  // The figure Conversations::auto_linked_cases gives, read on this connection.
  int64_t auto_linked_cases(std::string_view account_id);

 private:
  class Query;
  explicit MatchLookups(store::Database &store);
  Outcome prepare();

  store::Database &store_;
  sqlite3 *db_;
  std::unique_ptr<Query> begin_, commit_, contact_of_, case_row_, newest_open_, newest_any_, message_id_case_,
      merge_undone_, auto_linked_cases_;
};

}  // namespace connector::cases

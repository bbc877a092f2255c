// Contacts and the identities that reach them, on the write side: creating contacts, adding
// identities, merging two contacts that turn out to be one person, and undoing a merge.
//
// A merge moves the identities and cases of one contact onto another and records exactly what
// moved, so an undo moves back what is still there. The merged contact keeps its row (with
// merged_into set), so its id stays valid for the undo.
//
// Threading: not synchronised itself; Casework calls it under its lock. Every write method is
// meant to run inside a Database transaction opened by the caller.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cases/Identities.hpp"
#include "common/Expected.hpp"
#include "store/Database.hpp"

namespace connector::cases {

using Json = nlohmann::json;

class ContactDirectory {
 public:
  explicit ContactDirectory(store::Database &db) : db_(db) {}

  Expected<int64_t> create(const std::vector<Identity> &identities);

  // Gives the contact these identities; identities already held by another contact stay there
  // (the caller decides whether to merge first).
  Outcome attach(int64_t contact_id, const std::vector<Identity> &identities);

  // Moves everything of `merged_id` onto `kept_id` and records it. `reason` says what joined
  // them ("a LID and its phone in one message"); `by` is an attendant id or empty for the host.
  Expected<int64_t> merge(int64_t kept_id, int64_t merged_id, const std::string &reason,
                          const std::string &by);

  // Moves back what the merge moved and is still on the kept contact. Refused ("state") for a
  // merge already undone, "not_found" for an unknown one.
  Outcome undo_merge(int64_t merge_id, const std::string &by);

  // The contact of `identity`, read on the writing connection (inside a transaction this sees
  // the transaction's own writes).
  std::optional<int64_t> owner_of(const Identity &identity);

  // {"id", "display_name", "phones", "whatsapp_ids", "emails"}; null when there is none.
  Json contact_json(std::optional<int64_t> contact_id);

  // Merges, newest first: every one, or those touching one contact.
  std::vector<Json> merges(std::optional<int64_t> contact_id, int limit);
  Expected<Json> merge_json(int64_t merge_id);

 private:
  store::Database &db_;
};

}  // namespace connector::cases

// Contacts and the identities that reach them, on the write side: creating contacts, adding
// identities, merging two contacts that turn out to be one person, and undoing a merge.
//
// Every contact belongs to one attendant (contacts.attendant_id), and so does each of its
// identities: the same phone can reach a contact of Ana and another contact of Beto, and nothing
// one attendant does joins, merges or changes the other's. Every lookup here names the owner.
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

  // A new contact of `owner` (an attendant id) reached by these identities.
  Expected<int64_t> create(const std::string &owner, const std::vector<Identity> &identities);

  // Gives `owner`'s contact these identities; identities already held by another contact of the
  // owner stay there (the caller decides whether to merge first).
  Outcome attach(const std::string &owner, int64_t contact_id,
                 const std::vector<Identity> &identities);

  // Takes from the contact every identity of `kind` that is not in `keep` (PATCH of a case
  // replaces its contact's phones, addresses or WhatsApp ids).
  Outcome keep_only(int64_t contact_id, const std::string &kind,
                    const std::vector<Identity> &keep);

  // Moves everything of `merged_id` onto `kept_id` and records it. Both must have one owner
  // ("invalid_request" otherwise: contacts of two attendants never merge). `reason` says what joined
  // them ("a LID and its phone in one message"); `by` is an attendant id or empty for the host.
  Expected<int64_t> merge(int64_t kept_id, int64_t merged_id, const std::string &reason,
                          const std::string &by);

  // Moves back what the merge moved and is still on the kept contact. Refused ("state") for a
  // merge already undone, "not_found" for an unknown one.
  Outcome undo_merge(int64_t merge_id, const std::string &by);

  // `owner`'s contact reached by `identity`, read on the writing connection (inside a
  // transaction this sees the transaction's own writes).
  std::optional<int64_t> contact_of(const std::string &owner, const Identity &identity);

  // The attendant a contact belongs to; empty when there is no such contact.
  std::string owner_of_contact(int64_t contact_id);

  // {"id", "display_name", "phones", "whatsapp_ids", "emails"}; null when there is none.
  Json contact_json(std::optional<int64_t> contact_id);

  // Merges, newest first: every one, or those touching one contact; with `owner`, only merges
  // of that attendant's contacts.
  std::vector<Json> merges(std::optional<int64_t> contact_id, int limit,
                           const std::optional<std::string> &owner = std::nullopt);
  Expected<Json> merge_json(int64_t merge_id);

 private:
  store::Database &db_;
};

}  // namespace connector::cases

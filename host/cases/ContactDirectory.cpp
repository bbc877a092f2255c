#include "cases/ContactDirectory.hpp"

#include <optional>

namespace connector::cases {
namespace {

Json merge_from(const store::Row &row) {
  return {{"id", row.integer(0)},
          {"kept_contact_id", row.integer(1)},
          {"merged_contact_id", row.integer(2)},
          {"reason", row.text(3)},
          {"identities", Json::parse(row.text(4), nullptr, false)},
          {"cases", Json::parse(row.text(5), nullptr, false)},
          {"merged_by", row.text(6)},
          {"merged_at", row.integer(7)},
          {"undone_by", row.is_null(8) ? Json() : Json(row.text(8))},
          {"undone_at", row.is_null(9) ? Json() : Json(row.integer(9))}};
}

constexpr const char *kMergeColumns =
    "SELECT id, kept_id, merged_id, reason, identities, cases, merged_by, merged_at, undone_by, "
    "undone_at FROM contact_merges ";

}  // namespace

Expected<int64_t> ContactDirectory::create(const std::string &owner,
                                           const std::vector<Identity> &identities) {
  auto inserted = db_.run("INSERT INTO contacts (attendant_id, created_at) VALUES (?, ?)",
                          {owner, store::now_ms()});
  if (!inserted) return inserted.failure();
  const int64_t id = db_.last_insert_id();
  if (auto attached = attach(owner, id, identities); !attached) return attached.failure();
  return id;
}

Outcome ContactDirectory::attach(const std::string &owner, int64_t contact_id,
                                 const std::vector<Identity> &identities) {
  for (const auto &identity : identities) {
    auto done = db_.run(
        "INSERT OR IGNORE INTO contact_identities (attendant_id, kind, value, contact_id) "
        "VALUES (?, ?, ?, ?)",
        {owner, identity.kind, identity.value, contact_id});
    if (!done) return done;
  }
  return Ok{};
}

Outcome ContactDirectory::keep_only(int64_t contact_id, const std::string &kind,
                                    const std::vector<Identity> &keep) {
  Json values = Json::array();
  for (const auto &identity : keep) {
    if (identity.kind == kind) values.push_back(identity.value);
  }
  return db_.run(
      "DELETE FROM contact_identities WHERE contact_id = ? AND kind = ? AND value NOT IN "
      "(SELECT value FROM json_each(?))",
      {contact_id, kind, values.dump()});
}

std::optional<int64_t> ContactDirectory::contact_of(const std::string &owner,
                                                    const Identity &identity) {
  std::optional<int64_t> contact;
  (void)db_.run(
      "SELECT contact_id FROM contact_identities WHERE attendant_id = ? AND kind = ? AND value = ?",
      {owner, identity.kind, identity.value},
      [&](const store::Row &row) { contact = row.integer(0); });
  return contact;
}

std::string ContactDirectory::owner_of_contact(int64_t contact_id) {
  std::string owner;
  (void)db_.run("SELECT attendant_id FROM contacts WHERE id = ?", {contact_id},
                [&](const store::Row &row) { owner = row.text(0); });
  return owner;
}

Expected<int64_t> ContactDirectory::merge(int64_t kept_id, int64_t merged_id,
                                          const std::string &reason, const std::string &by) {
  if (kept_id == merged_id) return failure("invalid_request", "a contact cannot merge into itself");
  if (owner_of_contact(kept_id) != owner_of_contact(merged_id)) {
    return failure("invalid_request", "contacts of two attendants never merge");
  }
  Json identities = Json::array();
  Json cases = Json::array();
  auto read = db_.run("SELECT kind, value FROM contact_identities WHERE contact_id = ?",
                      {merged_id}, [&](const store::Row &row) {
                        identities.push_back({row.text(0), row.text(1)});
                      });
  if (!read) return read.failure();
  read = db_.run("SELECT id FROM cases WHERE contact_id = ?", {merged_id},
                 [&](const store::Row &row) { cases.push_back(row.integer(0)); });
  if (!read) return read.failure();

  for (const char *sql : {"UPDATE contact_identities SET contact_id = ?1 WHERE contact_id = ?2",
                          "UPDATE cases SET contact_id = ?1 WHERE contact_id = ?2",
                          "UPDATE contacts SET merged_into = ?1 WHERE id = ?2",
                          // Contacts merged into the merged one earlier now point at the kept one.
                          "UPDATE contacts SET merged_into = ?1 WHERE merged_into = ?2"}) {
    if (auto done = db_.run(sql, {kept_id, merged_id}); !done) return done.failure();
  }
  auto recorded = db_.run(
      "INSERT INTO contact_merges (kept_id, merged_id, reason, identities, cases, merged_by, "
      "merged_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      {kept_id, merged_id, reason, identities.dump(), cases.dump(), by, store::now_ms()});
  if (!recorded) return recorded.failure();
  return db_.last_insert_id();
}

Outcome ContactDirectory::undo_merge(int64_t merge_id, const std::string &by) {
  auto merge = merge_json(merge_id);
  if (!merge) return merge.failure();
  if (!(*merge)["undone_at"].is_null()) {
    return failure("state", "merge " + std::to_string(merge_id) + " was already undone");
  }
  const int64_t kept = (*merge)["kept_contact_id"];
  const int64_t merged = (*merge)["merged_contact_id"];
  // What this merge joined has since moved on with the kept contact into another one: undoing
  // it here would move nothing back. The later merge is undone first.
  std::optional<int64_t> later;
  auto read = db_.run(
      "SELECT id FROM contact_merges WHERE merged_id = ? AND undone_at IS NULL AND id > ? "
      "ORDER BY id DESC LIMIT 1",
      {kept, merge_id}, [&](const store::Row &row) { later = row.integer(0); });
  if (!read) return read;
  if (later) {
    return failure("state", "contact " + std::to_string(kept) +
                                " was merged into another contact afterwards (merge " +
                                std::to_string(*later) + "): undo merge " +
                                std::to_string(*later) + " first");
  }
  for (const auto &pair : (*merge)["identities"]) {
    auto done = db_.run(
        "UPDATE contact_identities SET contact_id = ? WHERE kind = ? AND value = ? AND "
        "contact_id = ?",
        {merged, pair[0].get<std::string>(), pair[1].get<std::string>(), kept});
    if (!done) return done;
  }
  for (const auto &case_id : (*merge)["cases"]) {
    auto done = db_.run("UPDATE cases SET contact_id = ? WHERE id = ? AND contact_id = ?",
                        {merged, case_id.get<int64_t>(), kept});
    if (!done) return done;
  }
  if (auto done = db_.run("UPDATE contacts SET merged_into = NULL WHERE id = ?", {merged}); !done) {
    return done;
  }
  return db_.run("UPDATE contact_merges SET undone_by = ?, undone_at = ? WHERE id = ?",
                 {by, store::now_ms(), merge_id});
}

Json ContactDirectory::contact_json(std::optional<int64_t> contact_id) {
  if (!contact_id) return nullptr;
  Json contact;
  (void)db_.run("SELECT id, display_name, merged_into FROM contacts WHERE id = ?", {*contact_id},
                [&](const store::Row &row) {
                  contact = {{"id", row.integer(0)},
                             {"display_name", row.text(1)},
                             {"phones", Json::array()},
                             {"whatsapp_ids", Json::array()},
                             {"emails", Json::array()}};
                });
  if (contact.is_null()) return nullptr;
  (void)db_.run(
      "SELECT kind, value FROM contact_identities WHERE contact_id = ? ORDER BY kind, value",
      {*contact_id}, [&](const store::Row &row) {
        const std::string kind = row.text(0);
        const char *list = kind == "phone" ? "phones" : kind == "email" ? "emails" : "whatsapp_ids";
        contact[list].push_back(row.text(1));
      });
  return contact;
}

std::vector<Json> ContactDirectory::merges(std::optional<int64_t> contact_id, int limit,
                                           const std::optional<std::string> &owner) {
  std::vector<Json> out;
  const std::string where =
      "WHERE (?1 IS NULL OR kept_id = ?1 OR merged_id = ?1) AND (?3 IS NULL OR kept_id IN "
      "(SELECT id FROM contacts WHERE attendant_id = ?3)) ORDER BY id DESC LIMIT ?2";
  std::vector<store::Value> params = {contact_id ? store::Value(*contact_id) : store::Value(),
                                      int64_t{limit}, owner ? store::Value(*owner) : store::Value()};
  (void)db_.run(std::string(kMergeColumns) + where, params,
                [&](const store::Row &row) { out.push_back(merge_from(row)); });
  return out;
}

Expected<Json> ContactDirectory::merge_json(int64_t merge_id) {
  std::optional<Json> found;
  auto read = db_.run(std::string(kMergeColumns) + "WHERE id = ?", {merge_id},
                      [&](const store::Row &row) { found = merge_from(row); });
  if (!read) return read.failure();
  if (!found) return failure("not_found", "no merge " + std::to_string(merge_id));
  return *found;
}

}  // namespace connector::cases

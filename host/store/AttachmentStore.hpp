// Attachment bytes, stored once per content under the data folder
// (attachments/<2 hex>/<64 hex>), named by their SHA-256. A file appears under its final name
// only once it is completely written, so a killed host never leaves a half-written one. Syncing
// to the disk is left to sync_pending(), which the host calls before it stores a message that
// names attachments: one sync covers every file stored since the last, where a sync per file
// cost more than everything else a mail's first sync does.
#pragma once

#include "common/Expected.hpp"
#include "store/Database.hpp"

#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace connector::store {

class AttachmentStore {
 public:
  AttachmentStore(Database &db, std::filesystem::path root);

  // Stores the bytes (if not already there) and returns their id, the SHA-256 in lowercase hex.
  // The file is not synced yet: see sync_pending().
  Expected<std::string> put(std::string_view bytes);

  // Syncs every file put() wrote since the last call (their data, then their folders), so a
  // power cut cannot take the bytes of a message that is stored after this. Fails with
  // "storage_full" or "storage"; the files then stay pending.
  Outcome sync_pending();

  // How many written files wait for sync_pending().
  size_t pending() const;

  // The file of a stored attachment; fails with "not_found" for an unknown or malformed id.
  Expected<std::filesystem::path> path(std::string_view id) const;

  // Whether a stored attachment's file is still whole (there, and as long as when it was stored):
  // "not_found" for an id the store never had, "attachment_missing" (saying which file and the
  // way out) when the file is gone or cut short.
  Outcome check(std::string_view id) const;

  // When the database names stored attachments, their folder must exist: a folder deleted while
  // the host was stopped fails with "attachments_missing", naming it and the way out.
  Outcome check_folder() const;

  // Removes a stored attachment no message names (its message could not be stored), so a
  // failed write leaves no file behind; one that a message names, as an attachment or in its
  // details, stays.
  void forget_unreferenced(std::string_view id);

  static bool valid_id(std::string_view id);

 private:
  std::filesystem::path file_for(std::string_view id) const;

  Database &db_;
  std::filesystem::path root_;
  std::mutex sync_mutex_;
  mutable std::mutex pending_mutex_;
  std::vector<std::filesystem::path> pending_;  // written by put(), not synced yet
};

}  // namespace connector::store

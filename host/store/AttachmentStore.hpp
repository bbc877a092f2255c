// Attachment bytes, stored once per content and named by their SHA-256. A small content (up to
// the inline limit, 64 KiB unless told otherwise: the raw copy of most mails, a small image) is
// kept in its row of the database, where SQLite reads and writes it faster than one file each. A
// bigger one is a file under the data folder (attachments/<2 hex>/<64 hex>), which appears under
// its final name only once it is completely written, so a killed host never leaves a
// half-written one. Writing the rows and syncing the files is left to sync_pending(), which the
// host calls before it stores a message that names what put() stored: one transaction and one
// sync cover everything stored since the last, where one each cost more than everything else a
// mail's first sync does. What put() holds and a crash loses, no stored message names.
// A row an older host wrote has no bytes: its content is in its file.
//
// Threading: every call may come from any thread.
#pragma once

#include "common/Expected.hpp"
#include "store/Database.hpp"

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace connector::store {

class AttachmentStore {
 public:
  // Contents of up to this many bytes are kept in the database unless the store is told otherwise.
  static constexpr size_t kDefaultInlineLimit = 64 * 1024;

  // `inline_limit`: the largest content kept in the database; 0 keeps every content in a file.
  AttachmentStore(Database &db, std::filesystem::path root,
                  size_t inline_limit = kDefaultInlineLimit);

  // Stores the bytes (if not already there) and returns their id, the SHA-256 in lowercase hex.
  // A content up to the inline limit goes into its row (also when an older host left it as a
  // file), held in memory until sync_pending() (or until what is held passes 4 MiB); a bigger
  // one into a file that is not synced yet. Every other call sees a held content as stored. A
  // full disk fails with "storage_full".
  Expected<std::string> put(std::string_view bytes);

  // Writes every row put() holds, in one transaction, and syncs every file it wrote since the
  // last call (their data, then their folders), so neither a crash nor a power cut can take the
  // bytes of a message that is stored after this. Fails with "storage_full" or "storage"; what
  // was not written or synced then stays pending.
  Outcome sync_pending();

  // How many contents (held rows and unsynced files) wait for sync_pending().
  size_t pending() const;

  // The bytes of a stored attachment, from its row or its file; fails as check() does.
  Expected<std::string> read(std::string_view id) const;

  // Whether the store holds this attachment: its row is there and, for a content kept in a file,
  // so is the file. Cheap: it reads no bytes and writes no file.
  bool has(std::string_view id) const;

  // A file with the bytes of a stored attachment, for whoever needs a path (a plugin sending it).
  // A content kept in the database is written out to its file first when that is missing or of
  // the wrong length; the file is not synced, the database holds the bytes. Fails with
  // "not_found" for an unknown or malformed id or a file-backed content whose file is gone, and
  // with "storage_full" or "storage" when the file cannot be written.
  Expected<std::filesystem::path> path(std::string_view id) const;

  // Whether a stored attachment is still whole (its row's bytes, or its file, as long as when it
  // was stored): "not_found" for an id the store never had, "attachment_missing" (saying which
  // file or row and the way out) when the bytes are gone or cut short.
  Outcome check(std::string_view id) const;

  // When the database names attachments kept in files, their folder must exist: a folder
  // deleted while the host was stopped fails with "attachments_missing", naming it and the way
  // out. Contents kept in the database need no folder.
  Outcome check_folder() const;

  // Removes a stored attachment no message names (its message could not be stored), so a
  // failed write leaves no row and no file behind; one that a message names, as an attachment or
  // in its details, stays.
  void forget_unreferenced(std::string_view id);

  // Removes the files a host killed while writing them left half-written. Only for the host at
  // its start: another process's writes in progress would go too.
  void remove_unfinished();

  // The folder under the store's root where files are written before they take their names.
  static constexpr const char *kUnfinished = ".unfinished";

  static bool valid_id(std::string_view id);

 private:
  // What the database knows of a stored attachment.
  struct Stored {
    int64_t size = 0;
    bool in_row = false;  // its bytes are in the database, not (only) in its file
  };

  std::filesystem::path file_for(std::string_view id) const;
  Expected<std::optional<Stored>> find(std::string_view id) const;
  Expected<std::string> put_in_row(const std::string &id, std::string_view bytes);
  Outcome write_rows();
  Expected<std::string> put_in_file(const std::string &id, std::string_view bytes);
  Outcome write_file(const std::filesystem::path &file, std::string_view bytes) const;
  Outcome row_whole(std::string_view id, int64_t size, uint64_t found) const;
  Outcome file_whole(std::string_view id, int64_t size) const;

  Database &db_;
  std::filesystem::path root_;
  size_t inline_limit_;
  std::mutex sync_mutex_;
  mutable std::mutex pending_mutex_;
  std::vector<std::filesystem::path> pending_;  // written by put(), not synced yet
  // Rows put() holds, by id, and their bytes: written by write_rows().
  static constexpr size_t kMaxUnwrittenBytes = 4 << 20;
  std::map<std::string, std::string, std::less<>> unwritten_;
  size_t unwritten_bytes_ = 0;
};

}  // namespace connector::store

#include "store/AttachmentStore.hpp"

#include <sodium.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <cstdio>
#include <fcntl.h>
#include <set>
#include <unistd.h>

namespace connector::store {
namespace {

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char *>(bytes.data()), bytes.size());
  char hex[2 * sizeof(digest) + 1];
  sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
  return hex;
}

bool disk_full(int error) { return error == ENOSPC || error == EDQUOT; }

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

AttachmentStore::AttachmentStore(Database &db, std::filesystem::path root)
    : db_(db), root_(std::move(root)) {}

bool AttachmentStore::valid_id(std::string_view id) {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::filesystem::path AttachmentStore::file_for(std::string_view id) const {
  return root_ / std::string(id.substr(0, 2)) / std::string(id);
}

Expected<std::string> AttachmentStore::put(std::string_view bytes) {
  const std::string id = sha256_hex(bytes);
  const auto file = file_for(id);
  std::error_code ec;
  // A file of another length under this name is what a power cut left of an unsynced write:
  // it is written again.
  const auto found = std::filesystem::file_size(file, ec);
  bool written = false;
  if (ec || found != bytes.size()) {
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec && disk_full(ec.value())) {
      return failure("storage_full", "cannot create a folder in " + root_.string() + ": " +
                                         ec.message());
    }
    static std::atomic<uint64_t> sequence{0};
    const auto temp = file.parent_path() / (".tmp-" + std::to_string(::getpid()) + "-" +
                                            std::to_string(sequence++));
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return failure(disk_full(errno) ? "storage_full" : "storage",
                     "cannot create an attachment file in " + root_.string() + ": " +
                         std::strerror(errno));
    }
    const bool ok = write_all(fd, bytes);
    const int write_error = errno;
    ::close(fd);
    if (!ok || std::rename(temp.c_str(), file.c_str()) != 0) {
      const int error = ok ? errno : write_error;
      ::unlink(temp.c_str());
      return failure(disk_full(error) ? "storage_full" : "storage",
                     "cannot write an attachment file in " + root_.string() + ": " +
                         std::strerror(error));
    }
    written = true;
    std::lock_guard lock(pending_mutex_);
    pending_.push_back(file);
  }
  auto recorded = db_.run("INSERT OR IGNORE INTO attachments (id, size, created_at) VALUES (?, ?, ?)",
                          {id, static_cast<int64_t>(bytes.size()), now_ms()});
  if (!recorded) {
    // No file without its row: the one just written goes again (the disk may be full).
    if (written) ::unlink(file.c_str());
    return recorded.failure();
  }
  return id;
}

Outcome AttachmentStore::sync_pending() {
  // One sync at a time: a caller must not find the list empty while the files its message
  // names are still being synced by another.
  std::lock_guard syncing(sync_mutex_);
  std::vector<std::filesystem::path> files;
  {
    std::lock_guard lock(pending_mutex_);
    files.swap(pending_);
  }
  if (files.empty()) return Ok{};
  // Writeback of every file is started first, so their data goes out together and the syncs
  // after it mostly wait for one journal commit instead of one each.
  std::vector<int> fds;
  int error = 0;
  for (const auto &file : files) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) continue;  // removed since: no message names it
    if (fd < 0) {
      error = errno;
      break;
    }
    (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    fds.push_back(fd);
  }
  for (const int fd : fds) {
    if (error == 0 && ::fdatasync(fd) != 0) error = errno;
    ::close(fd);
  }
  // The renames that gave the files their names.
  std::set<std::filesystem::path> folders;
  for (const auto &file : files) folders.insert(file.parent_path());
  for (const auto &folder : folders) {
    if (error != 0) break;
    const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) error = errno;
    if (fd >= 0) ::close(fd);
  }
  if (error == 0) return Ok{};
  {
    std::lock_guard lock(pending_mutex_);
    pending_.insert(pending_.end(), files.begin(), files.end());
  }
  return failure(disk_full(error) ? "storage_full" : "storage",
                 "cannot sync the attachment files in " + root_.string() + ": " +
                     std::strerror(error));
}

size_t AttachmentStore::pending() const {
  std::lock_guard lock(pending_mutex_);
  return pending_.size();
}

Expected<std::filesystem::path> AttachmentStore::path(std::string_view id) const {
  if (!valid_id(id)) return failure("not_found", "no such attachment");
  auto file = file_for(id);
  if (!std::filesystem::exists(file)) return failure("not_found", "no such attachment");
  return file;
}

Outcome AttachmentStore::check(std::string_view id) const {
  if (!valid_id(id)) return failure("not_found", "no such attachment");
  std::optional<int64_t> size;
  auto read = db_.run("SELECT size FROM attachments WHERE id = ?", {std::string(id)},
                      [&](const Row &row) { size = row.integer(0); });
  if (!read) return read;
  if (!size) return failure("not_found", "no such attachment");
  const auto file = file_for(id);
  const std::string fix =
      ": restore the data folder's attachments from a backup (the message itself is kept)";
  std::error_code ec;
  const auto found = std::filesystem::file_size(file, ec);
  if (ec) {
    return failure("attachment_missing",
                   "the attachment's file " + file.string() + " is gone" + fix);
  }
  if (found != static_cast<uintmax_t>(*size)) {
    return failure("attachment_missing", "the attachment's file " + file.string() + " is damaged (" +
                                             std::to_string(found) + " bytes of " +
                                             std::to_string(*size) + ")" + fix);
  }
  return Ok{};
}

Outcome AttachmentStore::check_folder() const {
  std::error_code ec;
  if (std::filesystem::is_directory(root_, ec)) return Ok{};
  int64_t stored = 0;
  auto read = db_.run("SELECT COUNT(*) FROM attachments", {},
                      [&](const Row &row) { stored = row.integer(0); });
  if (!read) return read;
  if (stored == 0) return Ok{};
  return failure("attachments_missing",
                 "the attachments folder " + root_.string() + " is missing, but the database "
                 "names " + std::to_string(stored) + " stored attachments. Restore the folder "
                 "from the backup; or, to go on without those files (their messages are kept and "
                 "say the attachment is gone), create it empty: mkdir -m 700 " + root_.string());
}

void AttachmentStore::forget_unreferenced(std::string_view id) {
  if (!valid_id(id)) return;
  bool named = false;
  auto forgotten = db_.transaction([&]() -> Outcome {
    auto read = db_.run("SELECT 1 FROM message_attachments WHERE attachment_id = ? LIMIT 1",
                        {std::string(id)}, [&](const Row &) { named = true; });
    if (!read || named) return read;
    // A message may name it in its details too (an e-mail's raw copy): read them all, which
    // only this failure path does.
    read = db_.run("SELECT 1 FROM messages WHERE instr(details, ?) > 0 LIMIT 1",
                   {std::string(id)}, [&](const Row &) { named = true; });
    if (!read || named) return read;
    return db_.run("DELETE FROM attachments WHERE id = ?", {std::string(id)});
  });
  if (!forgotten || named) return;
  std::error_code ec;
  std::filesystem::remove(file_for(id), ec);
}

}  // namespace connector::store

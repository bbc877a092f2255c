#include "store/AttachmentStore.hpp"

#include <sodium.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <map>
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

const std::string kFileFix =
    ": restore the data folder's attachments from a backup (the message itself is kept)";

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

AttachmentStore::AttachmentStore(Database &db, std::filesystem::path root, size_t inline_limit)
    : db_(db), root_(std::move(root)), inline_limit_(inline_limit) {}

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

Expected<std::optional<AttachmentStore::Stored>> AttachmentStore::find(std::string_view id) const {
  {
    std::lock_guard lock(pending_mutex_);
    if (auto it = unwritten_.find(id); it != unwritten_.end()) {
      return std::optional<Stored>(Stored{static_cast<int64_t>(it->second.size()), true});
    }
  }
  std::optional<Stored> stored;
  auto read = db_.run("SELECT size, bytes IS NOT NULL FROM attachments WHERE id = ?",
                      {std::string(id)}, [&](const Row &row) {
                        stored = Stored{row.integer(0), row.integer(1) != 0};
                      });
  if (!read) return read.failure();
  return stored;
}

Expected<std::string> AttachmentStore::put(std::string_view bytes) {
  const std::string id = sha256_hex(bytes);
  if (inline_limit_ > 0 && bytes.size() <= inline_limit_) return put_in_row(id, bytes);
  return put_in_file(id, bytes);
}

Expected<std::string> AttachmentStore::put_in_row(const std::string &id, std::string_view bytes) {
  bool too_many = false;
  {
    std::lock_guard lock(pending_mutex_);
    if (unwritten_.emplace(id, std::string(bytes)).second) unwritten_bytes_ += bytes.size();
    too_many = unwritten_bytes_ > kMaxUnwrittenBytes;
  }
  if (too_many) {
    if (auto written = write_rows(); !written) return written.failure();
  }
  return id;
}

Outcome AttachmentStore::write_rows() {
  std::map<std::string, std::string, std::less<>> rows;
  {
    std::lock_guard lock(pending_mutex_);
    rows.swap(unwritten_);
    unwritten_bytes_ = 0;
  }
  if (rows.empty()) return Ok{};
  const int64_t now = now_ms();
  // A row without bytes is a content an older host (or a store with a lower limit) kept in a
  // file, which may be damaged since: the row takes the bytes. The file may stay; path() hands
  // it out while it is whole.
  auto written = db_.transaction([&]() -> Outcome {
    for (const auto &[id, bytes] : rows) {
      auto recorded = db_.run(
          "INSERT INTO attachments (id, size, created_at, bytes) VALUES (?, ?, ?, ?) "
          "ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes WHERE bytes IS NULL",
          {id, static_cast<int64_t>(bytes.size()), now, Blob{bytes}});
      if (!recorded) return recorded;
    }
    return Ok{};
  });
  if (written) return written;
  // Kept for the next try (forget_unreferenced() lets go of those no message will name).
  std::lock_guard lock(pending_mutex_);
  for (auto &[id, bytes] : rows) {
    if (unwritten_.emplace(id, std::move(bytes)).second) unwritten_bytes_ += unwritten_[id].size();
  }
  return written;
}

Expected<std::string> AttachmentStore::put_in_file(const std::string &id, std::string_view bytes) {
  // Already in its row (put while the limit was higher): nothing to write.
  auto stored = find(id);
  if (!stored) return stored.failure();
  if (*stored && (*stored)->in_row) return id;

  const auto file = file_for(id);
  std::error_code ec;
  // A file of another length under this name is what a power cut left of an unsynced write:
  // it is written again.
  const auto found = std::filesystem::file_size(file, ec);
  bool written = false;
  if (ec || found != bytes.size()) {
    if (auto done = write_file(file, bytes); !done) return done.failure();
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

void AttachmentStore::remove_unfinished() {
  std::error_code ec;
  std::filesystem::remove_all(root_ / kUnfinished, ec);
}

Outcome AttachmentStore::write_file(const std::filesystem::path &file,
                                    std::string_view bytes) const {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  if (ec && disk_full(ec.value())) {
    return failure("storage_full", "cannot create a folder in " + root_.string() + ": " +
                                       ec.message());
  }
  // Written under a name of its own in one folder, then renamed into place: what a killed host
  // left half-written is all in that folder, which remove_unfinished() empties.
  const auto unfinished = root_ / kUnfinished;
  std::filesystem::create_directories(unfinished, ec);
  static std::atomic<uint64_t> sequence{0};
  const auto temp = unfinished / (std::to_string(::getpid()) + "-" + std::to_string(sequence++));
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
  return Ok{};
}

Outcome AttachmentStore::sync_pending() {
  // One sync at a time: a caller must not find the list empty while the files its message
  // names are still being synced by another.
  std::lock_guard syncing(sync_mutex_);
  if (auto written = write_rows(); !written) return written;
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
  return pending_.size() + unwritten_.size();
}

Expected<std::string> AttachmentStore::read(std::string_view id) const {
  if (!valid_id(id)) return failure("not_found", "no such attachment");
  {
    std::lock_guard lock(pending_mutex_);
    if (auto it = unwritten_.find(id); it != unwritten_.end()) return it->second;
  }
  std::optional<int64_t> size;
  std::optional<std::string> bytes;
  auto found = db_.run("SELECT size, bytes FROM attachments WHERE id = ?", {std::string(id)},
                       [&](const Row &row) {
                         size = row.integer(0);
                         bytes = row.optional_text(1);
                       });
  if (!found) return found.failure();
  if (!size) return failure("not_found", "no such attachment");
  if (bytes) {
    if (auto whole = row_whole(id, *size, bytes->size()); !whole) return whole.failure();
    return std::move(*bytes);
  }
  if (auto whole = file_whole(id, *size); !whole) return whole.failure();
  std::ifstream in(file_for(id), std::ios::binary);
  std::string content(static_cast<size_t>(*size), '\0');
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (in.gcount() != static_cast<std::streamsize>(content.size())) {
    return failure("attachment_missing", "the attachment's file " + file_for(id).string() +
                                             " cannot be read" + kFileFix);
  }
  return content;
}

bool AttachmentStore::has(std::string_view id) const {
  if (!valid_id(id)) return false;
  auto stored = find(id);
  if (!stored || !*stored) return false;
  if ((*stored)->in_row) return true;
  std::error_code ec;
  return std::filesystem::exists(file_for(id), ec);
}

Expected<std::filesystem::path> AttachmentStore::path(std::string_view id) const {
  if (!valid_id(id)) return failure("not_found", "no such attachment");
  auto stored = find(id);
  if (!stored) return stored.failure();
  if (!*stored) return failure("not_found", "no such attachment");
  auto file = file_for(id);
  std::error_code ec;
  if (!(*stored)->in_row) {
    if (!std::filesystem::exists(file, ec)) return failure("not_found", "no such attachment");
    return file;
  }

  // Kept in the database: its file is written out when missing or not whole.
  const auto found = std::filesystem::file_size(file, ec);
  if (!ec && found == static_cast<uintmax_t>((*stored)->size)) return file;
  auto bytes = read(id);
  if (!bytes) return bytes.failure();
  if (auto written = write_file(file, *bytes); !written) return written.failure();
  return file;
}

Outcome AttachmentStore::check(std::string_view id) const {
  if (!valid_id(id)) return failure("not_found", "no such attachment");
  {
    std::lock_guard lock(pending_mutex_);
    if (unwritten_.count(id) > 0) return Ok{};
  }
  std::optional<int64_t> size;
  std::optional<int64_t> in_row;
  auto read = db_.run("SELECT size, length(bytes) FROM attachments WHERE id = ?",
                      {std::string(id)}, [&](const Row &row) {
                        size = row.integer(0);
                        in_row = row.optional_integer(1);
                      });
  if (!read) return read;
  if (!size) return failure("not_found", "no such attachment");
  if (in_row) return row_whole(id, *size, static_cast<uint64_t>(*in_row));
  return file_whole(id, *size);
}

Outcome AttachmentStore::row_whole(std::string_view id, int64_t size, uint64_t found) const {
  if (found == static_cast<uint64_t>(size)) return Ok{};
  return failure("attachment_missing",
                 "the attachment " + std::string(id) + " is damaged in the database (" +
                     std::to_string(found) + " bytes of " + std::to_string(size) +
                     "): restore the data folder's database from a backup");
}

Outcome AttachmentStore::file_whole(std::string_view id, int64_t size) const {
  const auto file = file_for(id);
  std::error_code ec;
  const auto found = std::filesystem::file_size(file, ec);
  if (ec) {
    return failure("attachment_missing",
                   "the attachment's file " + file.string() + " is gone" + kFileFix);
  }
  if (found != static_cast<uintmax_t>(size)) {
    return failure("attachment_missing", "the attachment's file " + file.string() + " is damaged (" +
                                             std::to_string(found) + " bytes of " +
                                             std::to_string(size) + ")" + kFileFix);
  }
  return Ok{};
}

Outcome AttachmentStore::check_folder() const {
  std::error_code ec;
  if (std::filesystem::is_directory(root_, ec)) return Ok{};
  int64_t stored = 0;
  auto read = db_.run("SELECT COUNT(*) FROM attachments WHERE bytes IS NULL", {},
                      [&](const Row &row) { stored = row.integer(0); });
  if (!read) return read;
  if (stored == 0) return Ok{};
  return failure("attachments_missing",
                 "the attachments folder " + root_.string() + " is missing, but the database "
                 "names " + std::to_string(stored) + " attachments kept in files. Restore the folder "
                 "from the backup; or, to go on without those files (their messages are kept and "
                 "say the attachment is gone), create it empty: mkdir -m 700 " + root_.string());
}

void AttachmentStore::forget_unreferenced(std::string_view id) {
  if (!valid_id(id)) return;
  {
    std::lock_guard lock(pending_mutex_);
    if (auto it = unwritten_.find(id); it != unwritten_.end()) {
      unwritten_bytes_ -= it->second.size();
      unwritten_.erase(it);
    }
  }
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

// What the attachment store of a host's data folder holds, read the way the host reads it: a
// content in its database row or in its file under attachments/. The database is opened for the
// call only; the host may be running.
#pragma once

#include <filesystem>
#include <set>
#include <string>

namespace connector::test {

// The bytes stored for attachment `id` in data folder `data_dir`; empty when the store does not
// hold them whole. Throws when the folder's database cannot be opened.
std::string stored_attachment(const std::filesystem::path &data_dir, const std::string &id);

// Stores `bytes` in the attachment store of data folder `data_dir`, as a plugin would, and returns
// their id. Only while the folder's host is stopped. Throws when that fails.
std::string store_attachment(const std::filesystem::path &data_dir, const std::string &bytes);

// The ids of every content the store holds: the database's rows and the files under
// attachments/ (a file without its row is there too, so a test sees one left behind).
std::set<std::string> stored_attachment_ids(const std::filesystem::path &data_dir);

}  // namespace connector::test

#include "StoredAttachments.hpp"

#include "store/AttachmentStore.hpp"
#include "store/Database.hpp"

#include <memory>
#include <stdexcept>

namespace connector::test {
namespace {

namespace fs = std::filesystem;

// The data folder's database, as the host names it; never created here.
std::unique_ptr<store::Database> open_database(const fs::path &data_dir) {
  const fs::path file = data_dir / "connector-host.db";
  if (!fs::exists(file)) throw std::runtime_error("no database in " + data_dir.string());
  auto db = store::Database::open(file);
  if (!db) throw std::runtime_error(db.failure().message);
  return std::move(*db);
}

}  // namespace

std::string stored_attachment(const fs::path &data_dir, const std::string &id) {
  auto db = open_database(data_dir);
  const store::AttachmentStore attachments(*db, data_dir / "attachments");
  auto bytes = attachments.read(id);
  return bytes ? std::move(*bytes) : std::string();
}

std::string store_attachment(const fs::path &data_dir, const std::string &bytes) {
  auto db = open_database(data_dir);
  store::AttachmentStore attachments(*db, data_dir / "attachments");
  auto id = attachments.put(bytes);
  if (!id) throw std::runtime_error(id.failure().message);
  if (auto written = attachments.sync_pending(); !written) {
    throw std::runtime_error(written.failure().message);
  }
  return *id;
}

std::set<std::string> stored_attachment_ids(const fs::path &data_dir) {
  auto db = open_database(data_dir);
  std::set<std::string> ids;
  auto read = db->run("SELECT id FROM attachments", {},
                      [&](const store::Row &row) { ids.insert(row.text(0)); });
  if (!read) throw std::runtime_error(read.failure().message);
  std::error_code ec;
  if (!fs::exists(data_dir / "attachments", ec)) return ids;
  for (const auto &entry : fs::recursive_directory_iterator(data_dir / "attachments")) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && store::AttachmentStore::valid_id(name)) ids.insert(name);
  }
  return ids;
}

}  // namespace connector::test

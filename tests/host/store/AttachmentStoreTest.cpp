#include "TempDir.hpp"

#include "store/AttachmentStore.hpp"

#include <gtest/gtest.h>

namespace connector::store {
namespace {

namespace fs = std::filesystem;
using test::read_file;
using test::TempDir;

constexpr size_t kLimit = AttachmentStore::kDefaultInlineLimit;

fs::path file_of(const TempDir &dir, const std::string &id) {
  return dir / "attachments" / id.substr(0, 2) / id;
}

// Whether the attachment's row holds its bytes (rather than naming a file).
bool in_row(Database &db, const std::string &id) {
  bool held = false;
  EXPECT_TRUE(db.run("SELECT bytes IS NOT NULL FROM attachments WHERE id = ?", {id},
                     [&](const Row &r) { held = r.integer(0) != 0; }));
  return held;
}

// Bytes that are not text: a NUL and every other byte value.
std::string binary(size_t size) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 7 % 256);
  return bytes;
}

TEST(AttachmentStoreTest, ContentIsStoredOnceUnderItsSha256) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments");

  std::string bytes = "%PDF-1.4\n";
  bytes.push_back('\0');
  bytes += std::string(100000, '\xff');
  auto id = store.put(bytes);
  ASSERT_TRUE(id) << id.failure().message;
  EXPECT_EQ(id->size(), 64u);
  auto again = store.put(bytes);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *id);

  auto path = store.path(*id);
  ASSERT_TRUE(path);
  EXPECT_EQ(read_file(*path), bytes);
  EXPECT_EQ(path->parent_path().filename(), id->substr(0, 2));

  // Known value: the SHA-256 of "abc".
  EXPECT_EQ(*store.put("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  ASSERT_TRUE(store.sync_pending());
  int64_t rows = 0;
  ASSERT_TRUE((*db)->run("SELECT COUNT(*) FROM attachments", {},
                         [&](const Row &r) { rows = r.integer(0); }));
  EXPECT_EQ(rows, 2);
}

TEST(AttachmentStoreTest, WrittenFilesWaitForOneSyncTogether) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments", 0);
  ASSERT_TRUE(store.put("first"));
  ASSERT_TRUE(store.put("second"));
  ASSERT_TRUE(store.put("first"));  // already written: nothing more to sync
  EXPECT_EQ(store.pending(), 2u);
  auto synced = store.sync_pending();
  ASSERT_TRUE(synced) << synced.failure().message;
  EXPECT_EQ(store.pending(), 0u);

  // A file removed before the sync (no message names it) does not make the sync fail.
  auto orphan = store.put("no message names me");
  ASSERT_TRUE(orphan);
  store.forget_unreferenced(*orphan);
  EXPECT_FALSE(store.path(*orphan));
  synced = store.sync_pending();
  ASSERT_TRUE(synced) << synced.failure().message;
  EXPECT_EQ(store.pending(), 0u);
}

TEST(AttachmentStoreTest, AFileCutShortBeforeItsSyncIsWrittenAgain) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments", 0);
  const std::string bytes(5000, 'x');
  auto id = store.put(bytes);
  ASSERT_TRUE(id);
  // What a power cut can leave of a file renamed into place but not synced yet.
  std::filesystem::resize_file(*store.path(*id), 0);
  ASSERT_TRUE(store.put(bytes));
  EXPECT_EQ(read_file(*store.path(*id)), bytes);
}

TEST(AttachmentStoreTest, IdsThatCouldEscapeTheStoreAreRefused) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments");
  for (const char *id : {"../../etc/passwd", "", "ABC", "/etc/passwd",
                         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a/"}) {
    auto path = store.path(id);
    ASSERT_FALSE(path) << id;
    EXPECT_EQ(path.failure().code, "not_found");
  }
  EXPECT_FALSE(store.path(std::string(64, 'a')));  // well formed, but never stored
}

TEST(AttachmentStoreTest, ASmallContentIsKeptInItsRowWithNoFile) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments");
  const std::vector<std::string> contents = {binary(1000), binary(kLimit), std::string()};
  std::vector<std::string> ids;
  for (const std::string &bytes : contents) {
    auto id = store.put(bytes);
    ASSERT_TRUE(id) << id.failure().message;
    ids.push_back(*id);
  }
  // Held until sync_pending() writes them together, and seen as stored meanwhile.
  EXPECT_EQ(store.pending(), 3u);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_FALSE(in_row(**db, ids[i])) << contents[i].size();
    EXPECT_TRUE(store.has(ids[i]));
    EXPECT_TRUE(store.check(ids[i]));
    EXPECT_EQ(*store.read(ids[i]), contents[i]);
  }
  ASSERT_TRUE(store.sync_pending());
  EXPECT_EQ(store.pending(), 0u);
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string &bytes = contents[i];
    const std::string &id = ids[i];
    EXPECT_TRUE(in_row(**db, id)) << bytes.size();
    EXPECT_FALSE(fs::exists(file_of(dir, id))) << bytes.size();
    auto read = store.read(id);
    ASSERT_TRUE(read) << read.failure().message;
    EXPECT_EQ(*read, bytes);
    EXPECT_TRUE(store.has(id));
    EXPECT_TRUE(store.check(id)) << store.check(id).failure().message;
    EXPECT_EQ(*store.put(bytes), id);
  }
  ASSERT_TRUE(store.sync_pending());
  EXPECT_FALSE(fs::exists(dir / "attachments")) << "the checks wrote no file";
}

TEST(AttachmentStoreTest, AContentOverTheLimitIsAFile) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments");
  const std::string bytes = binary(kLimit + 1);
  auto id = store.put(bytes);
  ASSERT_TRUE(id) << id.failure().message;
  EXPECT_FALSE(in_row(**db, *id));
  EXPECT_EQ(read_file(file_of(dir, *id)), bytes);
  EXPECT_EQ(store.pending(), 1u);
  EXPECT_EQ(*store.read(*id), bytes);
  EXPECT_TRUE(store.has(*id));

  fs::remove(file_of(dir, *id));
  EXPECT_FALSE(store.has(*id));
  auto gone = store.read(*id);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.failure().code, "attachment_missing");
}

TEST(AttachmentStoreTest, LimitZeroKeepsEveryContentInAFile) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments", 0);
  for (const std::string &bytes : {std::string("abc"), std::string()}) {
    auto id = store.put(bytes);
    ASSERT_TRUE(id) << id.failure().message;
    EXPECT_FALSE(in_row(**db, *id));
    EXPECT_TRUE(fs::exists(file_of(dir, *id)));
    EXPECT_EQ(read_file(file_of(dir, *id)), bytes);
    EXPECT_EQ(*store.read(*id), bytes);
  }
  EXPECT_EQ(store.pending(), 2u);
}

TEST(AttachmentStoreTest, AFileBackedContentPutAgainMovesIntoItsRow) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  const std::string bytes = binary(3000);
  std::string id;
  {
    AttachmentStore files(**db, dir / "attachments", 0);
    id = *files.put(bytes);
  }
  // Its file was damaged since (a power cut before its sync).
  fs::resize_file(file_of(dir, id), 10);
  AttachmentStore store(**db, dir / "attachments");
  EXPECT_EQ(store.check(id).failure().code, "attachment_missing");

  ASSERT_EQ(*store.put(bytes), id);
  ASSERT_TRUE(store.sync_pending());
  EXPECT_TRUE(in_row(**db, id));
  EXPECT_EQ(store.pending(), 0u);
  EXPECT_EQ(*store.read(id), bytes);
  EXPECT_TRUE(store.check(id));
  auto path = store.path(id);
  ASSERT_TRUE(path) << path.failure().message;
  EXPECT_EQ(read_file(*path), bytes) << "the damaged file was written again";
}

TEST(AttachmentStoreTest, AContentInItsRowIsNotWrittenToAFileWhenTheLimitIsLower) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  const std::string bytes = binary(3000);
  AttachmentStore rows(**db, dir / "attachments");
  auto id = rows.put(bytes);
  ASSERT_TRUE(id);
  ASSERT_TRUE(rows.sync_pending());
  AttachmentStore files(**db, dir / "attachments", 0);
  ASSERT_EQ(*files.put(bytes), *id);
  EXPECT_TRUE(in_row(**db, *id));
  EXPECT_FALSE(fs::exists(file_of(dir, *id)));
  EXPECT_EQ(files.pending(), 0u);
}

TEST(AttachmentStoreTest, ThePathOfAContentInItsRowIsAFileWithItsExactBytes) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments");
  const std::string bytes = binary(5000);
  auto id = store.put(bytes);
  ASSERT_TRUE(id);
  ASSERT_TRUE(store.sync_pending());
  ASSERT_FALSE(fs::exists(file_of(dir, *id)));

  auto path = store.path(*id);
  ASSERT_TRUE(path) << path.failure().message;
  EXPECT_EQ(*path, file_of(dir, *id));
  EXPECT_EQ(read_file(*path), bytes);
  EXPECT_EQ(store.pending(), 0u);

  // A file gone or cut short is written again; a whole one is handed out as it is.
  fs::remove(*path);
  EXPECT_EQ(read_file(*store.path(*id)), bytes);
  fs::resize_file(*path, 100);
  EXPECT_EQ(read_file(*store.path(*id)), bytes);
  const auto written = fs::last_write_time(*path);
  EXPECT_EQ(*store.path(*id), *path);
  EXPECT_EQ(fs::last_write_time(*path), written);
  size_t entries = 0;
  for (const auto &entry : fs::recursive_directory_iterator(dir / "attachments")) {
    entries += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(entries, 1u) << "a temporary file was left";

  // And once it is forgotten, neither the row nor the file is left.
  store.forget_unreferenced(*id);
  EXPECT_FALSE(fs::exists(*path));
  EXPECT_FALSE(store.has(*id));
  EXPECT_EQ(store.path(*id).failure().code, "not_found");
}

TEST(AttachmentStoreTest, ARowWithItsBytesCutShortIsNotWhole) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments");
  auto id = store.put(binary(2000));
  ASSERT_TRUE(id);
  ASSERT_TRUE(store.sync_pending());
  ASSERT_TRUE(store.check(*id));
  ASSERT_TRUE(
      (*db)->run("UPDATE attachments SET bytes = substr(bytes, 1, 10) WHERE id = ?", {*id}));

  auto checked = store.check(*id);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.failure().code, "attachment_missing");
  EXPECT_NE(checked.failure().message.find("10 bytes of 2000"), std::string::npos)
      << checked.failure().message;
  EXPECT_EQ(store.read(*id).failure().code, "attachment_missing");
  EXPECT_EQ(store.check(std::string(64, 'a')).failure().code, "not_found");
  EXPECT_EQ(store.read(std::string(64, 'a')).failure().code, "not_found");
  EXPECT_EQ(store.read("../a.db").failure().code, "not_found");
}

TEST(AttachmentStoreTest, OnlyContentsInFilesNeedTheAttachmentsFolder) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments");
  auto small = store.put("small");
  ASSERT_TRUE(small);
  ASSERT_TRUE(store.path(*small));  // its file written out, then lost with the folder
  fs::remove_all(dir / "attachments");
  EXPECT_TRUE(store.check_folder());
  EXPECT_TRUE(store.has(*small));
  EXPECT_EQ(read_file(*store.path(*small)), "small");

  ASSERT_TRUE(store.put(binary(kLimit + 1)));
  fs::remove_all(dir / "attachments");
  auto missing = store.check_folder();
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.failure().code, "attachments_missing");
  EXPECT_NE(missing.failure().message.find("names 1 attachments"), std::string::npos)
      << missing.failure().message;
}

}  // namespace
}  // namespace connector::store

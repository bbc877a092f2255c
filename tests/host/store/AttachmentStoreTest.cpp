#include "TempDir.hpp"

#include "store/AttachmentStore.hpp"

#include <gtest/gtest.h>

namespace connector::store {
namespace {

using test::read_file;
using test::TempDir;

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

  int64_t rows = 0;
  ASSERT_TRUE((*db)->run("SELECT COUNT(*) FROM attachments", {},
                         [&](const Row &r) { rows = r.integer(0); }));
  EXPECT_EQ(rows, 2);
}

TEST(AttachmentStoreTest, WrittenFilesWaitForOneSyncTogether) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments");
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
  AttachmentStore store(**db, dir / "attachments");
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

}  // namespace
}  // namespace connector::store

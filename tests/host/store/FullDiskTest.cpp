// The store on a disk that fills up: writes fail as "storage_full" (not as any storage error),
// roll back, leave no half-written file, and succeed again once space returns. The disk is a
// small tmpfs the test mounts itself, so it needs root.
#include "SmallDisk.hpp"
#include "TempDir.hpp"

#include "store/AttachmentStore.hpp"
#include "store/Conversations.hpp"
#include "store/SpaceReserve.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace connector::store {
namespace {

namespace fs = std::filesystem;
using test::SmallDisk;
using test::TempDir;

#define NEED_SMALL_DISK(disk)                                                            \
  if (geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";               \
  ASSERT_TRUE((disk).mounted()) << "cannot mount a tmpfs: " << (disk).error()

int64_t count(Database &db, const std::string &table) {
  int64_t rows = -1;
  EXPECT_TRUE(db.run("SELECT COUNT(*) FROM " + table, {}, [&](const Row &r) { rows = r.integer(0); }));
  return rows;
}

TEST(FullDiskTest, ADatabaseWriteFailsAsStorageFullRollsBackAndWorksAgainWithSpace) {
  TempDir dir;
  SmallDisk disk(dir / "disk", "4m");
  NEED_SMALL_DISK(disk);
  auto db = Database::open(disk.folder() / "a.db");
  ASSERT_TRUE(db) << db.failure().message;
  ASSERT_TRUE((*db)->run("CREATE TABLE t (id INTEGER PRIMARY KEY, bytes BLOB)"));
  ASSERT_TRUE((*db)->run("INSERT INTO t (bytes) VALUES (?)", {Blob{std::string(1000, 'a')}}));

  disk.fill();
  const std::string big(512 * 1024, 'b');
  auto written = (*db)->transaction([&]() -> Outcome {
    if (auto one = (*db)->run("INSERT INTO t (bytes) VALUES ('small')"); !one) return one;
    return (*db)->run("INSERT INTO t (bytes) VALUES (?)", {Blob{big}});
  });
  ASSERT_FALSE(written);
  EXPECT_EQ(written.failure().code, "storage_full") << written.failure().message;
  EXPECT_NE(written.failure().message.find("disk is full"), std::string::npos);
  EXPECT_EQ(count(**db, "t"), 1) << "the transaction's first row was kept";

  disk.empty();
  ASSERT_TRUE((*db)->run("INSERT INTO t (bytes) VALUES (?)", {Blob{big}}));
  EXPECT_EQ(count(**db, "t"), 2);
}

TEST(FullDiskTest, AnAttachmentThatDoesNotFitLeavesNoFileAndFailsAsStorageFull) {
  TempDir dir;
  SmallDisk disk(dir / "disk", "4m");
  NEED_SMALL_DISK(disk);
  auto db = Database::open(dir / "a.db");  // the database elsewhere: only the files fill up
  ASSERT_TRUE(db);
  AttachmentStore store(**db, disk.folder() / "attachments", 0);
  ASSERT_TRUE(store.put("fits"));

  disk.fill();
  const std::string bytes(300000, 'x');
  auto put = store.put(bytes);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.failure().code, "storage_full") << put.failure().message;
  size_t files = 0;
  for (const auto &entry : fs::recursive_directory_iterator(disk.folder() / "attachments")) {
    files += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(files, 1u) << "a half-written or temporary file was left";
  EXPECT_EQ(count(**db, "attachments"), 1);

  disk.empty();
  auto again = store.put(bytes);
  ASSERT_TRUE(again) << again.failure().message;
  EXPECT_TRUE(store.path(*again));
}

TEST(FullDiskTest, ASmallAttachmentThatDoesNotFitInTheDatabaseFailsAsStorageFull) {
  TempDir dir;
  SmallDisk disk(dir / "disk", "4m");
  NEED_SMALL_DISK(disk);
  auto db = Database::open(disk.folder() / "a.db");
  ASSERT_TRUE(db) << db.failure().message;
  AttachmentStore store(**db, disk.folder() / "attachments");
  ASSERT_TRUE(store.put("fits"));
  ASSERT_TRUE(store.sync_pending());

  disk.fill();
  const std::string bytes(AttachmentStore::kDefaultInlineLimit, 'x');
  auto put = store.put(bytes);
  ASSERT_TRUE(put) << "held until the write: " << put.failure().message;
  auto written = store.sync_pending();
  ASSERT_FALSE(written);
  EXPECT_EQ(written.failure().code, "storage_full") << written.failure().message;
  EXPECT_EQ(count(**db, "attachments"), 1);
  EXPECT_EQ(store.pending(), 1u) << "what could not be written is kept for the next try";
  EXPECT_FALSE(fs::exists(disk.folder() / "attachments")) << "a file was written instead";

  disk.empty();
  ASSERT_TRUE(store.sync_pending());
  EXPECT_EQ(count(**db, "attachments"), 2);
  EXPECT_EQ(*store.read(*put), bytes);
}

TEST(FullDiskTest, AnAttachmentNoMessageNamesIsForgotten) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  AttachmentStore store(**db, dir / "attachments");
  auto id = store.put("its message could not be stored");
  ASSERT_TRUE(id);
  store.forget_unreferenced(*id);
  EXPECT_FALSE(store.path(*id));
  EXPECT_EQ(count(**db, "attachments"), 0);
}

TEST(FullDiskTest, AnAttachmentAStoredMessageNamesIsKept) {
  TempDir dir;
  auto db = Database::open(dir / "a.db");
  ASSERT_TRUE(db);
  ASSERT_TRUE((*db)->run("INSERT INTO attendants VALUES ('att1', 'Ana', 'attendant', 1)"));
  ASSERT_TRUE((*db)->run("INSERT INTO accounts (id, attendant_id, plugin_id, created_at, "
                         "updated_at) VALUES ('acc1', 'att1', 'email-imap', 1, 1)"));
  AttachmentStore store(**db, dir / "attachments");
  Conversations conversations(**db);
  auto attached = store.put("an attachment of a stored mail");
  auto raw = store.put("the raw copy of a stored mail, named in its details");
  ASSERT_TRUE(attached && raw);
  NewMessage m;
  m.account_id = "acc1";
  m.channel = "email-imap";
  m.direction = "inbound";
  m.external_id = "<stored@example.test>";
  m.details = {{"raw_attachment_id", *raw}};
  m.attachments.push_back({*attached, "a.txt", "text/plain", ""});
  ASSERT_TRUE(store.sync_pending());  // as the host does before it stores a message
  ASSERT_TRUE(conversations.insert(m));

  store.forget_unreferenced(*attached);
  store.forget_unreferenced(*raw);
  EXPECT_TRUE(store.path(*attached));
  EXPECT_TRUE(store.path(*raw));
  EXPECT_EQ(count(**db, "attachments"), 2);
}

TEST(FullDiskTest, TheReserveGivesItsRoomBackAndIsTakenAgainOnlyWithRoomBeyondIt) {
  TempDir dir;
  SmallDisk disk(dir / "disk", "16m");
  NEED_SMALL_DISK(disk);
  SpaceReserve reserve(disk.folder(), 1 << 20, 4 << 20);
  ASSERT_TRUE(reserve.hold());
  EXPECT_EQ(fs::file_size(disk.folder() / "space.reserve"), 1u << 20);

  disk.fill();
  EXPECT_LT(reserve.free_bytes(), 4096u);
  EXPECT_FALSE(reserve.room_to_resume());
  reserve.release();
  EXPECT_FALSE(fs::exists(disk.folder() / "space.reserve"));
  EXPECT_GE(reserve.free_bytes(), 1u << 20) << "deleting the reserve gave no room back";
  EXPECT_FALSE(reserve.room_to_resume());
  // The freed room is taken, as the status and log lines would take it.
  disk.empty();
  disk.fill();
  EXPECT_FALSE(reserve.hold());
  EXPECT_FALSE(fs::exists(disk.folder() / "space.reserve"));

  disk.empty();
  EXPECT_TRUE(reserve.room_to_resume());
  EXPECT_TRUE(reserve.hold());
}

}  // namespace
}  // namespace connector::store

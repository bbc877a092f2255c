// Migration 009 on a store a host of schema 8 left: its attachments stay in their files and read
// as before; a small one stored again moves into its row.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "OldStore.hpp"
#include "TempDir.hpp"
#include "store/AttachmentStore.hpp"
#include "store/Database.hpp"

namespace connector::store {
namespace {

namespace fs = std::filesystem;

// The SHA-256 of "abc", and the file a host of schema 8 kept it in.
const std::string kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

// A data folder as a host of schema 8 left it: the content "abc" in its file and its row.
fs::path schema_8_store(const test::TempDir &dir) {
  const auto file = test::old_store(
      dir, 8, "INSERT INTO attachments (id, size, created_at) VALUES ('" + kAbc + "', 3, 0);");
  fs::create_directories(dir / "attachments" / "ba");
  std::ofstream(dir / "attachments" / "ba" / kAbc, std::ios::binary) << "abc";
  return file;
}

TEST(AttachmentsMigration, AnOlderStoresAttachmentsStayInTheirFilesAndReadAsBefore) {
  test::TempDir dir;
  auto db = Database::open(schema_8_store(dir));
  ASSERT_TRUE(db) << db.failure().message;
  AttachmentStore store(**db, dir / "attachments");

  bool in_file = false;
  ASSERT_TRUE((*db)->run("SELECT bytes IS NULL FROM attachments WHERE id = ?", {kAbc},
                         [&](const Row &r) { in_file = r.integer(0) != 0; }));
  EXPECT_TRUE(in_file);
  EXPECT_TRUE(store.check_folder());
  EXPECT_TRUE(store.check(kAbc));
  EXPECT_TRUE(store.has(kAbc));
  auto read = store.read(kAbc);
  ASSERT_TRUE(read) << read.failure().message;
  EXPECT_EQ(*read, "abc");
  EXPECT_EQ(*store.path(kAbc), dir / "attachments" / "ba" / kAbc);

  // Its folder is still needed; once the content is stored again, it is not.
  fs::rename(dir / "attachments", dir / "elsewhere");
  EXPECT_EQ(store.check_folder().failure().code, "attachments_missing");
  EXPECT_FALSE(store.has(kAbc));
  ASSERT_EQ(*store.put("abc"), kAbc);
  ASSERT_TRUE(store.sync_pending());
  EXPECT_TRUE(store.check_folder());
  EXPECT_TRUE(store.has(kAbc));
  EXPECT_EQ(*store.read(kAbc), "abc");
}

}  // namespace
}  // namespace connector::store

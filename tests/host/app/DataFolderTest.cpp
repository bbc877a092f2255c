// The data folder damaged while the host is stopped: a clear error at start naming the file and
// the way out, or, where the host can go on, an answer in words for what is gone; never a crash.
#include "StoredAttachments.hpp"
#include "TestHost.hpp"

#include "store/AttachmentStore.hpp"
#include "store/Database.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

namespace connector::test {
namespace {

namespace fs = std::filesystem;

// Stores `bytes` in the stopped host's attachment store, as a plugin would, and returns the id.
std::string store_attachment(const TestHost &host, const std::string &bytes) {
  return test::store_attachment(host.data_dir(), bytes);
}

// A PDF too large to be kept in the database: the store keeps it in a file.
std::string large_pdf() {
  return "%PDF-1.4 " + std::string(store::AttachmentStore::kDefaultInlineLimit + 10000, 'b');
}

// What TestHost::start says when the host refuses to start (empty when it started).
std::string start_refusal(TestHost &host) {
  try {
    host.start();
  } catch (const std::exception &e) {
    return e.what();
  }
  return {};
}

// A loopback account of a new attendant, connected.
struct Connected {
  std::string token;
  std::string account;
};
Connected connected_account(TestHost &host) {
  const auto ana = host.add_attendant("Ana");
  const ApiClient client(host.port(), ana.token);
  const std::string account = TestHost::create_account(client, "loopback");
  auto connect = client.post("/api/v1/accounts/" + account + "/connect",
                             {{"values",
                               {{"method", "password"},
                                {"account", "ana@example.com"},
                                {"password", "not-a-real-one"}}}});
  if (connect.status != 202) throw std::runtime_error("connect refused: " + connect.body);
  return {ana.token, account};
}

bool wait_connected(const ApiClient &client, const std::string &account) {
  for (int i = 0; i < 300; ++i) {
    if (client.get("/api/v1/accounts/" + account).json().value("state", "") == "connected") {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

HttpResult send_with(const ApiClient &client, const std::string &account, const std::string &id) {
  return client.post("/api/v1/accounts/" + account + "/messages",
                     {{"to", "cliente@example.com"},
                      {"text", "segue o boleto"},
                      {"attachments", {{{"id", id}, {"name", "boleto.pdf"},
                                        {"mime", "application/pdf"}}}}});
}

TEST(DataFolderTest, AMissingAttachmentsFolderStopsTheStartWithTheWayOut) {
  TestHost host;
  host.stop();
  store_attachment(host, large_pdf());
  const fs::path folder = host.data_dir() / "attachments";
  fs::remove_all(folder);

  const std::string refusal = start_refusal(host);
  EXPECT_NE(refusal.find("the attachments folder " + folder.string() + " is missing"),
            std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("Restore the folder"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("mkdir -m 700 " + folder.string()), std::string::npos) << refusal;
  EXPECT_FALSE(fs::exists(folder)) << "the start must not paper over the loss";

  // The way out it names: an empty folder, and the host starts.
  fs::create_directories(folder);
  EXPECT_EQ(start_refusal(host), "");
  EXPECT_EQ(host.admin().get("/api/v1/me").status, 200);
}

// The admin command's output and exit code.
std::pair<int, std::string> run_admin_command(const TestHost &host, const std::string &args) {
  const auto config = host.dir().write("admin.yaml", "data_dir: data\n");
  FILE *pipe = popen((std::string(CONNECTOR_HOST_BINARY) + " --config " + config.string() + " " +
                      args + " 2>&1")
                         .c_str(),
                     "r");
  std::string output;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(DataFolderTest, ADeletedDatabaseIsNoFirstStartWhileTheEarlierStoresFilesRemain) {
  TestHost host;
  host.stop();
  store_attachment(host, large_pdf());
  const fs::path db = host.data_dir() / "connector-host.db";
  fs::remove(db);

  const std::string refusal = start_refusal(host);
  EXPECT_NE(refusal.find("the database " + db.string() + " is missing"), std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("secret.key"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("attachments/"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("Restore the database from the backup"), std::string::npos) << refusal;
  EXPECT_FALSE(fs::exists(db)) << "no new, empty database may take the lost one's place";
  // The admin commands say the same and create nothing either.
  const auto [code, output] = run_admin_command(host, "attendants list");
  EXPECT_EQ(code, 1) << output;
  EXPECT_NE(output.find("is missing"), std::string::npos) << output;
  EXPECT_FALSE(fs::exists(db));

  // The way out for starting over: the folder emptied, and the host starts afresh.
  for (const auto &entry : fs::directory_iterator(host.data_dir())) fs::remove_all(entry.path());
  EXPECT_EQ(start_refusal(host), "");
  EXPECT_TRUE(fs::exists(db));
}

// An empty file in the database's place (a failed copy, a restore gone wrong) is no first start
// either while the earlier store's key remains.
TEST(DataFolderTest, AnEmptyDatabaseFileIsNoFirstStartWhileTheEarlierStoresKeyRemains) {
  TestHost host;
  host.add_attendant("Ana Empty");
  host.stop();
  const fs::path db = host.data_dir() / "connector-host.db";
  fs::resize_file(db, 0);
  fs::remove(db.string() + "-wal");

  const std::string refusal = start_refusal(host);
  EXPECT_NE(refusal.find("the database " + db.string() + " is empty"), std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("secret.key"), std::string::npos) << refusal;
  EXPECT_EQ(fs::file_size(db), 0u) << "the empty file was made into a new store";
}

// A page of the database damaged while the host was stopped: the start stops and says so, and
// how to get out, instead of answering every list as if it were empty.
TEST(DataFolderTest, ADamagedDatabasePageStopsTheStartWithTheWayOut) {
  TestHost host;
  host.add_attendant("Ana Damaged Page");
  host.stop();
  const fs::path db = host.data_dir() / "connector-host.db";
  ASSERT_GT(fs::file_size(db), 24u * 4096) << "too small a store to damage a page in the middle";
  {
    std::fstream file(db, std::ios::in | std::ios::out | std::ios::binary);
    std::string garbage(4096, '\0');
    for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 167 + 13) & 0xff);
    for (int page = 2; page < 24; ++page) {
      file.seekp(static_cast<std::streamoff>(page) * 4096);
      file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
  }

  const std::string refusal = start_refusal(host);
  EXPECT_NE(refusal.find("the database " + db.string() + " is damaged"), std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("Restore it from the backup"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find(".recover"), std::string::npos) << refusal;
}

TEST(DataFolderTest, AnAttachmentFileCutShortOrDeletedIsAnsweredInWords) {
  TestHost host;
  const Connected ana = connected_account(host);
  const ApiClient client(host.port(), ana.token);
  ASSERT_TRUE(wait_connected(client, ana.account));
  host.stop();
  const std::string bytes = large_pdf();
  const std::string id = store_attachment(host, bytes);
  ASSERT_EQ(start_refusal(host), "");
  const ApiClient again(host.port(), ana.token);
  ASSERT_TRUE(wait_connected(again, ana.account));
  auto sent = send_with(again, ana.account, id);
  ASSERT_EQ(sent.status, 201) << sent.body;
  const std::string message = "/api/v1/messages/" + sent.json()["id"].dump();

  // Cut short while the host was stopped.
  host.stop();
  const fs::path file = host.data_dir() / "attachments" / id.substr(0, 2) / id;
  fs::resize_file(file, bytes.size() / 2);
  ASSERT_EQ(start_refusal(host), "");
  const ApiClient third(host.port(), ana.token);
  ASSERT_TRUE(wait_connected(third, ana.account));
  auto cut = send_with(third, ana.account, id);
  EXPECT_EQ(cut.status, 410) << cut.body;
  EXPECT_EQ(cut.error_code(), "attachment_missing") << cut.body;
  EXPECT_NE(cut.body.find(file.string()), std::string::npos) << cut.body;
  EXPECT_NE(cut.body.find("is damaged"), std::string::npos) << cut.body;
  EXPECT_NE(cut.body.find("restore"), std::string::npos) << cut.body;
  // The message that named it is still shown, attachment and all.
  auto shown = third.get(message);
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_EQ(shown.json()["attachments"][0].value("id", ""), id);

  // Deleted while the host was stopped.
  host.stop();
  fs::remove(file);
  ASSERT_EQ(start_refusal(host), "");
  const ApiClient fourth(host.port(), ana.token);
  ASSERT_TRUE(wait_connected(fourth, ana.account));
  auto gone = send_with(fourth, ana.account, id);
  EXPECT_EQ(gone.status, 410) << gone.body;
  EXPECT_NE(gone.body.find("is gone"), std::string::npos) << gone.body;
  EXPECT_EQ(fourth.get(message).status, 200);
  // An id the store never had is still a bad request.
  EXPECT_EQ(send_with(fourth, ana.account, std::string(64, 'a')).status, 400);
}

TEST(DataFolderTest, ASmallAttachmentNeedsNoFileAndNoAttachmentsFolder) {
  TestHost host;
  const Connected ana = connected_account(host);
  host.stop();
  const std::string bytes = "%PDF-1.4 boleto";
  const std::string id = store_attachment(host, bytes);
  const fs::path folder = host.data_dir() / "attachments";
  EXPECT_FALSE(fs::exists(folder / id.substr(0, 2) / id)) << "kept in the database";
  fs::remove_all(folder);

  ASSERT_EQ(start_refusal(host), "");
  const ApiClient client(host.port(), ana.token);
  ASSERT_TRUE(wait_connected(client, ana.account));
  auto sent = send_with(client, ana.account, id);
  ASSERT_EQ(sent.status, 201) << sent.body;
  auto shown = client.get("/api/v1/messages/" + sent.json()["id"].dump());
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_EQ(shown.json()["attachments"][0].value("id", ""), id);
  host.stop();
  EXPECT_EQ(stored_attachment(host.data_dir(), id), bytes);
}

// A host killed while writing an attachment's file leaves it half-written in the store's folder
// of unfinished files, never under an attachment's name; the next start removes it.
TEST(DataFolderTest, AFileAKilledHostLeftHalfWrittenIsRemovedAtTheNextStart) {
  TestHost host;
  host.stop();
  const std::string id = store_attachment(host, large_pdf());
  const fs::path unfinished = host.data_dir() / "attachments" / store::AttachmentStore::kUnfinished;
  EXPECT_TRUE(fs::is_empty(unfinished)) << "the file was not renamed into place";
  std::ofstream(unfinished / "4242-0", std::ios::binary) << std::string(100000, 'x');

  ASSERT_EQ(start_refusal(host), "");
  EXPECT_FALSE(fs::exists(unfinished / "4242-0"));
  host.stop();
  EXPECT_EQ(stored_attachment(host.data_dir(), id), large_pdf()) << "a finished file went too";
}

TEST(DataFolderTest, ADamagedWriteAheadLogOrSharedMemoryFileIsNoCrashAndLosesNothingCommitted) {
  TestHost host;
  const auto ana = host.add_attendant("Ana Damaged Wal");
  host.stop();
  const fs::path db = host.data_dir() / "connector-host.db";
  std::string garbage(64 * 1024, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 131 + 7) & 0xff);
  std::ofstream(db.string() + "-wal", std::ios::binary) << garbage;
  std::ofstream(db.string() + "-shm", std::ios::binary) << garbage.substr(0, 32768);

  ASSERT_EQ(start_refusal(host), "");
  auto people = host.admin().get("/api/v1/attendants");
  ASSERT_EQ(people.status, 200) << people.body;
  EXPECT_NE(people.body.find("Ana Damaged Wal"), std::string::npos) << people.body;
  // And it writes again.
  EXPECT_EQ(host.admin().post("/api/v1/attendants", {{"name", "Beto"}}).status, 201);
  host.restart();
  EXPECT_NE(host.admin().get("/api/v1/attendants").body.find("Beto"), std::string::npos);
}

TEST(DataFolderTest, ADataFolderTheHostCannotWriteIsSaidAsSuch) {
  TestHost host;
  host.stop();
  const fs::path data = host.data_dir();
  bool mounted = false;
  if (geteuid() == 0) {
    // Root writes through any mode: a read-only bind mount of the folder over itself.
    ASSERT_EQ(::mount(data.c_str(), data.c_str(), nullptr, MS_BIND, nullptr), 0);
    mounted = true;
    ASSERT_EQ(::mount(nullptr, data.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr),
              0);
  } else {
    fs::permissions(data, fs::perms::owner_read | fs::perms::owner_exec);
  }
  const std::string refusal = start_refusal(host);
  if (mounted) {
    ::umount2(data.c_str(), MNT_DETACH);
  } else {
    fs::permissions(data, fs::perms::owner_all);
  }
  EXPECT_NE(refusal.find("the data folder " + data.string() + " is not writable"),
            std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("Make it writable"), std::string::npos) << refusal;
  EXPECT_EQ(start_refusal(host), "") << "with the folder writable again, the host starts";
}

}  // namespace
}  // namespace connector::test

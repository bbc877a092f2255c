// An account whose message cannot be stored because the host's disk is full pauses, says why,
// takes nothing more, and resumes by itself once space returns: the account runtime with the
// loopback plugin, its data folder on a small tmpfs the test mounts itself (needs root). The
// e-mail test (tests/plugins/email-imap/DiskFullTest.cpp) shows the channel's side.
#include "TestHost.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

namespace connector::test {
namespace {

namespace fs = std::filesystem;

bool eventually(const std::function<bool()> &done) {
  for (int i = 0; i < 600; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

void fill(const fs::path &file) {
  std::FILE *out = std::fopen(file.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  std::setvbuf(out, nullptr, _IONBF, 0);
  for (size_t chunk : {size_t{1} << 20, size_t{4096}, size_t{1}}) {
    const std::string zeros(chunk, '\0');
    while (std::fwrite(zeros.data(), 1, zeros.size(), out) == zeros.size()) {
    }
    std::clearerr(out);
  }
  std::fclose(out);
}

TEST(FullDiskPause, AnInboundMessageThatDoesNotFitPausesTheAccountUntilSpaceReturns) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting the small disk needs root";
  TestHost host;
  // The data folder moves onto a 24 MiB tmpfs.
  host.stop();
  const fs::path data = host.data_dir(), saved = host.dir() / "saved";
  fs::copy(data, saved, fs::copy_options::recursive);
  fs::remove_all(data);
  fs::create_directories(data);
  ASSERT_EQ(::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=24m,mode=0700"), 0)
      << std::strerror(errno);
  struct Unmount {
    fs::path folder;
    ~Unmount() { ::umount2(folder.c_str(), MNT_DETACH); }
  } unmount{data};
  fs::copy(saved, data, fs::copy_options::recursive);
  host.start();

  const auto ana = host.add_attendant("Ana");
  const ApiClient client(host.port(), ana.token);
  const std::string account = TestHost::create_account(client, "loopback");
  auto connected = client.post("/api/v1/accounts/" + account + "/connect",
                               {{"values",
                                 {{"method", "password"},
                                  {"account", "ana@example.com"},
                                  {"password", "not-a-real-one"}}}});
  ASSERT_EQ(connected.status, 202) << connected.body;
  auto state = [&] { return client.get("/api/v1/accounts/" + account).json(); };
  ASSERT_TRUE(eventually([&] { return state().value("state", "") == "connected"; }));

  // The disk fills; a long message is sent, and its echo comes back as an inbound message.
  fill(data / "ballast");
  const std::string text(900 * 1024, 'x');
  auto sent = client.post("/api/v1/accounts/" + account + "/messages",
                          {{"to", "cliente@example.com"}, {"text", text}});
  EXPECT_EQ(sent.status, 507) << sent.body.substr(0, 300);
  EXPECT_EQ(sent.error_code(), "storage_full");
  ASSERT_TRUE(eventually([&] { return state().value("reason_code", "") == "storage_full"; }))
      << state().dump();
  EXPECT_EQ(state().value("state", ""), "error");
  EXPECT_NE(state().value("detail", "").find("a message could not be stored"), std::string::npos)
      << state().dump();
  EXPECT_TRUE(eventually([&] {
    return client.get("/api/v1/accounts/" + account + "/log").body.find("disk") !=
           std::string::npos;
  }));
  EXPECT_EQ(client.get("/api/v1/accounts/" + account + "/messages").json()["items"].size(), 0u);
  // Paused: a send is refused before the channel sees it.
  auto refused = client.post("/api/v1/accounts/" + account + "/messages",
                             {{"to", "cliente@example.com"}, {"text", "curto"}});
  EXPECT_EQ(refused.status, 507) << refused.body;

  // Space returns: the account connects again by itself, and messages are stored again.
  fs::remove(data / "ballast");
  ASSERT_TRUE(eventually([&] { return state().value("state", "") == "connected"; }))
      << state().dump();
  EXPECT_EQ(state().value("reason_code", ""), "");
  auto after = client.post("/api/v1/accounts/" + account + "/messages",
                           {{"to", "cliente@example.com"}, {"text", "de novo"}});
  EXPECT_EQ(after.status, 201) << after.body;
  EXPECT_TRUE(eventually([&] {
    return client.get("/api/v1/accounts/" + account + "/messages").json()["items"].size() == 2;
  })) << "the reply and its echo";
  host.stop();
}

}  // namespace
}  // namespace connector::test

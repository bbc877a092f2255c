// An account whose message cannot be stored because the host's disk is full pauses, says why,
// takes nothing more, and resumes by itself once space returns: the account runtime with the
// loopback plugin, its data folder on a small tmpfs the test mounts itself (needs root). The
// e-mail test (tests/plugins/email-imap/DiskFullTest.cpp) shows the channel's side.
#include "SmallDisk.hpp"
#include "TestHost.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

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

TEST(FullDiskPause, AnInboundMessageThatDoesNotFitPausesTheAccountUntilSpaceReturns) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting the small disk needs root";
  TestHost host;
  // The data folder moves onto a 24 MiB tmpfs.
  auto disk = move_data_to_small_disk(host, "24m");

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
  disk->fill();
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
  disk->empty();
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

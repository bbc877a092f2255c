// A WhatsApp message that arrives while the host's disk is full: the account pauses, the message
// is neither stored nor receipted (and the Signal state that decrypted it is not kept), and once
// space returns the account resumes, WhatsApp delivers the message again, and it is stored once.
// Through a real host whose data folder is a small tmpfs, the plugin, its bridge (unmodified
// Baileys) and the WhatsApp test server.
#include "SmallDisk.hpp"
#include "TestHost.hpp"
#include "TestServer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

namespace connector::test {
namespace {

using namespace std::chrono_literals;

constexpr const char *kAttendantPhone = "5511900000011";
constexpr const char *kContactPhone = "5511988880011";

// Polls `done` for up to 90 s (a loaded machine is slow; a wait ends as soon as it holds).
bool eventually(const std::function<bool()> &done) {
  for (int i = 0; i < 900; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return done();
}

TEST(WhatsAppOnAFullDisk, AMessageThatDoesNotFitComesAgainOnceSpaceReturnsAndIsStoredOnce) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting the small disk needs root";
  WhatsAppTestServer server;
  TestHost host(whatsapp_plugin_yaml(server));
  auto disk = move_data_to_small_disk(host, "48m");
  EventStream events(host.port(), host.admin_token());
  const std::string account = TestHost::create_account(host.admin(), "whatsapp", "WhatsApp");
  const std::string base = "/api/v1/accounts/" + account;
  auto state = [&] { return host.admin().get(base).json(); };
  auto copies_of = [&](const std::string &text) {
    int copies = 0;
    // Held in a variable: a range-for over a member of the temporary answer would dangle.
    const Json answer = host.admin().get(base + "/messages").json();
    for (const auto &m : answer["items"]) copies += m.value("text", "") == text ? 1 : 0;
    return copies;
  };

  // Paired, and one message stored as usual.
  ASSERT_EQ(host.admin().post(base + "/connect", {{"values", Json::object()}}).status, 202);
  ASSERT_TRUE(events.wait_for([](const Json &e) { return e.value("type", "") == "account.qr"; },
                              30s));
  server.scan(host.admin().get(base + "/qr").json()["payload"], kAttendantPhone);
  ASSERT_TRUE(eventually([&] { return state().value("state", "") == "connected"; }))
      << state().dump();
  server.send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "antes"}});
  ASSERT_TRUE(eventually([&] { return copies_of("antes") == 1; })) << state().dump();

  // The disk fills up; a message arrives. The account pauses for it, and it is not stored.
  disk->fill();
  server.send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "durante"}});
  ASSERT_TRUE(eventually([&] { return state().value("reason_code", "") == "storage_full"; }))
      << state().dump();
  EXPECT_EQ(copies_of("durante"), 0);

  // Space returns: the account resumes by itself, and the message WhatsApp delivers again is
  // decrypted with the state the host kept, and stored once.
  disk->empty();
  ASSERT_TRUE(eventually([&] { return copies_of("durante") >= 1; }))
      << state().dump() << "\nthe message that arrived on a full disk never came again";
  ASSERT_TRUE(eventually([&] { return state().value("state", "") == "connected"; }))
      << state().dump();
  std::this_thread::sleep_for(1s);  // a second copy would be here by now
  EXPECT_EQ(copies_of("durante"), 1);
  EXPECT_EQ(copies_of("antes"), 1);

  // And the session goes on: a new message arrives as usual.
  server.send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "depois"}});
  EXPECT_TRUE(eventually([&] { return copies_of("depois") == 1; })) << state().dump();
}

// The phone's history is sent once: what a full disk refused of it is lost, and the account's
// integration log says so (the general full-disk entry says messages come again).
TEST(WhatsAppOnAFullDisk, HistoryThatDoesNotFitIsSaidToBeLost) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting the small disk needs root";
  WhatsAppTestServer server;
  TestHost host(whatsapp_plugin_yaml(server));
  auto disk = move_data_to_small_disk(host, "48m");
  EventStream events(host.port(), host.admin_token());
  const std::string account = TestHost::create_account(host.admin(), "whatsapp", "WhatsApp");
  const std::string base = "/api/v1/accounts/" + account;
  auto state = [&] { return host.admin().get(base).json(); };
  ASSERT_EQ(host.admin().post(base + "/connect", {{"values", Json::object()}}).status, 202);
  ASSERT_TRUE(events.wait_for([](const Json &e) { return e.value("type", "") == "account.qr"; },
                              30s));
  server.scan(host.admin().get(base + "/qr").json()["payload"], kAttendantPhone);
  ASSERT_TRUE(eventually([&] { return state().value("state", "") == "connected"; }))
      << state().dump();

  disk->fill();
  server.history({{"to", kAttendantPhone},
                  {"chats",
                   {{{"with", kContactPhone},
                     {"messages", {{{"id", "FULL-H1"}, {"text", "antiga 1"}},
                                   {{"id", "FULL-H2"}, {"text", "antiga 2"}}}}}}}});
  ASSERT_TRUE(eventually([&] { return state().value("reason_code", "") == "storage_full"; }))
      << state().dump();
  disk->empty();
  auto said = [&] {
    const Json log = host.admin().get(base + "/log").json();
    for (const auto &entry : log["items"]) {
      if (entry.value("text", "").find("the phone does not send them again") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(eventually(said)) << host.admin().get(base + "/log").body;
}

}  // namespace
}  // namespace connector::test

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
#include <memory>
#include <string>
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

// A host whose data folder is a small disk, with one WhatsApp account paired through the test
// server.
class WhatsAppOnAFullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mounting the small disk needs root";
    host_ = std::make_unique<TestHost>(whatsapp_plugin_yaml(server_));
    disk_ = move_data_to_small_disk(*host_, "48m");
    events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());
    base_ = "/api/v1/accounts/" +
            TestHost::create_account(host_->admin(), "whatsapp", "WhatsApp");
    ASSERT_EQ(host_->admin().post(base_ + "/connect", {{"values", Json::object()}}).status, 202);
    ASSERT_TRUE(events_->wait_for(
        [](const Json &e) { return e.value("type", "") == "account.qr"; }, 30s));
    server_.scan(host_->admin().get(base_ + "/qr").json()["payload"], kAttendantPhone);
    ASSERT_TRUE(eventually([&] { return state().value("state", "") == "connected"; }))
        << state().dump();
  }

  Json state() const { return host_->admin().get(base_).json(); }

  int copies_of(const std::string &text) const {
    int copies = 0;
    // Held in a variable: a range-for over a member of the temporary answer would dangle.
    const Json answer = host_->admin().get(base_ + "/messages").json();
    for (const auto &m : answer["items"]) copies += m.value("text", "") == text ? 1 : 0;
    return copies;
  }

  WhatsAppTestServer server_;
  std::unique_ptr<TestHost> host_;
  std::unique_ptr<SmallDisk> disk_;
  std::unique_ptr<EventStream> events_;
  std::string base_;
};

TEST_F(WhatsAppOnAFullDisk, AMessageThatDoesNotFitComesAgainOnceSpaceReturnsAndIsStoredOnce) {
  server_.send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "antes"}});
  ASSERT_TRUE(eventually([&] { return copies_of("antes") == 1; })) << state().dump();

  // The disk fills up; a message arrives. The account pauses for it, and it is not stored.
  disk_->fill();
  server_.send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "durante"}});
  ASSERT_TRUE(eventually([&] { return state().value("reason_code", "") == "storage_full"; }))
      << state().dump();
  EXPECT_EQ(copies_of("durante"), 0);

  // Space returns: the account resumes by itself, and the message WhatsApp delivers again is
  // decrypted with the state the host kept, and stored once.
  disk_->empty();
  ASSERT_TRUE(eventually([&] { return copies_of("durante") >= 1; }))
      << state().dump() << "\nthe message that arrived on a full disk never came again";
  ASSERT_TRUE(eventually([&] { return state().value("state", "") == "connected"; }))
      << state().dump();
  std::this_thread::sleep_for(1s);  // a second copy would be here by now
  EXPECT_EQ(copies_of("durante"), 1);
  EXPECT_EQ(copies_of("antes"), 1);

  // And the session goes on: a new message arrives as usual.
  server_.send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "depois"}});
  EXPECT_TRUE(eventually([&] { return copies_of("depois") == 1; })) << state().dump();
}

// The phone's history is sent once: what a full disk refused of it is lost, and the account's
// integration log says so (the general full-disk entry says messages come again).
TEST_F(WhatsAppOnAFullDisk, HistoryThatDoesNotFitIsSaidToBeLost) {
  disk_->fill();
  server_.history({{"to", kAttendantPhone},
                  {"chats",
                   {{{"with", kContactPhone},
                     {"messages", {{{"id", "FULL-H1"}, {"text", "antiga 1"}},
                                   {{"id", "FULL-H2"}, {"text", "antiga 2"}}}}}}}});
  ASSERT_TRUE(eventually([&] { return state().value("reason_code", "") == "storage_full"; }))
      << state().dump();
  disk_->empty();
  auto said = [&] {
    const Json log = host_->admin().get(base_ + "/log").json();
    for (const auto &entry : log["items"]) {
      if (entry.value("text", "").find("the phone does not send them again") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(eventually(said)) << host_->admin().get(base_ + "/log").body;
}

}  // namespace
}  // namespace connector::test

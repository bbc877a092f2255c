// The WhatsApp plugin's reading of bridge lines, without Node: the plugin is made by its entry
// point with an in-memory host, and lines are fed to its own bridge reader as the bridge's stdout
// would bring them. Each test holds a line of the kind the protocol's fuzz target
// (fuzz/BridgeFuzz.cpp) found mishandled.
#include "WhatsAppPlugin.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

extern "C" cn_result connector_plugin_entry(const cn_host_api *host, cn_plugin_api *api,
                                            char **error);

namespace connector::whatsapp {
namespace {

// Records what the plugin hands the host.
struct Recorder {
  std::vector<Json> events;
  std::vector<std::string> logs;
  std::map<std::string, std::string> store;
};

Recorder *recorder(void *host) { return static_cast<Recorder *>(host); }

class BridgeLines : public ::testing::Test {
 protected:
  void SetUp() override {
    api_.struct_size = sizeof api_;
    api_.host = &recorded_;
    api_.alloc = std::malloc;
    api_.free = std::free;
    api_.log = [](void *host, const char *, cn_log_level, const char *message) {
      recorder(host)->logs.push_back(message);
    };
    api_.emit = [](void *host, const char *, const char *text) {
      recorder(host)->events.push_back(Json::parse(text));
      return CN_OK;
    };
    api_.store_put = [](void *host, const char *account, const char *key, const void *value,
                        size_t size, int) {
      recorder(host)->store[std::string(account) + "/" + key] =
          std::string(static_cast<const char *>(value), size);
      return CN_OK;
    };
    api_.store_get = [](void *, const char *, const char *, char **, size_t *) {
      return CN_ERR_NOT_FOUND;
    };
    api_.store_delete = [](void *host, const char *account, const char *key) {
      return recorder(host)->store.erase(std::string(account) + "/" + key) ? CN_OK
                                                                           : CN_ERR_NOT_FOUND;
    };
    api_.attachment_put = [](void *, const char *, const void *, size_t, char id[65]) {
      std::memset(id, 'a', 64);
      id[64] = '\0';
      return CN_OK;
    };
    api_.attachment_path = [](void *, const char *, char **) { return CN_ERR_NOT_FOUND; };
    ASSERT_EQ(connector_plugin_entry(&api_, &plugin_, nullptr), CN_OK);
    auto *instance = static_cast<sdk::detail::Instance *>(plugin_.plugin);
    reader_ = bridge_reader(*instance->plugin);
  }

  void TearDown() override {
    reader_.reset();
    if (plugin_.shutdown != nullptr) plugin_.shutdown(plugin_.plugin);
  }

  // The events the plugin emitted of `type`.
  std::vector<Json> emitted(const std::string &type) const {
    std::vector<Json> found;
    for (const auto &event : recorded_.events) {
      if (event.value("type", "") == type) found.push_back(event);
    }
    return found;
  }

  Recorder recorded_;
  cn_host_api api_{};
  cn_plugin_api plugin_{};
  std::unique_ptr<BridgeProcess> reader_;
};

TEST_F(BridgeLines, EventsOfEveryKindReachTheHost) {
  reader_->feed(
      "{\"event\":\"qr\",\"account\":\"a\",\"qr\":\"2@abc\",\"expires_at\":1764900000000}\n"
      "{\"event\":\"pairing_code\",\"account\":\"a\",\"code\":\"ABCD-EFGH\",\"expires_at\":5}\n"
      "{\"event\":\"status\",\"account\":\"a\",\"state\":\"reauth_needed\",\"code\":401}\n"
      "{\"event\":\"backlog\",\"account\":\"a\",\"count\":3}\n"
      "{\"event\":\"state\",\"account\":\"a\",\"seq\":1,\"auth\":\"{}\"}\n");
  ASSERT_EQ(emitted("qr").size(), 1u);
  EXPECT_EQ(emitted("qr")[0]["expires_at"], 1764900000000);
  EXPECT_EQ(emitted("pairing_code")[0]["expires_at"], 5);
  EXPECT_EQ(emitted("progress")[0]["total"], 3);
  const auto statuses = emitted("status");
  ASSERT_FALSE(statuses.empty());
  EXPECT_EQ(statuses.back()["reason_code"], "logged_out");
  EXPECT_EQ(recorded_.store["a/wa.auth"], "{}");
}

// A line of media travels as base64 in one line, read by read; the reader searched the whole line
// for its end again after every read, so a 32 MiB line read 256 bytes at a time scanned about two
// TiB (minutes: this test then ran into its CTest timeout). Only the new bytes are searched now.
TEST_F(BridgeLines, ALongLineInManyReadsIsSearchedOnce) {
  const std::string text(size_t{32} << 20, 'x');
  const std::string line = "{\"event\":\"log\",\"level\":\"warn\",\"text\":\"" + text + "\"}\n";
  for (size_t at = 0; at < line.size(); at += 256) {
    reader_->feed(std::string_view(line).substr(at, 256));
  }
  ASSERT_FALSE(recorded_.logs.empty());
  EXPECT_EQ(recorded_.logs.back(), "bridge: " + text);
}

// A number beyond 64 bits where the protocol has a time or a count was converted with undefined
// behaviour (UBSan: "1e+300 is outside the range of representable values of type 'long'"); on
// x86 it came out as the lowest 64-bit integer. It now reads as missing: 0.
TEST_F(BridgeLines, OutOfRangeNumbersReadAsMissing) {
  reader_->feed(
      "{\"event\":\"qr\",\"account\":\"a\",\"qr\":\"2@abc\",\"expires_at\":1e300}\n"
      "{\"event\":\"pairing_code\",\"account\":\"a\",\"code\":\"ABCD-EFGH\",\"expires_at\":-1e30}\n"
      "{\"event\":\"backlog\",\"account\":\"a\",\"count\":18446744073709551615}\n"
      "{\"event\":\"backlog\",\"account\":\"a\",\"count\":2.5}\n");
  ASSERT_EQ(emitted("qr").size(), 1u);
  EXPECT_EQ(emitted("qr")[0]["expires_at"], 0);
  ASSERT_EQ(emitted("pairing_code").size(), 1u);
  EXPECT_EQ(emitted("pairing_code")[0]["expires_at"], 0);
  const auto progress = emitted("progress");
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0]["total"], 0);
  EXPECT_EQ(progress[1]["total"], 2);  // a fraction is cut, as before
}

// A close code that only wrapped to 401 in 32 bits is not a logout.
TEST_F(BridgeLines, CloseCodeIsReadInFull) {
  reader_->feed(
      "{\"event\":\"status\",\"account\":\"a\",\"state\":\"reauth_needed\",\"code\":4294967697}\n");
  const auto statuses = emitted("status");
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_FALSE(statuses[0].contains("reason_code")) << statuses[0];
}

// Answers with members of the wrong type threw nlohmann's type_error out of the plugin's reading:
// inside a verb it became an internal error with the library's text (a sent message reported as
// failed; a logout leaving no status), and the answer to hello is read on the thread that
// restarts a dead bridge, where the exception ended the host.
TEST_F(BridgeLines, AnswersOfTheWrongShapeAreReadWithoutThrowing) {
  const Json odd_ok = {{"id", 1}, {"ok", 56789}, {"kind", 7}, {"error", false}};
  EXPECT_NO_THROW({
    const auto outcome = BridgeProcess::outcome(odd_ok);
    ASSERT_FALSE(outcome);
    EXPECT_EQ(outcome.error().code, CN_ERR_INTERNAL);
    EXPECT_EQ(outcome.error().message, "bridge error");
  });

  const Json hello = {{"id", 1}, {"ok", true}, {"protocol", 1}, {"baileys", 6}};
  EXPECT_NO_THROW({
    const auto read = read_hello(BridgeProcess::outcome(hello), "/bridge");
    ASSERT_TRUE(read);
    EXPECT_EQ(read.value(), "?");
  });

  const Json sent = {{"id", 2}, {"ok", true}, {"external_id", 12}, {"to", {1}}, {"phone", nullptr}};
  EXPECT_NO_THROW({
    const Json answer = sent_answer(sent, "+5511988887777");
    EXPECT_EQ(answer["external_id"], "");
    EXPECT_EQ(answer["to"], "+5511988887777");
  });

  const Json stopped = {{"id", 3}, {"ok", true}, {"paired", "yes"}, {"detail", 1}};
  EXPECT_NO_THROW(EXPECT_FALSE(logout_unconfirmed(sdk::Result<Json>(stopped)).has_value()));
  const Json unconfirmed = {{"id", 3}, {"ok", true}, {"paired", true}, {"logged_out", 1},
                            {"detail", {"x"}}};
  EXPECT_NO_THROW({
    const auto detail = logout_unconfirmed(sdk::Result<Json>(unconfirmed));
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->find("()"), std::string::npos) << *detail;
  });
}

// A message line the plugin cannot read (a lone surrogate escape, as an older bridge wrote) was
// dropped with "not a JSON object" and nothing else: no word of whose message it was, and the
// bridge held the account's traffic behind its receipt for a minute. The log now names the
// account and the message, and says the message is lost; the next line is read as usual.
TEST_F(BridgeLines, AnUnreadableMessageLineIsLoggedWithItsAccountAndMessage) {
  reader_->feed(
      "{\"event\":\"message\",\"account\":\"acc-7\",\"message\":{\"type\":\"message\","
      "\"direction\":\"inbound\",\"external_id\":\"3EB0AB\",\"text\":\"bad \\ud800 x\"}}\n"
      "{\"event\":\"status\",\"account\":\"acc-7\",\"state\":\"connected\"}\n");
  bool dropped = false;
  bool lost = false;
  for (const auto &line : recorded_.logs) {
    if (line.find("dropped") != std::string::npos && line.find("acc-7") != std::string::npos &&
        line.find("3EB0AB") != std::string::npos && line.find("message") != std::string::npos) {
      dropped = true;
    }
    if (line.find("3EB0AB") != std::string::npos && line.find("lost") != std::string::npos) {
      lost = true;
    }
  }
  EXPECT_TRUE(dropped) << ::testing::PrintToString(recorded_.logs);
  EXPECT_TRUE(lost) << ::testing::PrintToString(recorded_.logs);
  ASSERT_FALSE(emitted("status").empty());
  EXPECT_EQ(emitted("status").back()["state"], "connected");
}

}  // namespace
}  // namespace connector::whatsapp

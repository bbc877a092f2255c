// The WhatsApp plugin end to end: a real host in this process with the plugin enabled, its
// Node bridge running the unmodified Baileys client, and the WhatsApp test server on loopback.
// Everything is driven through the host's control API and observed on its WebSocket, as the
// connection screen would; the test server's control interface plays the attendant's phone and
// the contacts.
#include "StoredAttachments.hpp"
#include "TestHost.hpp"
#include "TestServer.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include <chrono>
#include <random>
#include <thread>

namespace connector::test {
namespace {

using namespace std::chrono_literals;

constexpr const char *kAttendantPhone = "5511900000001";
constexpr const char *kContactPhone = "5511988887777";

std::string base64(const std::string &bytes) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kDigits[(n >> shift) & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= uint8_t(bytes[i + 1]) << 8;
    out += kDigits[(n >> 18) & 63];
    out += kDigits[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kDigits[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string random_bytes(size_t size, unsigned seed) {
  std::mt19937 generator(seed);
  std::string out(size, '\0');
  for (auto &c : out) c = static_cast<char>(generator() & 0xff);
  return out;
}

class WhatsAppPlugin : public ::testing::Test {
 protected:
  void start(int refs = 3, int qr_timeout_ms = 0) {
    server_ = std::make_unique<WhatsAppTestServer>(refs);
    host_ = std::make_unique<TestHost>(whatsapp_plugin_yaml(*server_, qr_timeout_ms));
    events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());
    account_ = TestHost::create_account(host_->admin(), "whatsapp", "attendant's WhatsApp");
  }

  std::string path(const std::string &tail = {}) const {
    return "/api/v1/accounts/" + account_ + tail;
  }

  std::optional<Json> wait_event(const std::string &type,
                                 const std::function<bool(const Json &)> &match = nullptr,
                                 std::chrono::milliseconds timeout = 30s) {
    return events_->wait_for(
        [&](const Json &e) { return e.value("type", "") == type && (!match || match(e)); },
        timeout);
  }

  std::optional<Json> wait_state(const std::string &state, std::chrono::milliseconds timeout = 30s) {
    return wait_event("account.status", [&](const Json &e) { return e["state"] == state; },
                      timeout);
  }

  // Connect from the screen, read the QR through the API, let the phone scan it.
  void pair() {
    auto connect = host_->admin().post(path("/connect"), {{"values", Json::object()}});
    ASSERT_EQ(connect.status, 202) << connect.body;
    auto qr_event = wait_event("account.qr");
    ASSERT_TRUE(qr_event) << "no QR pushed over the WebSocket";
    EXPECT_GT((*qr_event)["expires_at"].get<int64_t>(), 0);
    auto qr = host_->admin().get(path("/qr"));
    ASSERT_EQ(qr.status, 200) << qr.body;
    const std::string payload = qr.json()["payload"];
    server_->scan(payload, kAttendantPhone);
    ASSERT_TRUE(wait_state("connected")) << "the account did not connect after the scan";
  }

  std::optional<Json> wait_message(const std::string &text, std::chrono::milliseconds t = 30s) {
    auto event = wait_event(
        "message.new", [&](const Json &e) { return e["message"].value("text", "") == text; }, t);
    if (!event) return std::nullopt;
    return (*event)["message"];
  }

  // The message the host stored for WhatsApp message `external_id`, as pushed on the WebSocket.
  std::optional<Json> wait_external(const std::string &external_id,
                                    std::chrono::milliseconds t = 30s) {
    auto event = wait_event(
        "message.new", [&](const Json &e) { return e["message"]["external_id"] == external_id; },
        t);
    if (!event) return std::nullopt;
    return (*event)["message"];
  }

  // The bytes the attachment store holds for `attachment_id`.
  std::string stored_bytes(const std::string &attachment_id) const {
    return stored_attachment(host_->data_dir(), attachment_id);
  }

  int copies_of(const std::string &text) {
    int copies = 0;
    // Held in a variable: a range-for over a member of the temporary answer would dangle.
    const Json answer = host_->admin().get(path("/messages")).json();
    for (const auto &m : answer["items"]) {
      if (m["text"] == text) ++copies;
    }
    return copies;
  }

  // The summary of a backlog import (account.progress, phase backlog), and every event pushed
  // before it; no summary when none came.
  std::pair<std::optional<Json>, std::vector<Json>> events_until_backlog_summary() {
    std::vector<Json> pushed;
    for (int i = 0; i < 200; ++i) {
      auto event = events_->next(45s);
      if (!event) break;
      if ((*event)["type"] == "account.progress" && (*event)["phase"] == "backlog") {
        return {event, pushed};
      }
      pushed.push_back(*event);
    }
    return {std::nullopt, pushed};
  }

  pid_t bridge_pid() const {
    auto pids = own_children_running("bridge.mjs");
    return pids.size() == 1 ? pids[0] : -1;
  }

  std::unique_ptr<WhatsAppTestServer> server_;
  std::unique_ptr<TestHost> host_;
  std::unique_ptr<EventStream> events_;
  std::string account_;
};

TEST_F(WhatsAppPlugin, QrScanConnectsAndTextFlowsBothWaysWithReceipts) {
  start();
  pair();
  auto account = host_->admin().get(path());
  EXPECT_EQ(account.json().value("account", ""), "+" + std::string(kAttendantPhone)) << account.body;

  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "olá, preciso de ajuda"},
                 {"push_name", "Maria"}});
  auto inbound = wait_message("olá, preciso de ajuda");
  ASSERT_TRUE(inbound) << "the contact's message did not reach the host";
  EXPECT_EQ((*inbound)["from"], "+" + std::string(kContactPhone));
  EXPECT_EQ((*inbound)["direction"], "inbound");
  EXPECT_EQ((*inbound)["details"]["push_name"], "Maria");
  EXPECT_FALSE((*inbound)["details"].value("history", false));

  auto sent = host_->admin().post(path("/messages"),
                                  {{"to", "+" + std::string(kContactPhone)}, {"text", "posso ajudar"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  ASSERT_TRUE(eventually([&] {
    for (const auto &m : server_->received()) {
      if (m["text"] == "posso ajudar" && m["to"] == kContactPhone) return true;
    }
    return false;
  }, 20s)) << "the reply did not reach the contact's phone";
  auto delivered = wait_event("message.delivery", [](const Json &e) {
    return e["status"] == "delivered" || e["status"] == "read";
  });
  EXPECT_TRUE(delivered) << "no delivery receipt pushed";
}

// A number that is not on WhatsApp is a refusal of the request, not an internal error.
TEST_F(WhatsAppPlugin, SendingToANumberNotOnWhatsAppIsRefusedAsSuch) {
  start();
  pair();
  auto sent = host_->admin().post(path("/messages"), {{"to", "+5511900009999"}, {"text", "oi"}});
  EXPECT_EQ(sent.status, 400) << sent.body;
  EXPECT_EQ(sent.error_code(), "invalid_argument");
  EXPECT_EQ(sent.json()["error"]["message"], "this number is not on WhatsApp");
}

TEST_F(WhatsAppPlugin, RecipientsThatAreNeitherAPhoneNorAWhatsAppIdAreRefusedInWords) {
  start();
  pair();
  for (const char *to : {"@", "foo@bar", "abc", "123", "x@s.whatsapp.net", "5511@evil.example",
                         "-@g.us"}) {
    auto sent = host_->admin().post(path("/messages"), {{"to", to}, {"text", "oi"}});
    EXPECT_EQ(sent.status, 400) << to << ": " << sent.body;
    EXPECT_EQ(sent.error_code(), "invalid_argument") << to;
    EXPECT_NE(sent.body.find("phone number"), std::string::npos) << to << ": " << sent.body;
  }
  // The connection survived the attempts: a good recipient still gets the message.
  server_->call("POST", "/contact", {{"phone", kContactPhone}});
  auto sent = host_->admin().post(path("/messages"), {{"to", kContactPhone}, {"text", "ainda aqui"}});
  EXPECT_EQ(sent.status, 201) << sent.body;
  EXPECT_TRUE(server_->device_connected(kAttendantPhone));
}

TEST_F(WhatsAppPlugin, PairingPhoneThatIsNoNumberIsRefusedInWords) {
  start();
  auto connect = host_->admin().post(path("/connect"), {{"values", {{"phone", "abc"}}}});
  EXPECT_EQ(connect.status, 400) << connect.body;
  EXPECT_NE(connect.body.find("country code"), std::string::npos) << connect.body;
  EXPECT_FALSE(wait_event("account.qr", nullptr, 2s)) << "a QR was shown instead";
}

// A JSON number where the phone's text belongs is the client's mistake: refused in words, not an
// internal error.
TEST_F(WhatsAppPlugin, PairingPhoneGivenAsANumberIsRefusedInWords) {
  start();
  auto connect = host_->admin().post(path("/connect"), {{"values", {{"phone", 12345678901}}}});
  EXPECT_EQ(connect.status, 400) << connect.body;
  EXPECT_EQ(connect.error_code(), "invalid_argument") << connect.body;
  EXPECT_NE(connect.body.find("as text"), std::string::npos) << connect.body;
  EXPECT_FALSE(wait_event("account.qr", nullptr, 2s)) << "a QR was shown instead";
  // A form refused for its values leaves the account as it was.
  const Json after = host_->admin().get(path()).json();
  EXPECT_EQ(after.value("state", ""), "disconnected") << after.dump();
  EXPECT_FALSE(after.value("wanted_connected", true)) << after.dump();
  // Given as text, the same number pairs by code.
  connect = host_->admin().post(path("/connect"), {{"values", {{"phone", "12345678901"}}}});
  EXPECT_EQ(connect.status, 202) << connect.body;
  EXPECT_TRUE(wait_event("account.pairing_code"));
}

// A message with nothing in it is not sent as an empty WhatsApp message.
TEST_F(WhatsAppPlugin, EmptyMessageIsRefusedInWords) {
  start();
  pair();
  server_->call("POST", "/contact", {{"phone", kContactPhone}});
  const std::string to = "+" + std::string(kContactPhone);
  for (const Json &body : {Json{{"to", to}}, Json{{"to", to}, {"text", ""}},
                           Json{{"to", to}, {"text", "  \n"}}}) {
    auto sent = host_->admin().post(path("/messages"), body);
    EXPECT_EQ(sent.status, 400) << body << ": " << sent.body;
    EXPECT_NE(sent.body.find("empty"), std::string::npos) << sent.body;
  }
  EXPECT_TRUE(server_->received().empty()) << server_->received();
}

// A group the account is not in is the sender's mistake, said in words, not an internal error.
TEST_F(WhatsAppPlugin, SendingToAGroupThatDoesNotExistIsRefusedInWords) {
  start();
  pair();
  auto sent = host_->admin().post(path("/messages"),
                                  {{"to", "120363000000000000@g.us"}, {"text", "oi grupo"}});
  EXPECT_EQ(sent.status / 100, 4) << sent.body;
  EXPECT_EQ(sent.error_code(), "not_found") << sent.body;
  EXPECT_NE(sent.body.find("group does not exist"), std::string::npos) << sent.body;
  EXPECT_TRUE(server_->device_connected(kAttendantPhone));
}

// A text with a lone UTF-16 surrogate (which WhatsApp can carry) is stored with U+FFFD in its
// place, and the account's next message is not held behind it.
TEST_F(WhatsAppPlugin, TextWithALoneSurrogateIsStoredAndTheNextMessageFollows) {
  start();
  pair();
  server_->call_raw("POST", "/send",
                    std::string(R"({"from":")") + kContactPhone + R"(","to":")" +
                        kAttendantPhone + R"(","text":"bad \ud800 surrogate"})");
  EXPECT_TRUE(wait_message("bad \xEF\xBF\xBD surrogate")) << "the message was lost";
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "a seguinte"}});
  // Far less than the 60 s a held receipt waits before it is let go.
  EXPECT_TRUE(wait_message("a seguinte", 15s)) << "the next message was held back";
}

TEST_F(WhatsAppPlugin, SendingWhileTheConnectionIsStillOpeningIsRefusedAsAState) {
  start();
  pair();
  server_->call("POST", "/contact", {{"phone", kContactPhone}});
  // The reconnect's socket exists but its handshake is held back.
  server_->call("POST", "/handshake-delay", {{"ms", 20000}});
  server_->call("POST", "/opening-peak/reset");
  ASSERT_EQ(server_->kick(kAttendantPhone, 0), 1);
  ASSERT_TRUE(eventually([&] { return server_->info()["opening_peak"].get<int>() >= 1; }, 30s))
      << server_->info();
  auto sent = host_->admin().post(path("/messages"), {{"to", kContactPhone}, {"text", "cedo"}});
  EXPECT_EQ(sent.status, 409) << sent.body;
  EXPECT_EQ(sent.error_code(), "state") << sent.body;
  server_->call("POST", "/handshake-delay", {{"ms", 0}});
}

TEST_F(WhatsAppPlugin, BridgeKilledMidSessionResumesWithoutNewScan) {
  start();
  pair();
  const pid_t first = bridge_pid();
  ASSERT_GT(first, 0);
  ASSERT_EQ(::kill(first, SIGKILL), 0);

  ASSERT_TRUE(eventually([&] { return bridge_pid() > 0 && bridge_pid() != first; }, 20s))
      << "the plugin did not restart the bridge";
  ASSERT_TRUE(eventually([&] { return server_->device_connected(kAttendantPhone); }, 30s))
      << "the session did not resume: " << server_->info().dump();
  EXPECT_EQ(server_->info()["pending_qr_refs"], 0) << "a new pairing was started";

  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "ainda aí?"}});
  // Generous: on a loaded machine the resumed session may still be settling in.
  EXPECT_TRUE(wait_message("ainda aí?", 90s)) << server_->info().dump();
}

// Everything this process writes on its stderr (the host's log, and the bridge's stderr, which
// reaches the host's journal), from construction to stop().
class StderrCapture {
 public:
  StderrCapture() : file_(std::tmpfile()) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    ::dup2(::fileno(file_), 2);
  }
  ~StderrCapture() { stop(); std::fclose(file_); }
  std::string stop() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      ::dup2(saved_, 2);
      ::close(saved_);
      saved_ = -1;
    }
    std::string text;
    std::rewind(file_);
    char chunk[4096];
    for (size_t n; (n = std::fread(chunk, 1, sizeof chunk, file_)) > 0;) text.append(chunk, n);
    return text;
  }

 private:
  std::FILE *file_;
  int saved_ = -1;
};

// libsignal announces every session it closes or opens with console.info and the whole session,
// its root and private keys included. A contact whose phone starts a new session (after a
// reinstall), and a bridge killed mid-session whose next send re-keys: none of those keys may
// reach the host's stderr (its log, and the journal the bridge's stderr goes to).
TEST_F(WhatsAppPlugin, SessionKeysPrintedByTheSignalLibraryNeverReachTheHostsStderr) {
  // The test server's own libsignal prints to its stderr too: it is started before the capture.
  server_ = std::make_unique<WhatsAppTestServer>(3);
  StderrCapture captured;
  host_ = std::make_unique<TestHost>(whatsapp_plugin_yaml(*server_));
  events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());
  account_ = TestHost::create_account(host_->admin(), "whatsapp", "attendant's WhatsApp");
  pair();
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "primeira"}});
  ASSERT_TRUE(wait_message("primeira"));
  server_->call("POST", "/contact/new-session", {{"phone", kContactPhone}});
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "sessão nova"}});
  ASSERT_TRUE(wait_message("sessão nova"));

  const pid_t first = bridge_pid();
  ASSERT_GT(first, 0);
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] {
    return bridge_pid() > 0 && bridge_pid() != first &&
           host_->admin().get(path()).json().value("state", "") == "connected";
  }, 30s)) << host_->admin().get(path()).body;
  auto sent = host_->admin().post(path("/messages"),
                                  {{"to", "+" + std::string(kContactPhone)}, {"text", "de volta"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  ASSERT_TRUE(eventually([&] {
    for (const auto &m : server_->received()) {
      if (m["text"] == "de volta") return true;
    }
    return false;
  }, 20s));
  host_.reset();
  const std::string text = captured.stop();
  for (const char *secret : {"privKey", "rootKey", "<Buffer", "Closing session"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in:\n" << text.substr(0, 4000);
  }
}

// A bridge that dies while the attendant is still scanning takes the QR with it: the account
// says the pairing was interrupted, instead of staying "connecting" with nothing to scan.
TEST_F(WhatsAppPlugin, BridgeKilledDuringPairingSaysThePairingWasInterrupted) {
  start();
  auto connect = host_->admin().post(path("/connect"), {{"values", Json::object()}});
  ASSERT_EQ(connect.status, 202) << connect.body;
  ASSERT_TRUE(wait_event("account.qr"));
  const pid_t first = bridge_pid();
  ASSERT_GT(first, 0);
  ASSERT_EQ(::kill(first, SIGKILL), 0);

  auto interrupted = wait_event("account.status", [](const Json &e) {
    return e["state"] == "disconnected" && e.value("reason_code", "") == "pairing_interrupted";
  });
  ASSERT_TRUE(interrupted) << "the account was left waiting: " << host_->admin().get(path()).body;
  EXPECT_NE((*interrupted)["detail"].get<std::string>().find("connect again"), std::string::npos);
  EXPECT_EQ(host_->admin().get(path()).json()["state"], "disconnected");

  // Connecting again pairs as usual.
  pair();
}

TEST_F(WhatsAppPlugin, HostRestartResumesWithoutNewScan) {
  start();
  pair();
  events_.reset();
  host_->restart();
  events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());
  ASSERT_TRUE(eventually([&] { return server_->device_connected(kAttendantPhone); }, 30s))
      << "the session did not resume after the restart: " << server_->info().dump();
  EXPECT_EQ(server_->info()["pending_qr_refs"], 0);
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "voltei"}});
  EXPECT_TRUE(wait_message("voltei"));
}

TEST_F(WhatsAppPlugin, LoggedOutOnThePhoneIsReportedAndCredentialsWiped) {
  start();
  pair();
  ASSERT_TRUE(server_->device_connected(kAttendantPhone));
  ASSERT_EQ(server_->kick(kAttendantPhone, 401), 1);
  auto state = wait_state("reauth_needed");
  ASSERT_TRUE(state);
  EXPECT_EQ((*state)["detail"], "disconnected on the phone");
  EXPECT_EQ((*state)["reason_code"], "logged_out");

  // The stored session is gone and a restart does not try it: the account still says why.
  events_.reset();
  host_->restart();
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(server_->device_connected(kAttendantPhone));
  const Json after = host_->admin().get(path()).json();
  EXPECT_EQ(after["state"], "reauth_needed") << after;
  EXPECT_EQ(after["reason_code"], "logged_out") << after;
  EXPECT_EQ(after["detail"], "disconnected on the phone") << after;
}

// WhatsApp answers 403 when the account itself is barred from WhatsApp Web: as final as a logout.
TEST_F(WhatsAppPlugin, AForbiddenSessionIsTakenAsLoggedOut) {
  start();
  pair();
  ASSERT_EQ(server_->kick(kAttendantPhone, 403), 1);
  auto state = wait_state("reauth_needed");
  ASSERT_TRUE(state);
  EXPECT_EQ((*state)["reason_code"], "logged_out");
  std::this_thread::sleep_for(3s);  // a reconnect loop would show itself by now
  EXPECT_FALSE(server_->device_connected(kAttendantPhone));
  EXPECT_EQ(host_->admin().get(path()).json()["state"], "reauth_needed");
}

TEST_F(WhatsAppPlugin, ReplacedByAnotherClientDoesNotFightBack) {
  start();
  pair();
  ASSERT_TRUE(server_->device_connected(kAttendantPhone));
  ASSERT_EQ(server_->kick(kAttendantPhone, 440), 1);
  auto state = wait_state("disconnected");
  ASSERT_TRUE(state);
  EXPECT_NE((*state)["detail"].get<std::string>().find("replaced"), std::string::npos);
  EXPECT_EQ((*state)["reason_code"], "replaced");
  // No reconnect: give a reconnect loop time to show itself.
  std::this_thread::sleep_for(3s);
  EXPECT_FALSE(server_->device_connected(kAttendantPhone));
}

TEST_F(WhatsAppPlugin, ReplacedSessionIsNotResumedAtTheNextHostStart) {
  start();
  pair();
  ASSERT_EQ(server_->kick(kAttendantPhone, 440), 1);
  ASSERT_TRUE(wait_state("disconnected"));
  // From here on the server turns every new connection away and counts it.
  server_->call("POST", "/refuse", {{"on", true}});
  events_.reset();
  host_->restart();
  // Give a resume time to show itself.
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(server_->info()["refused"], 0) << "the host reconnected a replaced session";
  EXPECT_FALSE(server_->device_connected(kAttendantPhone));
  const Json after = host_->admin().get(path()).json();
  EXPECT_EQ(after["state"], "disconnected") << after;
  EXPECT_EQ(after["reason_code"], "replaced") << after;
  EXPECT_EQ(after["wanted_connected"], false) << after;
}

TEST_F(WhatsAppPlugin, OutdatedVersionSaysAnUpdateIsNeeded) {
  start();
  server_->call("POST", "/min-version", {{"version", {9, 0, 0}}});
  auto connect = host_->admin().post(path("/connect"), {{"values", Json::object()}});
  ASSERT_EQ(connect.status, 202);
  auto state = wait_state("error");
  ASSERT_TRUE(state);
  EXPECT_NE((*state)["detail"].get<std::string>().find("update"), std::string::npos);
  EXPECT_EQ((*state)["reason_code"], "update_needed");
}

TEST_F(WhatsAppPlugin, ExpiredQrIsReportedAndRefreshStartsANewPairing) {
  start(/*refs=*/2, /*qr_timeout_ms=*/1000);
  auto connect = host_->admin().post(path("/connect"), {{"values", Json::object()}});
  ASSERT_EQ(connect.status, 202);
  ASSERT_TRUE(wait_event("account.qr_expired", nullptr, 20s)) << "the QR never expired";
  auto state = wait_state("disconnected", 5s);
  ASSERT_TRUE(state);
  EXPECT_EQ((*state)["detail"], "the QR code expired");
  EXPECT_EQ((*state)["reason_code"], "qr_expired");
  EXPECT_EQ(host_->admin().get(path("/qr")).status, 404);

  auto refreshed = host_->admin().post(path("/qr/refresh"));
  ASSERT_EQ(refreshed.status, 202) << refreshed.body;
  ASSERT_TRUE(wait_event("account.qr"));
  auto qr = host_->admin().get(path("/qr"));
  ASSERT_EQ(qr.status, 200);
  server_->scan(qr.json()["payload"], kAttendantPhone);
  EXPECT_TRUE(wait_state("connected"));
}

TEST_F(WhatsAppPlugin, RefreshQrIsRefusedWhileAPairedSessionReconnects) {
  start();
  pair();
  server_->call("POST", "/refuse", {{"on", true}});
  ASSERT_EQ(server_->kick(kAttendantPhone, 0), 1);
  ASSERT_TRUE(wait_state("connecting"));
  auto refresh = host_->admin().post(path("/qr/refresh"), Json::object());
  EXPECT_EQ(refresh.status, 409) << refresh.body;
  EXPECT_NE(refresh.body.find("paired"), std::string::npos) << refresh.body;
  // The session was kept: once the server is back it reconnects without a scan.
  server_->call("POST", "/refuse", {{"on", false}});
  ASSERT_TRUE(wait_state("connected")) << "the paired session was lost";
  EXPECT_EQ(server_->info()["pending_qr_refs"], 0);
}

TEST_F(WhatsAppPlugin, DroppedConnectionReconnects) {
  start();
  pair();
  ASSERT_EQ(server_->kick(kAttendantPhone, 0), 1);
  ASSERT_TRUE(wait_event("account.status", [](const Json &e) {
    return e["state"] == "connecting" && e["reason_code"] == "connection_lost";
  })) << "the drop was not reported as a lost connection";
  ASSERT_TRUE(wait_state("connected")) << "no reconnect after a dropped connection";
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "depois da queda"}});
  EXPECT_TRUE(wait_message("depois da queda"));
}

// Several sessions dropped at once come back through the bridge's gate: with
// max_concurrent_connects 1 the server never sees two of them opening together, although each
// handshake takes long enough that the jittered reconnects would otherwise overlap.
TEST_F(WhatsAppPlugin, SessionsDroppedTogetherReconnectOneAtATime) {
  server_ = std::make_unique<WhatsAppTestServer>(3);
  host_ = std::make_unique<TestHost>(
      whatsapp_plugin_yaml(*server_, 0, "      max_concurrent_connects: 1\n"));
  events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());
  const std::vector<std::string> phones = {"5511900000011", "5511900000012", "5511900000013"};
  for (const auto &phone : phones) {
    account_ = TestHost::create_account(host_->admin(), "whatsapp", "attendant " + phone);
    auto connect = host_->admin().post(path("/connect"), {{"values", Json::object()}});
    ASSERT_EQ(connect.status, 202) << connect.body;
    const std::string id = account_;
    ASSERT_TRUE(wait_event("account.qr", [&](const Json &e) { return e["account_id"] == id; }));
    auto qr = host_->admin().get(path("/qr"));
    ASSERT_EQ(qr.status, 200) << qr.body;
    server_->scan(qr.json()["payload"], phone);
    ASSERT_TRUE(wait_event("account.status", [&](const Json &e) {
      return e["account_id"] == id && e["state"] == "connected";
    })) << phone << " did not connect";
  }

  server_->call("POST", "/handshake-delay", {{"ms", 700}});
  server_->call("POST", "/opening-peak/reset");
  for (const auto &phone : phones) ASSERT_EQ(server_->kick(phone, 0), 1) << phone;
  // Every handshake now takes 0.7 s: the dropped connections are seen gone before any is back.
  ASSERT_TRUE(eventually([&] {
    for (const auto &phone : phones) {
      if (server_->device_connected(phone)) return false;
    }
    return true;
  }, 5s));
  ASSERT_TRUE(eventually([&] {
    for (const auto &phone : phones) {
      if (!server_->device_connected(phone)) return false;
    }
    return true;
  }, 60s)) << "not every session came back: " << server_->devices();
  EXPECT_EQ(server_->info()["opening_peak"], 1);
}

// Messages a contact sent while the host was away are new messages, only late: a number never
// seen before gets its case as always (one for all its messages), but the burst is announced
// once instead of one push per message.
TEST_F(WhatsAppPlugin, OfflineQueueIsFiledOnACaseAndAnnouncedOnceAsABacklog) {
  start();
  pair();
  ASSERT_TRUE(server_->device_connected(kAttendantPhone));
  events_.reset();
  host_->stop();
  ASSERT_TRUE(eventually([&] { return !server_->device_connected(kAttendantPhone); }, 10s));
  const std::vector<std::string> queued = {"enquanto fora 1", "enquanto fora 2", "enquanto fora 3"};
  for (const auto &text : queued) {
    server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", text}});
  }
  host_->start();
  events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());

  // Everything pushed until the summary: the summary comes after the messages it counts.
  auto [summary, pushed] = events_until_backlog_summary();
  ASSERT_TRUE(summary) << "no backlog summary was pushed";
  EXPECT_EQ((*summary)["done"], 3) << *summary;
  for (const auto &e : pushed) {
    if (e["type"] != "message.new") continue;
    EXPECT_EQ(e["message"]["text"].get<std::string>().rfind("enquanto fora", 0), std::string::npos)
        << "a backlog message was pushed on its own: " << e;
  }

  const Json answer = host_->admin().get(path("/messages")).json();
  Json case_of_contact;
  for (const auto &text : queued) {
    SCOPED_TRACE(text);
    const Json *found = nullptr;
    for (const auto &m : answer["items"]) {
      if (m["text"] == text) found = &m;
    }
    ASSERT_NE(found, nullptr) << "the queued message was not stored";
    EXPECT_TRUE((*found)["details"].value("offline", false)) << *found;
    EXPECT_FALSE((*found)["details"].value("history", false)) << *found;
    ASSERT_FALSE((*found)["case"].is_null()) << "a new contact's late message opened no case: "
                                             << *found;
    if (case_of_contact.is_null()) case_of_contact = (*found)["case"]["id"];
    EXPECT_EQ((*found)["case"]["id"], case_of_contact) << "one contact, one case";
  }
  const Json cases = host_->admin().get("/api/v1/cases").json();
  int of_contact = 0;
  for (const auto &c : cases.value("items", Json::array())) {
    if (c.dump().find(kContactPhone) != std::string::npos) ++of_contact;
  }
  EXPECT_EQ(of_contact, 1) << cases;
}

// The chats' past that the phone sends right after a pairing is stored with its own times and
// directions, quietly (no message pushed one by one, one summary instead), and opens no case; a
// later chunk joins the case its contact has by then, and what was imported before stays single.
TEST_F(WhatsAppPlugin, HistorySyncIsImportedQuietlyWithoutOpeningCases) {
  constexpr const char *kOtherContact = "5511977776666";
  start();
  pair();
  const int64_t past = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count() -
                       2 * 86400;
  const Json first_chunk = {
      {"to", kAttendantPhone},
      {"chats",
       {{{"with", kContactPhone},
         {"messages",
          {{{"id", "HIST-A1"}, {"text", "pedido de anteontem"}, {"timestamp", past}},
           {{"id", "HIST-A2"}, {"text", "respondido no telefone"}, {"from_me", true},
            {"timestamp", past + 60}}}}},
        {{"with", kOtherContact},
         {"messages", {{{"id", "HIST-B1"}, {"text", "conversa antiga"}, {"timestamp", past + 120}}}}}}}};
  server_->history(first_chunk);

  auto [summary, pushed] = events_until_backlog_summary();
  ASSERT_TRUE(summary) << "no summary of the history import was pushed";
  EXPECT_EQ((*summary)["done"], 3) << *summary;
  for (const auto &e : pushed) {
    EXPECT_NE(e["type"], "message.new") << "a history message was pushed on its own: " << e;
    EXPECT_NE(e["type"], "case.created") << "the history opened a case: " << e;
  }

  auto stored = [&](const std::string &external_id) -> Json {
    const Json answer = host_->admin().get(path("/messages")).json();
    Json found;
    int copies = 0;
    for (const auto &m : answer["items"]) {
      if (m["external_id"] == external_id) {
        found = m;
        ++copies;
      }
    }
    EXPECT_LE(copies, 1) << external_id << " stored " << copies << " times";
    return found;
  };
  const Json a1 = stored("HIST-A1");
  const Json a2 = stored("HIST-A2");
  const Json b1 = stored("HIST-B1");
  ASSERT_FALSE(a1.is_null() || a2.is_null() || b1.is_null()) << "a history message was not stored";
  EXPECT_EQ(a1["text"], "pedido de anteontem");
  EXPECT_EQ(a1["direction"], "inbound");
  EXPECT_EQ(a1["sent_at"], past * 1000) << a1;
  EXPECT_EQ(a2["direction"], "outbound") << a2;
  EXPECT_EQ(b1["text"], "conversa antiga");
  for (const auto &m : {a1, a2, b1}) {
    EXPECT_TRUE(m["details"].value("history", false)) << m;
    EXPECT_TRUE(m["case"].is_null()) << "a history message opened a case: " << m;
  }
  EXPECT_TRUE(host_->admin().get("/api/v1/cases").json()["items"].empty());

  // The contact writes now: a case opens. A later chunk repeats a message already imported and
  // brings an older one, which joins that case.
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "ainda preciso de ajuda"}});
  auto live = wait_message("ainda preciso de ajuda", 45s);
  ASSERT_TRUE(live);
  ASSERT_FALSE((*live)["case"].is_null()) << *live;
  server_->history({{"to", kAttendantPhone},
                    {"sync_type", "RECENT"},
                    {"chats",
                     {{{"with", kContactPhone},
                       {"messages",
                        {{{"id", "HIST-A1"}, {"text", "pedido de anteontem"}, {"timestamp", past}},
                         {{"id", "HIST-A0"}, {"text", "o primeiro contato"}, {"timestamp", past - 60}}}}}}}});
  auto [second, _] = events_until_backlog_summary();
  ASSERT_TRUE(second) << "no summary of the second history chunk";
  const Json a0 = stored("HIST-A0");
  ASSERT_FALSE(a0.is_null()) << "the second chunk's new message was not stored";
  ASSERT_FALSE(a0["case"].is_null()) << a0;
  EXPECT_EQ(a0["case"]["id"], (*live)["case"]["id"]) << a0;
  EXPECT_FALSE(stored("HIST-A1").is_null());
}

// A new customer writes while the host is away, and the phone's history (sent once the device is
// back) holds that message too: it is a new message, which opens a case, not history. Baileys
// holds both back until its app-state queries are answered, and those wait behind the message's
// receipt: the message still arrives well within Baileys' own 30 s hold.
TEST_F(WhatsAppPlugin, AMessageQueuedWhileAwayThatIsAlsoInTheHistoryIsANewMessage) {
  constexpr const char *kNewCustomer = "5511944440005";
  start();
  pair();
  events_.reset();
  host_->stop();
  ASSERT_TRUE(eventually([&] { return !server_->device_connected(kAttendantPhone); }, 10s));
  server_->send({{"from", kNewCustomer}, {"to", kAttendantPhone}, {"text", "cliente novo"},
                 {"id", "K-OFF"}});
  server_->history({{"to", kAttendantPhone},
                    {"chats",
                     {{{"with", kNewCustomer},
                       {"messages",
                        {{{"id", "K-OFF"}, {"text", "cliente novo"}},
                         {{"id", "K-OLD"}, {"text", "bem antiga"}}}}}}}});
  host_->start();

  auto find = [&](const std::string &external_id) -> Json {
    const Json answer = host_->admin().get(path("/messages")).json();
    for (const auto &m : answer["items"]) {
      if (m["external_id"] == external_id) return m;
    }
    return nullptr;
  };
  ASSERT_TRUE(eventually([&] { return !find("K-OFF").is_null() && !find("K-OLD").is_null(); }, 20s))
      << "the queued message and the history were not stored within 20 s";
  const Json live = find("K-OFF");
  EXPECT_FALSE(live["details"].value("history", false)) << live;
  EXPECT_FALSE(live["automatic"].get<bool>()) << live;
  ASSERT_FALSE(live["case"].is_null()) << "the new customer's message opened no case: " << live;
  const Json old = find("K-OLD");
  EXPECT_TRUE(old["details"].value("history", false)) << old;
  EXPECT_EQ(copies_of("cliente novo"), 1);
}

TEST_F(WhatsAppPlugin, LidSenderWithPhoneIsLinkedByPhone) {
  start();
  pair();
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "via lid"},
                 {"lid", "123456789012345"}});
  auto message = wait_message("via lid");
  ASSERT_TRUE(message);
  EXPECT_EQ((*message)["from"], "+" + std::string(kContactPhone));
  EXPECT_EQ((*message)["details"]["lid"], "123456789012345@lid");
}

TEST_F(WhatsAppPlugin, LidSenderWithoutPhoneStillArrives) {
  start();
  pair();
  server_->send({{"from", "5511977776666"}, {"to", kAttendantPhone}, {"text", "sem telefone"},
                 {"lid", "998877665544332"}, {"hide_phone", true}});
  auto message = wait_message("sem telefone");
  ASSERT_TRUE(message);
  EXPECT_EQ((*message)["from"], "998877665544332@lid");
}

TEST_F(WhatsAppPlugin, BrazilianNumberReachesTheIdTheServerResolves) {
  start();
  pair();
  // The contact's WhatsApp ID is the old 12-digit form; the CRM has the 13-digit number.
  server_->call("POST", "/contact", {{"phone", "551187654321"}});
  auto sent = host_->admin().post(path("/messages"), {{"to", "+5511987654321"}, {"text", "nono dígito"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  EXPECT_TRUE(eventually([&] {
    for (const auto &m : server_->received()) {
      if (m["text"] == "nono dígito") return m["to"] == "551187654321";
    }
    return false;
  }, 20s));
}

TEST_F(WhatsAppPlugin, SentMessageIsStoredOnceDespiteItsEcho) {
  start();
  pair();
  server_->call("POST", "/contact", {{"phone", kContactPhone}});
  // The server sends every message of ours back to us as a device-sent copy with its id.
  server_->call("POST", "/echo-sends", {{"on", true}});
  auto sent = host_->admin().post(path("/messages"),
                                  {{"to", "+" + std::string(kContactPhone)}, {"text", "uma vez"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  ASSERT_TRUE(wait_event("message.delivery"));
  // A message typed on the phone comes the same way; once it is stored, the echo had its chance.
  const std::string typed = server_->send({{"from", kContactPhone}, {"to", kAttendantPhone},
                                           {"text", "digitado no celular"}, {"from_phone", true}})["id"];
  auto on_phone = wait_external(typed);
  ASSERT_TRUE(on_phone) << "a message typed on the phone did not arrive";
  EXPECT_EQ((*on_phone)["direction"], "outbound");
  EXPECT_EQ(copies_of("uma vez"), 1);
  EXPECT_EQ(copies_of("digitado no celular"), 1);
}

TEST_F(WhatsAppPlugin, DisconnectFromTheScreenLogsOutAndWipesTheSession) {
  start();
  pair();
  auto done = host_->admin().post(path("/disconnect"));
  ASSERT_EQ(done.status, 200) << done.body;
  // The device left the phone's linked devices.
  ASSERT_TRUE(eventually([&] {
    for (const auto &d : server_->devices()) {
      if (d["phone"] == kAttendantPhone && d["logged_out"].get<bool>()) return true;
    }
    return false;
  }, 20s));
  // Connecting again starts a new pairing: nothing was kept.
  auto connect = host_->admin().post(path("/connect"), {{"values", Json::object()}});
  ASSERT_EQ(connect.status, 202);
  EXPECT_TRUE(wait_event("account.qr"));
}

TEST_F(WhatsAppPlugin, DisconnectWhileReconnectingStillLogsOut) {
  start();
  pair();
  server_->call("POST", "/refuse", {{"on", true}});
  ASSERT_EQ(server_->kick(kAttendantPhone, 0), 1);
  ASSERT_TRUE(wait_state("connecting"));
  // The server is back but slow to answer: the disconnect finds the session between connections
  // or in the middle of its handshake.
  server_->call("POST", "/handshake-delay", {{"ms", 1500}});
  server_->call("POST", "/refuse", {{"on", false}});
  auto done = host_->admin().post(path("/disconnect"));
  ASSERT_EQ(done.status, 200) << done.body;
  bool logged_out = false;
  for (const auto &d : server_->devices()) {
    if (d["phone"] == kAttendantPhone && d["logged_out"].get<bool>()) logged_out = true;
  }
  EXPECT_TRUE(logged_out) << server_->devices();
  const Json after = host_->admin().get(path()).json();
  EXPECT_EQ(after["state"], "disconnected") << after;
  EXPECT_EQ(after["reason_code"], "logged_out_here") << after;
}

TEST_F(WhatsAppPlugin, DisconnectWhileWhatsAppIsOutOfReachSaysTheDeviceMayStayListed) {
  start();
  pair();
  server_->call("POST", "/refuse", {{"on", true}});
  ASSERT_EQ(server_->kick(kAttendantPhone, 0), 1);
  ASSERT_TRUE(wait_state("connecting"));
  auto done = host_->admin().post(path("/disconnect"));
  ASSERT_EQ(done.status, 200) << done.body;
  const Json after = host_->admin().get(path()).json();
  EXPECT_EQ(after["state"], "disconnected") << after;
  EXPECT_EQ(after["reason_code"], "logout_unconfirmed") << after;
  EXPECT_NE(after["detail"].get<std::string>().find("may still be listed"), std::string::npos)
      << after;
  for (const auto &d : server_->devices()) {
    if (d["phone"] == kAttendantPhone) EXPECT_FALSE(d["logged_out"].get<bool>()) << d;
  }
}

// Asking for a pairing code is not being paired: until the phone enters the code, the QR can
// be refreshed, its expiry says so, and a disconnect has no device to log out.
TEST_F(WhatsAppPlugin, APairingCodeNotYetEnteredIsNoPairedSession) {
  start(/*refs=*/2, /*qr_timeout_ms=*/1500);
  auto connect = host_->admin().post(path("/connect"), {{"values", {{"phone", "+5511900000001"}}}});
  ASSERT_EQ(connect.status, 202) << connect.body;
  ASSERT_TRUE(wait_event("account.pairing_code"));
  auto refreshed = host_->admin().post(path("/qr/refresh"));
  EXPECT_EQ(refreshed.status, 202) << refreshed.body;
  ASSERT_TRUE(wait_event("account.qr_expired", nullptr, 30s)) << "the pairing never expired";
  auto state = wait_state("disconnected", 10s);
  ASSERT_TRUE(state) << host_->admin().get(path()).body;
  EXPECT_EQ((*state)["reason_code"], "qr_expired") << *state;
  auto done = host_->admin().post(path("/disconnect"));
  ASSERT_EQ(done.status, 200) << done.body;
  const Json after = host_->admin().get(path()).json();
  EXPECT_EQ(after["state"], "disconnected") << after;
  EXPECT_NE(after.value("reason_code", ""), "logout_unconfirmed") << after;
}

TEST_F(WhatsAppPlugin, PairingByPhoneNumberOffersACode) {
  start();
  auto connect = host_->admin().post(path("/connect"), {{"values", {{"phone", "+55 11 90000-0001"}}}});
  ASSERT_EQ(connect.status, 202) << connect.body;
  auto code = wait_event("account.pairing_code");
  ASSERT_TRUE(code);
  const std::string text = (*code)["code"];
  ASSERT_EQ(text.size(), 9u) << text;
  EXPECT_EQ(text[4], '-');
  EXPECT_GT((*code)["expires_at"].get<int64_t>(), 0);
}

// Every media kind the contact can send arrives with its bytes in the attachment store, fetched
// from the test server's HTTPS media host and decrypted with the message's media key.
TEST_F(WhatsAppPlugin, MediaOfEveryKindIsDownloadedIntoTheAttachmentStore) {
  start();
  pair();
  struct Kind {
    const char *kind;
    const char *mime;
    const char *shown;
  };
  unsigned seed = 1;
  for (const Kind &k : {Kind{"image", "image/jpeg", "image"}, Kind{"voice_note", "audio/ogg; codecs=opus", "voice_note"},
                        Kind{"audio", "audio/mpeg", "audio"}, Kind{"video", "video/mp4", "video"},
                        Kind{"document", "application/pdf", "document"}}) {
    SCOPED_TRACE(k.kind);
    const std::string bytes = random_bytes(3000 + seed * 777, seed);
    ++seed;
    const std::string id = server_->send({{"from", kContactPhone}, {"to", kAttendantPhone},
        {"text", std::string("legenda ") + k.kind},
        {"media", {{"kind", k.kind}, {"data", base64(bytes)}, {"mime", k.mime}, {"file_name", "contrato.pdf"}}}})["id"];
    auto message = wait_external(id);
    ASSERT_TRUE(message) << "the media message did not reach the host";
    EXPECT_EQ((*message)["details"]["media"], k.shown);
    EXPECT_FALSE((*message)["details"].contains("media_error")) << (*message)["details"];
    ASSERT_EQ((*message)["attachments"].size(), 1u) << *message;
    const Json &attachment = (*message)["attachments"][0];
    EXPECT_EQ(attachment["mime"], k.mime);
    EXPECT_TRUE(stored_bytes(attachment["id"]) == bytes) << "the stored bytes differ";
    if (std::string(k.kind) == "document") EXPECT_EQ(attachment["name"], "contrato.pdf");
  }
}

// A stored attachment sent to a contact is uploaded encrypted to the media host; the test server
// decrypts it with the key in the message and gets the same bytes.
TEST_F(WhatsAppPlugin, SentMediaReachesTheContactWithTheSameBytes) {
  start();
  pair();
  const std::string bytes = random_bytes(5000, 42);
  const std::string id = server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "segue"},
      {"media", {{"kind", "document"}, {"data", base64(bytes)}, {"mime", "application/pdf"}, {"file_name", "a.pdf"}}}})["id"];
  auto received = wait_external(id);
  ASSERT_TRUE(received);
  ASSERT_EQ((*received)["attachments"].size(), 1u);
  const std::string attachment = (*received)["attachments"][0]["id"];

  auto sent = host_->admin().post(path("/messages"),
      {{"to", "+" + std::string(kContactPhone)}, {"text", "de volta"},
       {"attachments", {{{"id", attachment}, {"name", "b.pdf"}, {"mime", "application/pdf"}}}}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  Json found;
  ASSERT_TRUE(eventually([&] {
    for (const auto &m : server_->received()) {
      if (m["media"].is_object()) { found = m; return true; }
    }
    return false;
  }, 20s)) << "no media reached the contact";
  EXPECT_EQ(found["media"]["kind"], "document");
  EXPECT_EQ(found["media"].value("error", ""), "");
  EXPECT_EQ(found["media"]["data"], base64(bytes));
  EXPECT_EQ(found["media"]["file_name"], "b.pdf");
}

TEST_F(WhatsAppPlugin, LocationContactCardAndQuotedReplyArrive) {
  start();
  pair();
  const std::string located = server_->send({{"from", kContactPhone}, {"to", kAttendantPhone},
      {"location", {{"latitude", -23.5505}, {"longitude", -46.6333}, {"name", "Loja Centro"}}}})["id"];
  auto location = wait_external(located);
  ASSERT_TRUE(location);
  EXPECT_DOUBLE_EQ((*location)["details"]["location"]["latitude"].get<double>(), -23.5505);
  EXPECT_DOUBLE_EQ((*location)["details"]["location"]["longitude"].get<double>(), -46.6333);
  EXPECT_EQ((*location)["details"]["location"]["name"], "Loja Centro");

  const std::string vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:João Silva\nTEL;type=CELL:+5511977770000\nEND:VCARD";
  const std::string carded = server_->send({{"from", kContactPhone}, {"to", kAttendantPhone},
      {"contact_card", {{"name", "João Silva"}, {"vcard", vcard}}}})["id"];
  auto card = wait_external(carded);
  ASSERT_TRUE(card);
  EXPECT_EQ((*card)["details"]["contact"]["name"], "João Silva");
  EXPECT_EQ((*card)["details"]["contact"]["vcard"], vcard);

  const std::string replied = server_->send({{"from", kContactPhone}, {"to", kAttendantPhone},
      {"text", "sim, esse mesmo"}, {"quoted", {{"id", located}, {"text", "onde fica?"}}}})["id"];
  auto reply = wait_external(replied);
  ASSERT_TRUE(reply);
  EXPECT_EQ((*reply)["text"], "sim, esse mesmo");
  EXPECT_EQ((*reply)["details"]["quoted"]["external_id"], located);
  EXPECT_EQ((*reply)["details"]["quoted"]["text"], "onde fica?");
}

// An answer to a message the client names is a quote of it on WhatsApp; a plain send is not.
TEST_F(WhatsAppPlugin, ReplyToANamedMessageIsSentAsAQuote) {
  start();
  pair();
  const std::string asked = server_->send({{"from", kContactPhone}, {"to", kAttendantPhone},
                                           {"text", "qual o prazo?"}})["id"];
  auto question = wait_external(asked);
  ASSERT_TRUE(question);
  auto answer = host_->admin().post(path("/messages"),
      {{"to", "+" + std::string(kContactPhone)}, {"text", "dois dias"},
       {"reply_to_message_id", (*question)["id"]}});
  ASSERT_EQ(answer.status, 201) << answer.body;
  auto plain = host_->admin().post(path("/messages"),
      {{"to", "+" + std::string(kContactPhone)}, {"text", "mais alguma coisa?"}});
  ASSERT_EQ(plain.status, 201) << plain.body;
  Json quoted, unquoted;
  ASSERT_TRUE(eventually([&] {
    for (const auto &m : server_->received()) {
      if (m["text"] == "dois dias") quoted = m;
      if (m["text"] == "mais alguma coisa?") unquoted = m;
    }
    return !quoted.is_null() && !unquoted.is_null();
  }, 20s)) << "the answers did not reach the contact";
  EXPECT_EQ(quoted["quoted_id"], asked);
  EXPECT_TRUE(unquoted["quoted_id"].is_null()) << unquoted;
}

TEST_F(WhatsAppPlugin, GroupMessagesAreStoredMarkedAndNotLinked) {
  start();
  pair();
  // The same contact writes 1:1 first (which opens a case), then in a group.
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "no privado"}});
  auto direct = wait_message("no privado");
  ASSERT_TRUE(direct);
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "no grupo"},
                 {"group", "120363000000000001"}});
  auto group = wait_message("no grupo");
  ASSERT_TRUE(group);
  EXPECT_EQ((*group)["details"]["group"], "120363000000000001@g.us");
  ASSERT_TRUE(direct->contains("case") && group->contains("case"));
  EXPECT_FALSE((*direct)["case"].is_null()) << *direct;
  EXPECT_TRUE((*group)["case"].is_null()) << *group;
}

TEST_F(WhatsAppPlugin, GroupMessagesAreLinkedWhenConfigured) {
  server_ = std::make_unique<WhatsAppTestServer>(3);
  host_ = std::make_unique<TestHost>(whatsapp_plugin_yaml(*server_, 0, "      link_groups: true\n"));
  events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());
  account_ = TestHost::create_account(host_->admin(), "whatsapp", "attendant's WhatsApp");
  pair();
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "no grupo"},
                 {"group", "120363000000000001"}});
  auto group = wait_message("no grupo");
  ASSERT_TRUE(group);
  ASSERT_TRUE(group->contains("case"));
  EXPECT_FALSE((*group)["case"].is_null()) << *group;
}

// While the server stays out of reach, each retry waits twice as long as the one before, scaled
// by a random factor between 0.5 and 1 (so that sessions dropped together do not come back in
// step); the wait each retry chose reaches the host in the account's status.
TEST_F(WhatsAppPlugin, ReconnectsBackOffExponentiallyWhileTheServerIsOutOfReach) {
  start();
  pair();
  auto next_delay = [&]() -> std::optional<double> {
    auto event = wait_event("account.status", [&](const Json &e) {
      return e["state"] == "connecting" &&
             e.value("detail", "").find("retrying in ") != std::string::npos;
    });
    if (!event) return std::nullopt;
    const std::string detail = (*event)["detail"];
    return std::stod(detail.substr(detail.find("retrying in ") + 12));
  };

  server_->call("POST", "/refuse", {{"on", true}});
  ASSERT_EQ(server_->kick(kAttendantPhone, 0), 1);
  for (double base : {1.0, 2.0, 4.0}) {
    const auto delay = next_delay();
    ASSERT_TRUE(delay) << "no retry announced for a " << base << " s step";
    EXPECT_GE(*delay, base / 2 - 0.05);
    EXPECT_LE(*delay, base + 0.05);
  }
  EXPECT_GE(server_->info()["refused"].get<int>(), 2) << "the retries never reached the server";

  // Back in reach: the session returns without a scan, and its next loss starts over at ~1 s.
  server_->call("POST", "/refuse", {{"on", false}});
  ASSERT_TRUE(wait_state("connected", 60s));
  ASSERT_EQ(server_->kick(kAttendantPhone, 0), 1);
  const auto again = next_delay();
  ASSERT_TRUE(again);
  EXPECT_LE(*again, 1.05);
}

TEST_F(WhatsAppPlugin, ReplayAfterReconnectIsStoredOnce) {
  start();
  pair();
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "repetida"},
                 {"id", "3EB0REPLAYED0001"}});
  ASSERT_TRUE(wait_message("repetida"));
  // The bridge is replaced (its memory of seen ids is gone) and WhatsApp delivers it again.
  const pid_t first = bridge_pid();
  ASSERT_GT(first, 0);
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return bridge_pid() > 0 && bridge_pid() != first; }, 20s));
  ASSERT_TRUE(wait_state("connected"));
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "repetida"},
                 {"id", "3EB0REPLAYED0001"}});
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "depois"}});
  ASSERT_TRUE(wait_message("depois"));
  EXPECT_EQ(copies_of("repetida"), 1);
}

TEST_F(WhatsAppPlugin, SendWithoutAcknowledgementBecomesFailed) {
  server_ = std::make_unique<WhatsAppTestServer>(3);
  host_ = std::make_unique<TestHost>(whatsapp_plugin_yaml(*server_, 0, "      send_timeout_ms: 1500\n"));
  events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());
  account_ = TestHost::create_account(host_->admin(), "whatsapp", "attendant's WhatsApp");
  pair();
  server_->call("POST", "/contact", {{"phone", kContactPhone}});
  server_->call("POST", "/acks-off", {{"off", true}});
  auto sent = host_->admin().post(path("/messages"),
                                  {{"to", "+" + std::string(kContactPhone)}, {"text", "sem ack"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  auto failed = wait_event("message.delivery", [](const Json &e) { return e["status"] == "failed"; }, 20s);
  ASSERT_TRUE(failed) << "no failed status after the send timeout";
  EXPECT_NE((*failed)["detail"].get<std::string>().find("acknowledgement"), std::string::npos);
}

// A client that retries with its client_id never sends twice: the retry of a send that failed
// (no acknowledgement) goes out under the same WhatsApp id, which the contact sees once; a retry
// of a send that went through sends nothing at all. The host keeps one message either way.
TEST_F(WhatsAppPlugin, RetryWithTheSameClientIdSendsOnce) {
  server_ = std::make_unique<WhatsAppTestServer>(3);
  host_ = std::make_unique<TestHost>(whatsapp_plugin_yaml(*server_, 0, "      send_timeout_ms: 1500\n"));
  events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());
  account_ = TestHost::create_account(host_->admin(), "whatsapp", "attendant's WhatsApp");
  pair();
  server_->call("POST", "/contact", {{"phone", kContactPhone}});
  const Json request = {{"to", "+" + std::string(kContactPhone)}, {"text", "tentativa"},
                        {"client_id", "pedido-7"}};
  auto received_of = [&](const std::string &text) {
    Json found = Json::array();
    for (const auto &m : server_->received()) {
      if (m["text"] == text) found.push_back(m);
    }
    return found;
  };

  server_->call("POST", "/acks-off", {{"off", true}});
  auto first = host_->admin().post(path("/messages"), request);
  ASSERT_EQ(first.status, 201) << first.body;
  const std::string external_id = first.json()["external_id"];
  EXPECT_EQ(first.json()["client_id"], "pedido-7");
  ASSERT_TRUE(wait_event("message.delivery", [&](const Json &e) {
    return e["external_id"] == external_id && e["status"] == "failed";
  }, 20s)) << "the unacknowledged send did not fail";

  server_->call("POST", "/acks-off", {{"off", false}});
  auto retry = host_->admin().post(path("/messages"), request);
  ASSERT_EQ(retry.status, 201) << retry.body;
  EXPECT_EQ(retry.json()["id"], first.json()["id"]);
  EXPECT_EQ(retry.json()["external_id"], external_id);
  ASSERT_TRUE(wait_event("message.delivery", [&](const Json &e) {
    return e["external_id"] == external_id && (e["status"] == "delivered" || e["status"] == "read");
  }, 20s)) << "the retried send was not delivered";
  Json got = received_of("tentativa");
  ASSERT_EQ(got.size(), 1u) << got;
  EXPECT_EQ(got[0]["id"], external_id);
  EXPECT_EQ(got[0]["repeats"], 1) << "the retry did not go out under the first id";

  // Delivered now: the same key once more sends nothing. A later message overtakes nothing on
  // the one socket, so once it arrived a send of the retry would have arrived too.
  auto third = host_->admin().post(path("/messages"), request);
  ASSERT_EQ(third.status, 201) << third.body;
  EXPECT_EQ(third.json()["id"], first.json()["id"]);
  EXPECT_NE(third.json()["delivery_status"], "failed");
  auto later = host_->admin().post(path("/messages"), {{"to", "+" + std::string(kContactPhone)},
                                                      {"text", "depois"}});
  ASSERT_EQ(later.status, 201) << later.body;
  ASSERT_TRUE(eventually([&] { return received_of("depois").size() == 1; }, 20s));
  got = received_of("tentativa");
  ASSERT_EQ(got.size(), 1u) << got;
  EXPECT_EQ(got[0]["repeats"], 1) << "a delivered message was sent again";
  EXPECT_EQ(copies_of("tentativa"), 1);

  // A key is a short printable text.
  auto empty = host_->admin().post(path("/messages"), {{"to", "+" + std::string(kContactPhone)},
                                                      {"text", "x"}, {"client_id", ""}});
  EXPECT_EQ(empty.status, 400) << empty.body;
}

TEST_F(WhatsAppPlugin, ConnectingDoesNotMarkTheAttendantOnline) {
  start();
  pair();
  server_->send({{"from", kContactPhone}, {"to", kAttendantPhone}, {"text", "oi"}});
  ASSERT_TRUE(wait_message("oi"));
  const Json devices = server_->devices();
  ASSERT_EQ(devices.size(), 1u) << devices;
  for (const auto &d : devices) {
    for (const auto &presence : d["presences"]) {
      EXPECT_NE(presence, "available") << "the device announced itself online";
    }
  }
}

// A bridge of the test's own that answers every request and, once a session starts, writes a
// delivery nested 200,000 levels deep, then a line longer than the configured cap, then a valid
// status: the host drops the two bad lines and still takes the good one.
TEST_F(WhatsAppPlugin, DeeplyNestedOrOverlongBridgeLinesAreDroppedAndTheHostGoesOn) {
  TempDir bridge_dir;
  bridge_dir.write("bridge.mjs", R"js(
import readline from 'node:readline';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (text) => {
  const m = JSON.parse(text);
  if (m.id === undefined) return;
  out({ id: m.id, ok: true, baileys: 'fake', protocol: 1 });
  if (m.op !== 'start') return;
  const deep = '['.repeat(200000) + ']'.repeat(200000);
  process.stdout.write('{"event":"delivery","account":"' + m.account +
                       '","external_id":"x","status":"read","detail":' + deep + '}\n');
  process.stdout.write('{"event":"log","text":"' + 'a'.repeat(3 * 1024 * 1024) + '"}\n');
  out({ event: 'status', account: m.account, state: 'connected', phone: '5511900000001' });
});
)js");
  server_ = std::make_unique<WhatsAppTestServer>(3);
  host_ = std::make_unique<TestHost>(whatsapp_plugin_yaml(
      *server_, 0,
      "      bridge_dir: \"" + bridge_dir.path().string() + "\"\n" +
          "      bridge_max_line_bytes: 1048576\n"));
  events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());
  account_ = TestHost::create_account(host_->admin(), "whatsapp", "attendant's WhatsApp");

  auto connect = host_->admin().post(path("/connect"), {{"values", Json::object()}});
  ASSERT_EQ(connect.status, 202) << connect.body;
  ASSERT_TRUE(wait_state("connected")) << "the valid line after the bad ones did not arrive";
  auto account = host_->admin().get(path());
  ASSERT_EQ(account.status, 200) << account.body;
}

// What the bridge process writes on its stderr (Node's own warnings, a crash report) reaches the
// host's log as the plugin's warning, cut to a line; a line that looks like a printed key is
// withheld, whatever printed it.
TEST_F(WhatsAppPlugin, TheBridgesStderrGoesThroughTheHostLogWithPrintedKeysWithheld) {
  TempDir bridge_dir;
  bridge_dir.write("bridge.mjs", R"js(
import readline from 'node:readline';
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (text) => {
  const m = JSON.parse(text);
  if (m.id === undefined) return;
  if (m.op === 'start') {
    process.stderr.write('(node:1) Warning: something the runtime says\n');
    process.stderr.write('{ privKey: <Buffer 68 bb 8b b6 2a 07 ff cf> }\n');
    process.stderr.write('x'.repeat(10000) + '\n');
  }
  process.stdout.write(JSON.stringify({ id: m.id, ok: true, baileys: 'fake', protocol: 1 }) + '\n');
  if (m.op === 'start') {
    process.stdout.write(JSON.stringify({ event: 'status', account: m.account, state: 'connected' }) + '\n');
  }
});
)js");
  server_ = std::make_unique<WhatsAppTestServer>(3);
  StderrCapture captured;
  host_ = std::make_unique<TestHost>(whatsapp_plugin_yaml(
      *server_, 0, "      bridge_dir: \"" + bridge_dir.path().string() + "\"\n"));
  events_ = std::make_unique<EventStream>(host_->port(), host_->admin_token());
  account_ = TestHost::create_account(host_->admin(), "whatsapp", "attendant's WhatsApp");
  auto connect = host_->admin().post(path("/connect"), {{"values", Json::object()}});
  ASSERT_EQ(connect.status, 202) << connect.body;
  ASSERT_TRUE(wait_state("connected"));
  host_.reset();  // the bridge ends, and its stderr with it
  const std::string text = captured.stop();
  EXPECT_NE(text.find("bridge stderr: (node:1) Warning: something the runtime says"),
            std::string::npos)
      << text.substr(0, 3000);
  EXPECT_NE(text.find("bridge stderr: (a line that looked like key material was withheld)"),
            std::string::npos)
      << text.substr(0, 3000);
  EXPECT_EQ(text.find("<Buffer"), std::string::npos) << text.substr(0, 3000);
  EXPECT_EQ(text.find(std::string(2001, 'x')), std::string::npos) << "a line was not cut";
}

// A bridge from another release answers the greeting with its own protocol version: the plugin
// refuses to work with it, and the host shows the channel refused with both versions named.
TEST_F(WhatsAppPlugin, ABridgeSpeakingAnotherProtocolIsRefusedAndNamesBothVersions) {
  TempDir bridge_dir;
  bridge_dir.write("bridge.mjs", R"js(
import readline from 'node:readline';
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (text) => {
  const m = JSON.parse(text);
  if (m.id !== undefined) {
    process.stdout.write(JSON.stringify({ id: m.id, ok: true, baileys: 'old', protocol: 2 }) + '\n');
  }
});
)js");
  server_ = std::make_unique<WhatsAppTestServer>(3);
  host_ = std::make_unique<TestHost>(whatsapp_plugin_yaml(
      *server_, 0, "      bridge_dir: \"" + bridge_dir.path().string() + "\"\n"));
  const Json plugins = host_->admin().get("/api/v1/plugins").json();
  Json whatsapp;
  for (const auto &p : plugins.value("items", Json::array())) {
    if (p.value("id", "") == "whatsapp") whatsapp = p;
  }
  ASSERT_FALSE(whatsapp.is_null()) << plugins;
  EXPECT_EQ(whatsapp["state"], "refused");
  EXPECT_NE(whatsapp.value("reason", "").find("speaks protocol 2, this plugin speaks 1"),
            std::string::npos)
      << whatsapp;
  auto created = host_->admin().post("/api/v1/accounts", {{"plugin", "whatsapp"}});
  EXPECT_GE(created.status, 400) << created.body;
}

}  // namespace
}  // namespace connector::test

// Accounts through the control API with the example plugin: connect, QR codes, messages both
// ways, the integration log, disconnection, and surviving a restart.
#include "ApiClient.hpp"
#include "TempDir.hpp"
#include "TestHost.hpp"

#include "log/Log.hpp"
#include "store/Database.hpp"

#include <gtest/gtest.h>

#include <cstdio>

namespace connector::test {
namespace {

// Runs a command and returns what it printed on stdout.
std::string run(const std::string &command) {
  std::string out;
  FILE *pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// Decodes a QR image with a real reader (zbar), as a phone would.
std::string decode_qr(const std::filesystem::path &png) {
  return run("zbarimg --quiet --raw --nodbus '" + png.string() + "' 2>/dev/null");
}

Json password_values(const std::string &password) {
  return {{"values", {{"method", "password"}, {"account", "maria@example.com"},
                      {"password", password}}}};
}

class AccountsTest : public ::testing::Test {
 protected:
  explicit AccountsTest(std::string plugins_yaml = {}) : host_(std::move(plugins_yaml)) {}

  void SetUp() override {
    maria_ = host_.add_attendant("Maria");
    client_ = std::make_unique<ApiClient>(host_.port(), maria_.token);
    account_ = TestHost::create_account(*client_, "loopback", "Maria's loopback");
  }

  std::string path(const std::string &rest = {}) const {
    return "/api/v1/accounts/" + account_ + rest;
  }
  Json account() const { return client_->get(path()).json(); }

  TestHost host_;
  TestHost::Person maria_;
  std::unique_ptr<ApiClient> client_;
  std::string account_;
};

TEST_F(AccountsTest, PluginsAreListedWithTheirSelfDescription) {
  auto plugins = client_->get("/api/v1/plugins").json()["items"];
  ASSERT_EQ(plugins.size(), 1u);
  EXPECT_EQ(plugins[0]["id"], "loopback");
  EXPECT_EQ(plugins[0]["state"], "loaded");
  EXPECT_EQ(plugins[0]["descriptor"]["name"]["pt-BR"], "Loopback (exemplo)");
  EXPECT_EQ(plugins[0]["descriptor"]["connect_fields"][2]["secret"], true);
  EXPECT_FALSE(plugins[0].contains("path"));  // server paths are for admins
  auto for_admin = host_.admin().get("/api/v1/plugins").json()["items"];
  EXPECT_NE(for_admin[0]["path"].get<std::string>().find("libconnector_loopback.so"),
            std::string::npos);
}

TEST_F(AccountsTest, ConnectingSendingAndReceivingShowUpLiveAndInTheLog) {
  EventStream events(host_.port(), maria_.token);

  auto connected = client_->post(path("/connect"), password_values("correct-horse"));
  ASSERT_EQ(connected.status, 202) << connected.body;
  EXPECT_EQ(connected.json()["state"], "connected");
  EXPECT_EQ(connected.json()["account"], "maria@example.com");
  // The integration log entry and the status change are both pushed.
  auto logged = events.wait_for_type("account.log");
  ASSERT_TRUE(logged);
  EXPECT_EQ((*logged)["entry"]["kind"], "connected");
  EXPECT_TRUE(events.wait_for([](const Json &e) {
    return e["type"] == "account.status" && e["state"] == "connected";
  }));

  auto sent = client_->post(path("/messages"), {{"to", "+5511987654321"}, {"text", "Olá!"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  EXPECT_EQ(sent.json()["direction"], "outbound");
  EXPECT_EQ(sent.json()["text"], "Olá!");

  // The loopback channel answers; the answer is stored and pushed.
  auto echo = events.wait_for([](const Json &e) {
    return e["type"] == "message.new" && e["message"]["direction"] == "inbound";
  });
  ASSERT_TRUE(echo);
  EXPECT_EQ((*echo)["message"]["text"], "echo: Olá!");
  EXPECT_EQ((*echo)["message"]["from"], "+5511987654321");
  EXPECT_EQ((*echo)["message"]["link_keys"]["phones"][0], "+5511987654321");

  auto listed = client_->get(path("/messages?limit=1")).json();
  ASSERT_EQ(listed["items"].size(), 1u);
  EXPECT_EQ(listed["items"][0]["text"], "echo: Olá!");  // newest first
  auto older = client_->get(path("/messages?limit=1&before=") +
                            std::to_string(listed["next_before"].get<int64_t>()))
                   .json();
  ASSERT_EQ(older["items"].size(), 1u);
  EXPECT_EQ(older["items"][0]["text"], "Olá!");

  ASSERT_EQ(client_->post(path("/disconnect")).status, 200);
  EXPECT_EQ(account()["state"], "disconnected");
  auto log = client_->get(path("/log")).json()["items"];
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0]["kind"], "disconnected");
  EXPECT_EQ(log[1]["kind"], "connected");
  EXPECT_EQ(log[1]["text"], "Connected as maria@example.com");
}

// A channel that reports a sent message delivered before its send returns: the update overtakes
// the message it is about, and is applied once the host stored that message.
class FastChannelAccountsTest : public AccountsTest {
 protected:
  FastChannelAccountsTest()
      : AccountsTest(loopback_plugin_yaml() + "      delivered_before_send_returns: true\n") {}
};

TEST_F(FastChannelAccountsTest, ADeliveryThatOvertakesItsMessageIsAppliedOnceItIsStored) {
  EventStream events(host_.port(), maria_.token);
  ASSERT_EQ(client_->post(path("/connect"), password_values("correct-horse")).status, 202);
  auto sent = client_->post(path("/messages"), {{"to", "+5511987654321"}, {"text", "Rápido"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  EXPECT_EQ(sent.json()["delivery_status"], "delivered") << sent.body;
  const int64_t id = sent.json()["id"];
  auto pushed = events.wait_for([&](const Json &e) {
    return e["type"] == "message.delivery" && e["message_id"] == id;
  });
  ASSERT_TRUE(pushed) << "the delivery was not pushed";
  EXPECT_EQ((*pushed)["status"], "delivered");
  EXPECT_EQ(client_->get("/api/v1/messages/" + std::to_string(id)).json()["delivery_status"],
            "delivered");
}

TEST_F(AccountsTest, AWrongPasswordShowsItsReasonInTheStatusAndTheLog) {
  auto refused = client_->post(path("/connect"), password_values("wrong"));
  EXPECT_EQ(refused.status, 422);
  EXPECT_EQ(refused.error_code(), "auth");
  EXPECT_EQ(refused.json()["error"]["message"], "wrong account name or password");
  EXPECT_EQ(account()["state"], "error");
  EXPECT_EQ(account()["detail"], "wrong account name or password");
  auto log = client_->get(path("/log")).json()["items"];
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log[0]["kind"], "error");
  EXPECT_EQ(log[0]["text"], "wrong account name or password");
}

TEST_F(AccountsTest, ConnectFormValuesAreCheckedAgainstThePluginFields) {
  auto unknown = client_->post(path("/connect"), {{"values", {{"account", "a"}, {"pin", "1"}}}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.json()["error"]["message"],
            "unknown connect field \"pin\"; valid: method, account, password");
  auto missing = client_->post(path("/connect"), {{"values", {{"password", "x"}}}});
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.error_code(), "missing_field");
  auto choice = client_->post(path("/connect"), {{"values", {{"account", "a"},
                                                             {"method", "carrier-pigeon"}}}});
  EXPECT_EQ(choice.status, 400);
  EXPECT_EQ(choice.error_code(), "invalid_choice");
  EXPECT_EQ(choice.json()["error"]["message"],
            "\"carrier-pigeon\" is not a valid choice for \"method\"");
  EXPECT_EQ(account()["state"], "disconnected");
}

TEST_F(AccountsTest, TheAccountSurvivesARestartWithoutANewLogin) {
  ASSERT_EQ(client_->post(path("/connect"), password_values("s3cret-pass")).status, 202);
  host_.restart();
  client_ = std::make_unique<ApiClient>(host_.port(), maria_.token);

  ASSERT_TRUE(eventually([&] { return account()["state"] == "connected"; }));
  EXPECT_EQ(account()["account"], "maria@example.com");
  EXPECT_EQ(client_->post(path("/messages"), {{"to", "a@b.c"}, {"text", "after"}}).status, 201);

  // A disconnected account stays disconnected across a restart.
  ASSERT_EQ(client_->post(path("/disconnect")).status, 200);
  host_.restart();
  client_ = std::make_unique<ApiClient>(host_.port(), maria_.token);
  EXPECT_EQ(account()["state"], "disconnected");
  EXPECT_EQ(account()["wanted_connected"], false);
}

// The reason code is stored with the state and detail: an account in error that the host does not
// resume after a restart (nobody wants it connected) still shows the reason the plugin gave.
TEST_F(AccountsTest, TheReasonCodeOfAnErrorSurvivesARestart) {
  ASSERT_EQ(client_->post(path("/connect"), password_values("wrong")).status, 422);
  EXPECT_EQ(account()["reason_code"], "auth_failed");
  host_.stop();
  {
    auto store = store::Database::open(host_.data_dir() / "connector-host.db");
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->run("UPDATE accounts SET wanted_connected = 0 WHERE id = ?",
                              {account_}));
  }
  host_.start();
  client_ = std::make_unique<ApiClient>(host_.port(), maria_.token);
  const Json after = account();
  EXPECT_EQ(after["state"], "error");
  EXPECT_EQ(after["detail"], "wrong account name or password");
  EXPECT_EQ(after["reason_code"], "auth_failed");

  // A later status without a code clears it, in the store too.
  ASSERT_EQ(client_->post(path("/connect"), password_values("right-pass")).status, 202);
  EXPECT_EQ(account()["reason_code"], "");
  host_.restart();
  client_ = std::make_unique<ApiClient>(host_.port(), maria_.token);
  EXPECT_EQ(account()["reason_code"], "");
}

TEST_F(AccountsTest, AResumeWithoutStoredCredentialsSaysSoWithItsCode) {
  ASSERT_EQ(client_->post(path("/connect"), password_values("right-pass")).status, 202);
  host_.stop();
  {
    auto store = store::Database::open(host_.data_dir() / "connector-host.db");
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->run("DELETE FROM account_values WHERE account_id = ? AND key = ?",
                              {account_, std::string("password")}));
  }
  host_.start();
  client_ = std::make_unique<ApiClient>(host_.port(), maria_.token);
  ASSERT_TRUE(eventually([&] { return account()["state"] == "error"; }));
  EXPECT_EQ(account()["reason_code"], "credentials_missing");
}

TEST_F(AccountsTest, SecretsNeverReachTheDatabaseBytesTheLogsOrTheApi) {
  const std::string password = "pa55word-that-must-not-leak";
  // The most talkative log there is, into a file the scan below reads.
  const auto log_file = host_.data_dir() / "host.log";
  log::init("trace", log_file.string());
  ASSERT_EQ(client_->post(path("/connect"), password_values("wrong")).status, 422);
  ASSERT_EQ(client_->post(path("/connect"), password_values(password)).status, 202);
  ASSERT_EQ(client_->post(path("/messages"), {{"to", "+5511987654321"}, {"text", "Olá"}})
                .status,
            201);
  std::string answers;
  for (const char *route : {"", "/log", "/messages"}) answers += client_->get(path(route)).body;
  answers += client_->get("/api/v1/accounts").body;
  EXPECT_EQ(answers.find(password), std::string::npos);

  host_.stop();
  std::string bytes;
  for (const auto &entry : std::filesystem::recursive_directory_iterator(host_.data_dir())) {
    if (entry.is_regular_file()) bytes += read_file(entry.path());
  }
  log::init("warn");
  const std::string log_text = read_file(log_file);
  EXPECT_NE(log_text.find("state connected"), std::string::npos);  // the log was written
  EXPECT_EQ(log_text.find(password), std::string::npos) << log_text;
  EXPECT_EQ(bytes.find(password), std::string::npos);
  EXPECT_NE(bytes.find("maria@example.com"), std::string::npos);  // the reading itself works
}

TEST_F(AccountsTest, RemovingAnAccountForgetsItsCredentials) {
  ASSERT_EQ(client_->post(path("/connect"), password_values("to-be-forgotten")).status, 202);
  ASSERT_EQ(client_->del(path()).status, 200);
  EXPECT_EQ(client_->get(path()).status, 404);
  EXPECT_EQ(client_->get("/api/v1/accounts").json()["items"].size(), 0u);
}

class QrAccountsTest : public AccountsTest {
 protected:
  // Long enough to fetch and decode the images on a loaded machine, short enough to wait for.
  QrAccountsTest() : AccountsTest(loopback_plugin_yaml(/*qr_ttl_ms=*/5000)) {}
};

TEST_F(QrAccountsTest, TheQrImageDecodesToThePayloadExpiresAndRefreshes) {
  EventStream events(host_.port(), maria_.token);
  auto started = client_->post(path("/connect"), {{"values", {{"method", "qr"},
                                                              {"account", "+5511912345678"}}}});
  ASSERT_EQ(started.status, 202) << started.body;
  ASSERT_TRUE(events.wait_for_type("account.qr"));
  EXPECT_EQ(account()["state"], "awaiting_qr");
  EXPECT_EQ(account()["qr"]["png"], path("/qr.png"));

  const std::string payload = client_->get(path("/qr")).json()["payload"];
  ASSERT_FALSE(payload.empty());
  auto png = client_->get(path("/qr.png"));
  ASSERT_EQ(png.status, 200);
  EXPECT_EQ(png.headers["content-type"], "image/png");
  TempDir scratch;
  EXPECT_EQ(decode_qr(scratch.write("qr.png", png.body)), payload);

  auto svg = client_->get(path("/qr.svg"));
  ASSERT_EQ(svg.status, 200);
  EXPECT_EQ(svg.headers["content-type"], "image/svg+xml");
  const auto svg_file = scratch.write("qr.svg", svg.body);
  run("rsvg-convert -w 400 -b white -o '" + (scratch / "svg.png").string() + "' '" +
      svg_file.string() + "'");
  EXPECT_EQ(decode_qr(scratch / "svg.png"), payload);

  // The QR expires: the status says so and the image is gone, until it is refreshed.
  ASSERT_TRUE(events.wait_for_type("account.qr_expired", std::chrono::seconds(30)));
  EXPECT_EQ(account()["state"], "disconnected");
  EXPECT_EQ(account()["detail"], "the QR code expired");
  EXPECT_EQ(client_->get(path("/qr.png")).status, 404);
  EXPECT_EQ(client_->get(path("/log")).json()["items"][0]["kind"], "qr_expired");

  ASSERT_EQ(client_->post(path("/qr/refresh")).status, 202);
  ASSERT_TRUE(events.wait_for_type("account.qr"));
  const std::string refreshed = client_->get(path("/qr")).json()["payload"];
  EXPECT_NE(refreshed, payload);
  EXPECT_EQ(decode_qr(scratch.write("qr2.png", client_->get(path("/qr.png")).body)), refreshed);
}

// A plugin that fails to load: admins see where its library sits on the server, attendants see
// the reason without that place (the file is named by its name alone).
class RefusedPluginTest : public AccountsTest {
 protected:
  RefusedPluginTest()
      : AccountsTest(loopback_plugin_yaml() +
                     "  missing:\n"
                     "    library: " CONNECTOR_PLUGIN_DIR "/libconnector_missing.so\n") {}

  static Json refused(const Json &plugins) {
    for (const auto &p : plugins["items"]) {
      if (p["id"] == "missing") return p;
    }
    return {};
  }
};

TEST_F(RefusedPluginTest, TheLibraryPathIsShownToAdminsOnly) {
  const std::string dir = CONNECTOR_PLUGIN_DIR;
  const Json for_admin = refused(host_.admin().get("/api/v1/plugins").json());
  ASSERT_EQ(for_admin["state"], "refused");
  EXPECT_NE(for_admin["reason"].get<std::string>().find(dir + "/libconnector_missing.so"),
            std::string::npos)
      << for_admin["reason"];
  EXPECT_FALSE(for_admin.contains("attendant_reason"));

  const Json for_attendant = refused(client_->get("/api/v1/plugins").json());
  ASSERT_EQ(for_attendant["state"], "refused");
  const std::string reason = for_attendant["reason"];
  EXPECT_EQ(reason.find(dir), std::string::npos) << reason;
  EXPECT_NE(reason.find("libconnector_missing.so"), std::string::npos) << reason;
  EXPECT_FALSE(for_attendant.contains("path"));
  EXPECT_FALSE(for_attendant.contains("attendant_reason"));

  // Creating an account of it is refused with the same reason, without the place either.
  auto created = client_->post("/api/v1/accounts", {{"plugin", "missing"}, {"label", "x"}});
  EXPECT_EQ(created.error_code(), "unknown_plugin");
  const std::string message = created.json()["error"]["message"];
  EXPECT_EQ(message.find(dir), std::string::npos) << message;
  EXPECT_NE(message.find("libconnector_missing.so"), std::string::npos) << message;
}

class PairingAccountsTest : public AccountsTest {
 protected:
  PairingAccountsTest() : AccountsTest(loopback_plugin_yaml(60000, /*qr_pairs_after_ms=*/300)) {}
};

TEST_F(PairingAccountsTest, ScanningTheQrConnectsTheAccount) {
  EventStream events(host_.port(), maria_.token);
  ASSERT_EQ(client_->post(path("/connect"), {{"values", {{"method", "qr"},
                                                         {"account", "+5511912345678"}}}})
                .status,
            202);
  auto connected = events.wait_for([](const Json &e) {
    return e["type"] == "account.status" && e["state"] == "connected";
  });
  ASSERT_TRUE(connected);
  EXPECT_EQ((*connected)["account"], "+5511912345678");
  EXPECT_EQ(client_->get(path("/qr")).status, 404);
}

}  // namespace
}  // namespace connector::test

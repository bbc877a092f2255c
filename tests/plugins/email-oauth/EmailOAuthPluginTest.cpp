// The email-oauth plugin through the host's API: sign-in through the OAuth callback against our
// own authorisation server (fake-oauth-server.js), then real OAUTHBEARER/XOAUTH2 logins to
// Dovecot (oauth2 passdb, validating tokens by introspection) and Postfix (Dovecot SASL).
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "TestHost.hpp"
#include "mail/MailServerFixture.hpp"

namespace connector::test {
namespace {

using Fixture = MailServerFixture;
namespace fs = std::filesystem;

const char *kClientId = "connector-test-client";
const char *kClientSecret = "client-secret-from-a-file";

// The authorisation server, a Node process of its own.
class OAuthServer {
 public:
  explicit OAuthServer(const fs::path &tls_dir) {
    dir_ = fs::temp_directory_path() / ("oauth-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    const fs::path port_file = dir_ / "port";
    pid_ = fork();
    if (pid_ == 0) {
      const std::string script =
          std::string(CONNECTOR_SOURCE_DIR) + "/tests/plugins/email-oauth/fake-oauth-server.js";
      const std::string cert = (tls_dir / "server.pem").string();
      const std::string key = (tls_dir / "server.key").string();
      execlp("node", "node", script.c_str(), port_file.c_str(), Fixture::kAgent, kClientId,
             kClientSecret, cert.c_str(), key.c_str(), static_cast<char *>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 500 && !fs::exists(port_file); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::ifstream(port_file) >> port_;
    if (port_ == 0) throw std::runtime_error("the OAuth test server did not start");
    const fs::path smtps_file = dir_ / "port.smtps";
    for (int i = 0; i < 500 && !fs::exists(smtps_file); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::ifstream(smtps_file) >> smtps_port_;
  }
  // An SMTP server that refuses AUTH like a Microsoft tenant without SMTP AUTH (5.7.139).
  int smtps_port() const { return smtps_port_; }
  ~OAuthServer() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    fs::remove_all(dir_);
  }
  std::string url(const std::string &path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  const fs::path &dir() const { return dir_; }

 private:
  fs::path dir_;
  pid_t pid_ = 0;
  int port_ = 0;
  int smtps_port_ = 0;
};

Fixture *servers = nullptr;
OAuthServer *oauth = nullptr;

// Dovecot's oauth2 passdb against our server's introspection endpoint; the password passdb
// stays for the other users.
std::string dovecot_oauth_settings() {
  const fs::path ext = servers->dir() / "dovecot" / "oauth2.conf.ext";
  std::ofstream(ext) << "introspection_mode = post\n"
                     << "introspection_url = " << oauth->url("/introspect") << "\n"
                     << "force_introspection = yes\n"
                     << "username_attribute = username\n"
                     << "active_attribute = active\n"
                     << "active_value = true\n"
                     << "scope = https://mail.google.com/\n";
  return "auth_mechanisms = plain login xoauth2 oauthbearer\n"
         "passdb {\n"
         "  driver = oauth2\n"
         "  mechanisms = xoauth2 oauthbearer\n"
         "  args = " + ext.string() + "\n"
         "}\n";
}

class Environment : public ::testing::Environment {
 public:
  void SetUp() override {
    servers = new Fixture();
    oauth = new OAuthServer(servers->dir() / "tls");
    servers->restart_dovecot_with(dovecot_oauth_settings());
  }
  void TearDown() override {
    delete oauth;
    delete servers;
  }
};
const auto *const kEnvironment = ::testing::AddGlobalTestEnvironment(new Environment());

size_t collect(char *data, size_t size, size_t n, void *out) {
  static_cast<std::string *>(out)->append(data, size * n);
  return size * n;
}

struct Fetched {
  long status = 0;
  std::string body;
  std::string location;
};

// A plain HTTP request, redirects not followed (the test plays the browser).
Fetched fetch(const std::string &url, const std::string &post_json = {}) {
  Fetched out;
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_slist *headers = nullptr;
  if (!post_json.empty()) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_json.c_str());
  }
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
    char *location = nullptr;
    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location);
    if (location != nullptr) out.location = location;
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return out;
}

Json control(const Json &change = nullptr) {
  Fetched answer = change.is_null() ? fetch(oauth->url("/control"))
                                    : fetch(oauth->url("/control"), change.dump());
  return Json::parse(answer.body, nullptr, false);
}

std::string plugin_yaml(const fs::path &secret_file, std::string smtp = {}) {
  std::ofstream(secret_file) << kClientSecret << "\n";
  const std::string imap = "imap://127.0.0.1:" + std::to_string(servers->imap_starttls_port());
  if (smtp.empty()) smtp = "smtp://127.0.0.1:" + std::to_string(servers->submission_port());
  return "plugins:\n"
         "  email-oauth:\n"
         "    library: " CONNECTOR_PLUGIN_DIR "/libconnector_email_oauth.so\n"
         "    settings:\n"
         "      google_client_id: " + std::string(kClientId) + "\n" +
         "      google_client_secret_file: " + secret_file.string() + "\n" +
         "      google_authorize_url: " + oauth->url("/authorize") + "\n" +
         "      google_token_url: " + oauth->url("/token") + "\n" +
         "      google_revoke_url: " + oauth->url("/revoke") + "\n" +
         "      google_userinfo_url: " + oauth->url("/userinfo") + "\n" +
         "      google_imap: " + imap + "\n" +
         "      google_smtp: " + smtp + "\n" +
         "      ca_file: " + servers->ca_file() + "\n" +
         "      refresh_margin_s: 1\n"
         "      timeout_s: 10\n";
}

std::string unique(const std::string &prefix) {
  static std::mt19937_64 random(std::random_device{}());
  return prefix + " " + std::to_string(random() % 1000000000);
}

std::string simple_mail(const std::string &subject) {
  return "From: Customer <" + std::string(Fixture::kCustomer) + ">\r\nTo: " + Fixture::kAgent +
         "\r\nSubject: " + subject + "\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <" +
         std::to_string(std::random_device{}()) + "@customer.test>\r\n\r\nHello\r\n";
}

class EmailOAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    control({{"revoke_refresh_tokens", false}, {"wrong_scope", false}, {"expire_codes", false},
             {"delay_ms", 0}, {"access_ttl_s", 3600}});
    host_ = std::make_unique<TestHost>(plugin_yaml(oauth->dir() / "client-secret"));
    api_ = host_->admin();
    account_ = TestHost::create_account(api_, "email-oauth", "support mailbox");
  }

  Json account() const { return api_.get("/api/v1/accounts/" + account_).json(); }
  std::string state() const { return account().value("state", ""); }

  // POST /oauth/start; the authorization URL it answers.
  std::string start_sign_in() {
    HttpResult started =
        api_.post("/api/v1/accounts/" + account_ + "/oauth/start",
                  {{"values", {{"provider", "google"}}}});
    EXPECT_EQ(started.status, 200) << started.body;
    return started.json().value("authorization_url", "");
  }

  // The browser's part: the provider's page redirects to the host's callback. Returns the
  // callback target (path and query) on the host.
  std::string consent(const std::string &authorization_url) {
    Fetched page = fetch(authorization_url);
    EXPECT_EQ(page.status, 302) << page.body;
    const std::string prefix = "http://127.0.0.1:" + std::to_string(host_->port());
    EXPECT_EQ(page.location.rfind(prefix + "/api/v1/oauth/callback?", 0), 0u) << page.location;
    return page.location.substr(prefix.size());
  }

  // The browser asks for English, the language these tests read the page in.
  HttpResult callback(const std::string &target) {
    return host_->anonymous().request("GET", target, {}, {{"Accept-Language", "en"}});
  }

  void connect() {
    HttpResult page = callback(consent(start_sign_in()));
    ASSERT_EQ(page.status, 200) << page.body;
    ASSERT_TRUE(eventually([&] { return state() == "connected"; }, std::chrono::seconds(15)))
        << account().dump();
  }

  bool received(const std::string &subject) {
    return eventually(
        [&] {
          return api_.get("/api/v1/accounts/" + account_ + "/messages").body.find(subject) !=
                 std::string::npos;
        },
        std::chrono::seconds(15));
  }

  std::string log_text() const { return api_.get("/api/v1/accounts/" + account_ + "/log").body; }

  void kick_imap_sessions() const {
    run_command("doveadm -c " + (servers->dir() / "dovecot" / "dovecot.conf").string() +
                " kick " + Fixture::kAgent + " >/dev/null 2>&1 || true");
  }

  std::unique_ptr<TestHost> host_;
  ApiClient api_{0};
  std::string account_;
};

TEST_F(EmailOAuthTest, ConnectsThroughTheCallbackWithTheProvidersAddressAndReceivesMail) {
  const std::string url = start_sign_in();
  EXPECT_NE(url.find("code_challenge_method=S256"), std::string::npos);
  EXPECT_NE(url.find("access_type=offline"), std::string::npos);
  EXPECT_NE(url.find("prompt=consent"), std::string::npos);
  EXPECT_NE(url.find("https%3A%2F%2Fmail.google.com%2F"), std::string::npos);
  HttpResult page = callback(consent(url));
  EXPECT_EQ(page.status, 200) << page.body;
  EXPECT_NE(page.body.find("Signed in"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return state() == "connected"; }, std::chrono::seconds(15)))
      << account().dump();
  EXPECT_EQ(account().value("account", ""), Fixture::kAgent);  // the provider's, not typed in

  const std::string subject = unique("OAuth inbound");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subject));
  EXPECT_TRUE(received(subject));
  EXPECT_GT(control().value("introspections", 0), 0);  // Dovecot really asked our server
}

TEST_F(EmailOAuthTest, ReplayedStateIsRefusedAndLogged) {
  const std::string target = consent(start_sign_in());
  ASSERT_EQ(callback(target).status, 200);
  ASSERT_TRUE(eventually([&] { return state() == "connected"; }, std::chrono::seconds(15)));
  HttpResult again = callback(target);
  EXPECT_EQ(again.status, 400);
  EXPECT_NE(again.body.find("already used"), std::string::npos) << again.body;
  EXPECT_NE(log_text().find("arrived a second time"), std::string::npos);
  EXPECT_EQ(state(), "connected");
}

TEST_F(EmailOAuthTest, ForgedStateIsRefusedWithoutTouchingAnyAccount) {
  start_sign_in();
  const int exchanges_before = control().value("exchanges", -1);
  HttpResult page = callback("/api/v1/oauth/callback?code=stolen&state=forged-state-value");
  EXPECT_EQ(page.status, 400);
  EXPECT_NE(page.body.find("does not belong"), std::string::npos) << page.body;
  // No code was sent to the provider.
  EXPECT_EQ(control().value("exchanges", -1), exchanges_before);
  EXPECT_NE(state(), "connected");
}

TEST_F(EmailOAuthTest, PkceMismatchEndsTheAttemptWithAClearStatus) {
  std::string url = start_sign_in();
  // An attacker's challenge instead of ours: the provider binds the code to it.
  const size_t at = url.find("code_challenge=");
  ASSERT_NE(at, std::string::npos);
  const size_t end = url.find('&', at);
  url.replace(at, end - at, "code_challenge=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  HttpResult page = callback(consent(url));
  EXPECT_GE(page.status, 400);
  EXPECT_NE(page.body.find("PKCE verification failed"), std::string::npos) << page.body;
  EXPECT_EQ(state(), "error");
  EXPECT_NE(account().value("detail", "").find("PKCE"), std::string::npos);
  EXPECT_NE(log_text().find("PKCE verification failed"), std::string::npos);
}

TEST_F(EmailOAuthTest, ExpiredCodeEndsTheAttempt) {
  control({{"expire_codes", true}});
  HttpResult page = callback(consent(start_sign_in()));
  EXPECT_GE(page.status, 400);
  EXPECT_NE(page.body.find("authorization code expired"), std::string::npos) << page.body;
  EXPECT_EQ(state(), "error");
}

TEST_F(EmailOAuthTest, ATokenEndpointTooSlowToAnswerEndsTheAttempt) {
  control({{"delay_ms", 7000}});  // beyond the plugin's 5 s (timeout_s / 2) for OAuth calls
  HttpResult page = callback(consent(start_sign_in()));
  EXPECT_EQ(page.status, 502) << page.body;
  EXPECT_NE(page.body.find("could not be reached"), std::string::npos) << page.body;
  EXPECT_EQ(state(), "error");
}

TEST_F(EmailOAuthTest, ExpiredTokenDuringIdleIsRefreshedAndTheRotatedTokenKept) {
  control({{"access_ttl_s", 4}});
  connect();
  const int refreshes_before = control().value("refreshes", 0);
  // Past the token's life (minus the 1 s margin), the server drops the session: the engine
  // must log in again with a refreshed token (Dovecot refuses the expired one).
  std::this_thread::sleep_for(std::chrono::milliseconds(4200));
  kick_imap_sessions();
  ASSERT_TRUE(eventually([&] { return control().value("refreshes", 0) > refreshes_before; },
                         std::chrono::seconds(15)));
  ASSERT_TRUE(eventually([&] { return state() == "connected"; }, std::chrono::seconds(15)));
  const std::string subject = unique("after refresh");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subject));
  EXPECT_TRUE(received(subject));

  // Once more: the second refresh works only if the rotated refresh token was saved.
  std::this_thread::sleep_for(std::chrono::milliseconds(4200));
  const int refreshes_middle = control().value("refreshes", 0);
  kick_imap_sessions();
  ASSERT_TRUE(eventually([&] { return control().value("refreshes", 0) > refreshes_middle; },
                         std::chrono::seconds(15)));
  EXPECT_TRUE(eventually([&] { return state() == "connected"; }, std::chrono::seconds(15)))
      << account().dump();
}

TEST_F(EmailOAuthTest, RevokedRefreshTokenLeadsToReauthorisationNeeded) {
  control({{"access_ttl_s", 4}});
  connect();
  control({{"revoke_refresh_tokens", true}});
  std::this_thread::sleep_for(std::chrono::milliseconds(4200));
  kick_imap_sessions();
  ASSERT_TRUE(eventually([&] { return state() == "reauth_needed"; }, std::chrono::seconds(15)))
      << account().dump();
  EXPECT_NE(log_text().find("Token has been expired or revoked."), std::string::npos)
      << log_text();
}

TEST_F(EmailOAuthTest, SendsMailThroughSmtpWithOAuth) {
  connect();
  const std::string subject = unique("OAuth outbound");
  HttpResult sent = api_.post("/api/v1/accounts/" + account_ + "/messages",
                              {{"to", Fixture::kCustomer}, {"subject", subject}, {"text", "Hi"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  servers->wait_for_queue_empty();
  bool found = false;
  for (const auto &mail : servers->mailbox(Fixture::kCustomer)) {
    if (mail.find(subject) != std::string::npos) found = true;
  }
  EXPECT_TRUE(found);
}

// The host tells the shared mail engine which mail a reply on a case answers, so the customer's
// mail program threads it and the case id travels in the subject (the same for both e-mail
// plugins: the engine is shared).
TEST_F(EmailOAuthTest, AReplyOnACaseThroughTheHostIsThreadedAndCarriesTheCaseId) {
  connect();
  HttpResult opened = api_.post("/api/v1/cases", {{"title", "Pedido atrasado"},
                                                  {"addresses", {Fixture::kCustomer}}});
  ASSERT_EQ(opened.status, 201) << opened.body;
  const int64_t case_id = opened.json()["id"];
  const std::string subject = unique("Pedido atrasado");
  const std::string message_id = "reply-test-" + std::to_string(std::random_device{}()) + "@customer.test";
  servers->deliver(Fixture::kCustomer, Fixture::kAgent,
                   "From: Customer <" + std::string(Fixture::kCustomer) + ">\r\nTo: " +
                       Fixture::kAgent + "\r\nSubject: " + subject +
                       "\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <" + message_id +
                       ">\r\nReferences: <older@customer.test>\r\n"
                       "In-Reply-To: <older@customer.test>\r\n\r\nOnde está?\r\n");
  ASSERT_TRUE(received(subject));
  ASSERT_TRUE(eventually([&] {
    const Json answer = api_.get("/api/v1/accounts/" + account_ + "/messages").json();
    for (const auto &m : answer["items"]) {
      if (m["subject"] == subject) return m["case"].is_object() && m["case"]["id"] == case_id;
    }
    return false;
  }, std::chrono::seconds(10))) << "the customer's mail did not land on their case: "
                                 << api_.get("/api/v1/accounts/" + account_ + "/messages").body;

  const std::string reply_subject = "Re: " + subject;
  HttpResult sent = api_.post("/api/v1/accounts/" + account_ + "/messages",
                              {{"to", Fixture::kCustomer}, {"subject", reply_subject},
                               {"text", "Chega amanhã."}, {"case_id", case_id}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  servers->wait_for_queue_empty();
  std::string reply;
  ASSERT_TRUE(eventually([&] {
    for (const auto &mail : servers->mailbox(Fixture::kCustomer)) {
      if (mail.find(reply_subject) != std::string::npos) reply = mail;
    }
    return !reply.empty();
  }, std::chrono::seconds(15)));
  EXPECT_NE(reply.find("In-Reply-To: <" + message_id + ">"), std::string::npos) << reply;
  EXPECT_NE(reply.find("<older@customer.test> <" + message_id + ">"), std::string::npos) << reply;
  EXPECT_NE(reply.find("[#" + std::to_string(case_id) + "]"), std::string::npos) << reply;

  // A message of another account cannot be named as the one answered.
  HttpResult foreign = api_.post("/api/v1/accounts/" + account_ + "/messages",
                                 {{"to", Fixture::kCustomer}, {"text", "x"},
                                  {"reply_to_message_id", 999999}});
  EXPECT_EQ(foreign.status, 404) << foreign.body;
}

TEST_F(EmailOAuthTest, DisconnectRevokesAtTheProviderAndForgetsTheTokens) {
  connect();
  const int revocations_before = control().value("revocations", 0);
  HttpResult done = api_.post("/api/v1/accounts/" + account_ + "/disconnect");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_GT(control().value("revocations", 0), revocations_before);
  EXPECT_EQ(state(), "disconnected");
  // Nothing left to resume from: a reconnect without signing in again is refused.
  HttpResult again = api_.post("/api/v1/accounts/" + account_ + "/connect",
                               {{"values", {{"provider", "google"}}}});
  EXPECT_GE(again.status, 400) << again.body;
}

TEST_F(EmailOAuthTest, SmtpAuthDisabledByTheTenantIsSaidInAdminWords) {
  host_.reset();
  host_ = std::make_unique<TestHost>(plugin_yaml(
      oauth->dir() / "client-secret", "smtps://127.0.0.1:" + std::to_string(oauth->smtps_port())));
  api_ = host_->admin();
  account_ = TestHost::create_account(api_, "email-oauth", "tenant without SMTP AUTH");
  ASSERT_EQ(callback(consent(start_sign_in())).status, 200);
  ASSERT_TRUE(eventually([&] { return state() == "error"; }, std::chrono::seconds(15)))
      << account().dump();
  const std::string detail = account().value("detail", "");
  EXPECT_NE(detail.find("SMTP AUTH is turned off"), std::string::npos) << detail;
  EXPECT_NE(detail.find("5.7.139"), std::string::npos) << detail;
  EXPECT_NE(log_text().find("Authenticated SMTP"), std::string::npos);
}

TEST_F(EmailOAuthTest, TokensAreAbsentFromTheDatabaseFileAndTheLogs) {
  control({{"access_ttl_s", 4}});
  connect();
  const int refreshes_before = control().value("refreshes", 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(4200));
  kick_imap_sessions();  // a refresh, so rotated tokens are stored too
  ASSERT_TRUE(eventually([&] { return control().value("refreshes", 0) > refreshes_before; },
                         std::chrono::seconds(15)));
  ASSERT_TRUE(eventually([&] { return state() == "connected"; }, std::chrono::seconds(15)));
  const Json issued = control()["issued"];
  ASSERT_GE(issued.size(), 4u);  // two access and two refresh tokens at least
  std::string everything = log_text() + account().dump();
  for (const auto &entry : fs::recursive_directory_iterator(host_->data_dir())) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    everything += bytes.str();
  }
  for (const auto &token : issued) {
    EXPECT_EQ(everything.find(token.get<std::string>()), std::string::npos);
  }
  EXPECT_EQ(everything.find(kClientSecret), std::string::npos);
}

}  // namespace
}  // namespace connector::test

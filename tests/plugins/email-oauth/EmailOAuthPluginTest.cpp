// The email-oauth plugin through the host's API: sign-in through the OAuth callback against our
// own authorisation server (fake-oauth-server.js, playing Google or Microsoft), then real
// OAUTHBEARER/XOAUTH2 logins to Dovecot (oauth2 passdb, validating tokens by introspection) and
// Postfix (Dovecot SASL); for Microsoft tenants without SMTP AUTH, the same server's SMTP refusal
// (535 5.7.139) and its Graph sendMail, which hands the mail to Postfix.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
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

const char *kGoogleMailScope = "https://mail.google.com/";
const char *kMicrosoftImapScope = "https://outlook.office.com/IMAP.AccessAsUser.All";

// Dovecot's oauth2 passdb against our server's introspection endpoint; the password passdb
// stays for the other users. Dovecot wants every scope it is given in each token, so it plays
// one provider at a time: Gmail's scope with both OAuth mechanisms (the plugin then picks
// OAUTHBEARER), or Microsoft's IMAP scope with XOAUTH2 alone, as Outlook offers it (so IMAP and
// Postfix's SMTP AUTH, which asks Dovecot, log in with XOAUTH2).
std::string dovecot_oauth_settings(const std::string &scope = kGoogleMailScope,
                                   const std::string &mechanisms = "xoauth2 oauthbearer") {
  const fs::path ext = servers->dir() / "dovecot" / "oauth2.conf.ext";
  std::ofstream(ext) << "introspection_mode = post\n"
                     << "introspection_url = " << oauth->url("/introspect") << "\n"
                     << "force_introspection = yes\n"
                     << "username_attribute = username\n"
                     << "active_attribute = active\n"
                     << "active_value = true\n"
                     << "scope = " << scope << "\n";
  return "auth_mechanisms = plain login " + mechanisms + "\n"
         "passdb {\n"
         "  driver = oauth2\n"
         "  mechanisms = " + mechanisms + "\n"
         "  args = " + ext.string() + "\n"
         "}\n";
}

class Environment : public ::testing::Environment {
 public:
  void SetUp() override {
    servers = new Fixture();
    oauth = new OAuthServer(servers->dir() / "tls");
    servers->restart_dovecot_with(dovecot_oauth_settings());
    // Dovecot is restarted between Gmail and Microsoft tests: one SMTP session per smtpd
    // process, so no process keeps a connection to an auth server that is gone.
    const std::string etc = (servers->dir() / "postfix" / "etc").string();
    run_command("postconf -c " + etc + " -e max_use=1 && postfix -c " + etc + " reload 2>&1");
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

std::string plugin_yaml(const fs::path &secret_file, std::string smtp = {},
                        const std::string &more_settings = {}) {
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
         "      timeout_s: 10\n" +
         more_settings;
}

// The same server playing Microsoft: the tenant's endpoints under the authority, user info that
// does not answer (the address must come from the ID token), Graph on loopback.
std::string microsoft_settings(const fs::path &secret_file, const std::string &tenant,
                               const std::string &smtp, bool graph_send) {
  const std::string imap = "imap://127.0.0.1:" + std::to_string(servers->imap_starttls_port());
  return "      microsoft_client_id: " + std::string(kClientId) + "\n" +
         "      microsoft_client_secret_file: " + secret_file.string() + "\n" +
         "      microsoft_tenant: " + tenant + "\n" +
         "      microsoft_authority: " + oauth->url("") + "\n" +
         "      microsoft_userinfo_url: " + oauth->url("/no-userinfo-here") + "\n" +
         "      microsoft_imap: " + imap + "\n" +
         "      microsoft_smtp: " + smtp + "\n" +
         "      microsoft_graph_url: " + oauth->url("/graph") + "\n" +
         "      graph_send: " + (graph_send ? "true" : "false") + "\n";
}

const char *kGraphMailSend = "https://graph.microsoft.com/Mail.Send";
const char *kMicrosoftMailScopes =
    "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send "
    "offline_access openid email";

// The query of a URL, decoded.
std::map<std::string, std::string> query_of(const std::string &url) {
  std::map<std::string, std::string> out;
  const size_t q = url.find('?');
  if (q == std::string::npos) return out;
  auto unescape = [](const std::string &text) {
    int n = 0;
    char *d = curl_easy_unescape(nullptr, text.c_str(), static_cast<int>(text.size()), &n);
    std::string value(d, static_cast<size_t>(n));
    curl_free(d);
    return value;
  };
  std::stringstream parts(url.substr(q + 1));
  std::string part;
  while (std::getline(parts, part, '&')) {
    const size_t eq = part.find('=');
    out[unescape(part.substr(0, eq))] =
        eq == std::string::npos ? std::string() : unescape(part.substr(eq + 1));
  }
  return out;
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
             {"delay_ms", 0}, {"access_ttl_s", 3600}, {"withhold_scopes", Json::array()},
             {"graph_status", 0}, {"graph_relay_port", 0}, {"refresh_failure", nullptr},
             {"exchange_patch", nullptr}, {"exchange_raw", nullptr}, {"exchange_raw_times", 1},
             {"id_email", nullptr}, {"expires_in_raw", nullptr}});
    host_ = std::make_unique<TestHost>(plugin_yaml(oauth->dir() / "client-secret"));
    api_ = host_->admin();
    account_ = TestHost::create_account(api_, "email-oauth", "support mailbox");
  }

  // A host whose email-oauth plugin also knows Microsoft (tenant, SMTP server, graph_send).
  void use_microsoft(const std::string &tenant, const std::string &smtp, bool graph_send) {
    host_.reset();
    const fs::path secret = oauth->dir() / "client-secret";
    host_ = std::make_unique<TestHost>(
        plugin_yaml(secret, {}, microsoft_settings(secret, tenant, smtp, graph_send)));
    api_ = host_->admin();
    account_ = TestHost::create_account(api_, "email-oauth", "Microsoft 365 mailbox");
    servers->restart_dovecot_with(dovecot_oauth_settings(kMicrosoftImapScope, "xoauth2"));
    dovecot_plays_microsoft_ = true;
  }

  void TearDown() override {
    host_.reset();
    if (dovecot_plays_microsoft_) servers->restart_dovecot_with(dovecot_oauth_settings());
  }

  static std::string fake_smtp_without_auth() {
    return "smtps://127.0.0.1:" + std::to_string(oauth->smtps_port());
  }
  static std::string postfix_submission() {
    return "smtp://127.0.0.1:" + std::to_string(servers->submission_port());
  }

  HttpResult send(const Json &message) {
    return api_.post("/api/v1/accounts/" + account_ + "/messages", message);
  }

  // The delivered copy of the mail with this Message-ID in a user's inbox, or "".
  static std::string received_by(const std::string &user, const std::string &message_id) {
    for (const auto &mail : servers->mailbox(user)) {
      if (mail.find("Message-ID: <" + message_id + ">") != std::string::npos ||
          mail.find("Message-Id: <" + message_id + ">") != std::string::npos) {
        return mail;
      }
    }
    return "";
  }

  // No token the server ever issued, and not the client secret, in the logs, the account's
  // answer or any file of the data folder.
  void expect_no_secret_anywhere() {
    const Json issued = control()["issued"];
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

  Json account() const { return api_.get("/api/v1/accounts/" + account_).json(); }
  std::string state() const { return account().value("state", ""); }

  // POST /oauth/start; the authorization URL it answers.
  std::string start_sign_in(const std::string &provider = "google") {
    HttpResult started =
        api_.post("/api/v1/accounts/" + account_ + "/oauth/start",
                  {{"values", {{"provider", provider}}}});
    EXPECT_EQ(started.status, 200) << started.body;
    // The browser keeps the cookie that binds the sign-in to it.
    const std::string set_cookie = started.headers["set-cookie"];
    cookie_ = set_cookie.substr(0, set_cookie.find(';'));
    last_set_cookie_ = set_cookie;
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
  HttpResult callback(const std::string &target, bool same_browser = true) {
    std::map<std::string, std::string> headers{{"Accept-Language", "en"}};
    if (same_browser) headers["Cookie"] = "connector_lang=en; " + cookie_;
    return host_->anonymous().request("GET", target, {}, headers);
  }

  void connect(const std::string &provider = "google") {
    HttpResult page = callback(consent(start_sign_in(provider)));
    ASSERT_EQ(page.status, 200) << page.body;
    ASSERT_TRUE(eventually([&] { return state() == "connected"; }, std::chrono::seconds(15)))
        << account().dump();
  }

  // Sends a mail to the customer through the host and says whether it reached their mailbox.
  bool sent_to_customer(const std::string &subject) {
    HttpResult sent = api_.post("/api/v1/accounts/" + account_ + "/messages",
                                {{"to", Fixture::kCustomer}, {"subject", subject}, {"text", "Oi"}});
    EXPECT_EQ(sent.status, 201) << sent.body;
    servers->wait_for_queue_empty();
    for (const auto &mail : servers->mailbox(Fixture::kCustomer)) {
      if (mail.find(subject) != std::string::npos) return true;
    }
    return false;
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
  bool dovecot_plays_microsoft_ = false;
  std::string cookie_;           // name=value of the sign-in's cookie
  std::string last_set_cookie_;  // the whole Set-Cookie header
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
  EXPECT_TRUE(sent_to_customer(unique("OAuth outbound")));
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

TEST_F(EmailOAuthTest, MicrosoftSignInUsesTheTenantsEndpointsAndTheAddressOfTheIdToken) {
  const std::string tenant = "4f2b8c1e-9a3d-4e7b-b6c5-0d1e2f3a4b5c";
  use_microsoft(tenant, postfix_submission(), false);
  const std::string url = start_sign_in("microsoft");
  EXPECT_EQ(url.substr(0, url.find('?')), oauth->url("/" + tenant + "/oauth2/v2.0/authorize"));
  auto query = query_of(url);
  std::set<std::string> names;
  for (const auto &[name, value] : query) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{"client_id", "code_challenge", "code_challenge_method",
                                          "prompt", "redirect_uri", "response_type", "scope",
                                          "state"}))
      << url;
  EXPECT_EQ(query["client_id"], kClientId);
  EXPECT_EQ(query["response_type"], "code");
  EXPECT_EQ(query["redirect_uri"],
            "http://127.0.0.1:" + std::to_string(host_->port()) + "/api/v1/oauth/callback");
  EXPECT_EQ(query["scope"], kMicrosoftMailScopes);  // no Graph scope without graph_send
  EXPECT_EQ(query["code_challenge_method"], "S256");
  EXPECT_EQ(query["code_challenge"].size(), 43u);  // base64url of a SHA-256
  EXPECT_GE(query["state"].size(), 16u);
  EXPECT_EQ(query["prompt"], "select_account");

  HttpResult page = callback(consent(url));
  ASSERT_EQ(page.status, 200) << page.body;
  ASSERT_TRUE(eventually([&] { return state() == "connected"; }, std::chrono::seconds(15)))
      << account().dump();
  // The ID token names the mailbox in preferred_username only, and user info does not answer.
  EXPECT_EQ(account().value("account", ""), Fixture::kAgent);
  int token_calls = 0;
  const Json tenants = control()["tenants"];
  for (const auto &asked : tenants) token_calls += asked == tenant ? 1 : 0;
  EXPECT_GE(token_calls, 2);  // authorize and token, both under the tenant

  // Dovecot offers XOAUTH2 alone here, as Outlook does: IMAP and SMTP both log in with it.
  const std::string subject = unique("Microsoft inbound");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subject));
  EXPECT_TRUE(received(subject));
  EXPECT_TRUE(sent_to_customer(unique("Microsoft outbound")));
}

TEST_F(EmailOAuthTest, MicrosoftTenantNamesTheEndpointsAndGraphSendAddsItsScope) {
  for (const std::string tenant : {"common", "organizations", "contoso.onmicrosoft.com"}) {
    use_microsoft(tenant, postfix_submission(), true);
    const std::string url = start_sign_in("microsoft");
    EXPECT_EQ(url.substr(0, url.find('?')), oauth->url("/" + tenant + "/oauth2/v2.0/authorize"));
    EXPECT_EQ(query_of(url)["scope"], std::string(kMicrosoftMailScopes) + " " + kGraphMailSend);
  }
}

TEST_F(EmailOAuthTest, AMicrosoftTenantThatIsNoTenantNameIsRefusedInWords) {
  host_.reset();
  const fs::path secret = oauth->dir() / "client-secret";
  host_ = std::make_unique<TestHost>(plugin_yaml(
      secret, {}, microsoft_settings(secret, "contoso/../evil", postfix_submission(), false)));
  api_ = host_->admin();
  const Json listed = api_.get("/api/v1/plugins").json();
  Json plugin;
  for (const auto &p : listed.is_array() ? listed : listed.value("items", Json::array())) {
    if (p.value("id", "") == "email-oauth") plugin = p;
  }
  ASSERT_TRUE(plugin.is_object()) << listed.dump();
  EXPECT_EQ(plugin.value("state", ""), "refused");
  EXPECT_NE(plugin.value("reason", "").find("microsoft_tenant must be"), std::string::npos)
      << plugin.dump();
}

TEST_F(EmailOAuthTest, SmtpAuthOffAtMicrosoftSendsThroughGraphAndTheMailArrives) {
  control({{"graph_relay_port", servers->smtp_mx_port()}});
  use_microsoft("common", fake_smtp_without_auth(), true);
  connect("microsoft");  // the refused SMTP AUTH does not stop the account: Graph can send
  EXPECT_NE(log_text().find("5.7.139"), std::string::npos) << log_text();

  // A customer's mail with an attachment, to answer with that attachment.
  const std::string subject = unique("Nota fiscal");
  const std::string asked_id = "graph-q-" + std::to_string(std::random_device{}()) + "@customer.test";
  servers->deliver(
      Fixture::kCustomer, Fixture::kAgent,
      "From: Customer <" + std::string(Fixture::kCustomer) + ">\r\nTo: " + Fixture::kAgent +
          "\r\nSubject: " + subject + "\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
          "Message-ID: <" + asked_id + ">\r\nMIME-Version: 1.0\r\n"
          "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
          "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSegue a nota.\r\n"
          "--b1\r\nContent-Type: application/pdf; name=\"nota.pdf\"\r\n"
          "Content-Disposition: attachment; filename=\"nota.pdf\"\r\n"
          "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJWZha2UgcGRmCg==\r\n--b1--\r\n");
  ASSERT_TRUE(received(subject));
  Json asked;
  const Json listed = api_.get("/api/v1/accounts/" + account_ + "/messages").json();
  for (const auto &m : listed["items"]) {
    if (m.value("subject", "") == subject) asked = m;
  }
  ASSERT_TRUE(asked.is_object());
  ASSERT_FALSE(asked["attachments"].empty()) << asked.dump();

  const int graph_calls = control().value("graph_calls", 0);
  const std::string reply_subject = "Re: " + subject;
  HttpResult sent = send({{"to", Fixture::kCustomer},
                          {"cc", Fixture::kColleague},
                          {"bcc", Fixture::kAuditor},
                          {"subject", reply_subject},
                          {"text", "Aqui está a nota de volta."},
                          {"reply_to_message_id", asked["id"]},
                          {"attachments",
                           {{{"id", asked["attachments"][0]["id"]},
                             {"name", "nota.pdf"},
                             {"mime", "application/pdf"}}}}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  EXPECT_EQ(control().value("graph_calls", 0), graph_calls + 1);
  const std::string message_id = sent.json().value("external_id", "");
  ASSERT_FALSE(message_id.empty()) << sent.body;
  servers->wait_for_queue_empty();

  std::string at_customer;
  ASSERT_TRUE(eventually([&] { return !(at_customer = received_by(Fixture::kCustomer, message_id)).empty(); },
                         std::chrono::seconds(15)))
      << "the mail sent through Graph did not reach the customer";
  const std::string header = at_customer.substr(0, at_customer.find("\r\n\r\n"));
  EXPECT_NE(header.find("In-Reply-To: <" + asked_id + ">"), std::string::npos) << header;
  EXPECT_NE(header.find(reply_subject), std::string::npos) << header;
  EXPECT_NE(header.find(Fixture::kColleague), std::string::npos) << header;
  EXPECT_NE(at_customer.find("nota.pdf"), std::string::npos) << "the attachment was lost";
  EXPECT_NE(at_customer.find("JVBERi0xLjQKJWZha2UgcGRmCg"), std::string::npos)
      << "the attachment's bytes changed";
  EXPECT_FALSE(received_by(Fixture::kColleague, message_id).empty()) << "Cc got nothing";
  const std::string at_auditor = received_by(Fixture::kAuditor, message_id);
  EXPECT_FALSE(at_auditor.empty()) << "Bcc got nothing";
  for (const auto &copy : {at_customer, at_auditor}) {
    EXPECT_EQ(copy.find("Bcc:"), std::string::npos);
    EXPECT_EQ(copy.substr(0, copy.find("\r\n\r\n")).find(Fixture::kAuditor), std::string::npos);
  }
  // Graph got the Bcc in the MIME (its only way to know it) and took it out itself.
  const std::string handed = control()["graph_mails"].back().get<std::string>();
  EXPECT_NE(handed.find(std::string("Bcc: ") + Fixture::kAuditor), std::string::npos);
  expect_no_secret_anywhere();
}

TEST_F(EmailOAuthTest, WithoutGraphSendATenantWithoutSmtpAuthCannotSendAndSaysWhy) {
  use_microsoft("common", fake_smtp_without_auth(), false);
  const std::string url = start_sign_in("microsoft");
  EXPECT_EQ(query_of(url)["scope"].find("graph.microsoft.com"), std::string::npos);
  ASSERT_EQ(callback(consent(url)).status, 200);
  ASSERT_TRUE(eventually([&] { return state() == "error"; }, std::chrono::seconds(15)))
      << account().dump();
  const std::string detail = account().value("detail", "");
  EXPECT_NE(detail.find("SMTP AUTH is turned off"), std::string::npos) << detail;
  EXPECT_NE(detail.find("535 5.7.139"), std::string::npos) << detail;
  EXPECT_NE(detail.find("Authenticated SMTP"), std::string::npos) << detail;

  const int graph_calls = control().value("graph_calls", 0);
  HttpResult sent = send({{"to", Fixture::kCustomer}, {"subject", "x"}, {"text", "x"}});
  EXPECT_GE(sent.status, 400) << sent.body;
  EXPECT_EQ(control().value("graph_calls", 0), graph_calls);  // Graph was not asked
}

TEST_F(EmailOAuthTest, GraphWithoutTheMailSendPermissionRefusesWithAClearReason) {
  // The tenant's admin never granted Mail.Send: the Graph token comes without it.
  control({{"graph_relay_port", servers->smtp_mx_port()}, {"withhold_scopes", {kGraphMailSend}}});
  use_microsoft("common", fake_smtp_without_auth(), true);
  connect("microsoft");
  HttpResult sent = send({{"to", Fixture::kCustomer}, {"subject", unique("no grant")},
                          {"text", "x"}});
  EXPECT_GE(sent.status, 400) << sent.body;
  EXPECT_NE(sent.body.find("lacks the Mail.Send permission"), std::string::npos) << sent.body;
  EXPECT_NE(sent.body.find("403 ErrorAccessDenied"), std::string::npos) << sent.body;
  EXPECT_NE(log_text().find("lacks the Mail.Send permission"), std::string::npos);
  expect_no_secret_anywhere();
}

TEST_F(EmailOAuthTest, GraphRefusingTheTokenGetsOneRefreshAndThrottlingIsReported) {
  control({{"graph_relay_port", servers->smtp_mx_port()}});
  use_microsoft("common", fake_smtp_without_auth(), true);
  connect("microsoft");
  HttpResult first = send({{"to", Fixture::kCustomer}, {"subject", unique("first")},
                           {"text", "x"}});
  ASSERT_EQ(first.status, 201) << first.body;
  // Graph's token was got with Graph's scope, the mail token with the mail scopes.
  const Json asked = control()["refresh_scopes"];
  EXPECT_NE(std::find(asked.begin(), asked.end(),
                      std::string(kGraphMailSend) + " offline_access"),
            asked.end())
      << asked.dump();

  // Graph no longer takes the token it has (expired early, revoked…): one refresh, one retry.
  const Json before = control({{"expire_access_tokens", true}});
  HttpResult second = send({{"to", Fixture::kCustomer}, {"subject", unique("second")},
                            {"text", "x"}});
  ASSERT_EQ(second.status, 201) << second.body;
  const Json after = control();
  EXPECT_EQ(after.value("graph_refused", 0), before.value("graph_refused", 0) + 1);
  EXPECT_EQ(after.value("refreshes", 0), before.value("refreshes", 0) + 1);
  servers->wait_for_queue_empty();
  EXPECT_FALSE(received_by(Fixture::kCustomer, second.json().value("external_id", "")).empty());

  control({{"graph_status", 429}});
  HttpResult throttled = send({{"to", Fixture::kCustomer}, {"subject", "x"}, {"text", "x"}});
  EXPECT_GE(throttled.status, 400) << throttled.body;
  EXPECT_NE(throttled.body.find("throttling"), std::string::npos) << throttled.body;
  EXPECT_NE(throttled.body.find("429"), std::string::npos) << throttled.body;

  control({{"graph_status", 503}});
  HttpResult failed = send({{"to", Fixture::kCustomer}, {"subject", "x"}, {"text", "x"}});
  EXPECT_GE(failed.status, 400) << failed.body;
  EXPECT_NE(failed.body.find("HTTP 503"), std::string::npos) << failed.body;
  EXPECT_NE(failed.body.find("not sent"), std::string::npos) << failed.body;
  expect_no_secret_anywhere();
}

TEST_F(EmailOAuthTest, MicrosoftDisconnectForgetsTheTokensWithoutARevocationCall) {
  use_microsoft("common", postfix_submission(), false);
  connect("microsoft");
  const int revocations_before = control().value("revocations", 0);
  HttpResult done = api_.post("/api/v1/accounts/" + account_ + "/disconnect");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(control().value("revocations", 0), revocations_before);  // Microsoft has none
  EXPECT_EQ(state(), "disconnected");
  HttpResult again = api_.post("/api/v1/accounts/" + account_ + "/connect",
                               {{"values", {{"provider", "microsoft"}}}});
  EXPECT_GE(again.status, 400) << again.body;
}

// The plugin as the host lists it: its state and, when refused, the reason.
Json listed_plugin(const ApiClient &api) {
  const Json listed = api.get("/api/v1/plugins").json();
  for (const auto &p : listed.is_array() ? listed : listed.value("items", Json::array())) {
    if (p.value("id", "") == "email-oauth") return p;
  }
  return Json();
}

TEST_F(EmailOAuthTest, AClientSecretFileOrVariableThatGivesNothingIsRefusedNamingTheSetting) {
  const fs::path secret = oauth->dir() / "client-secret";
  const std::string good = plugin_yaml(secret);
  const std::string line = "google_client_secret_file: " + secret.string();
  ASSERT_NE(good.find(line), std::string::npos);
  auto with = [&](const std::string &replacement) {
    std::string yaml = good;
    yaml.replace(yaml.find(line), line.size(), replacement);
    return yaml;
  };
  struct Case {
    std::string setting;
    std::string words;
  } cases[] = {
      {"google_client_secret_file: " + (oauth->dir() / "no-such-secret").string(),
       "google_client_secret_file names"},
      {"google_client_secret_env: CONNECTOR_TEST_SURELY_UNSET_SECRET",
       "google_client_secret_env names the environment variable "
       "CONNECTOR_TEST_SURELY_UNSET_SECRET, which is not set"},
  };
  for (const auto &c : cases) {
    host_.reset();
    host_ = std::make_unique<TestHost>(with(c.setting));
    api_ = host_->admin();
    const Json plugin = listed_plugin(api_);
    ASSERT_TRUE(plugin.is_object()) << c.setting;
    EXPECT_EQ(plugin.value("state", ""), "refused") << plugin.dump();
    EXPECT_NE(plugin.value("reason", "").find(c.words), std::string::npos) << plugin.dump();
  }
  // An empty file is no secret either.
  const fs::path empty = oauth->dir() / "empty-secret";
  std::ofstream(empty) << "\n";
  host_.reset();
  host_ = std::make_unique<TestHost>(with("google_client_secret_file: " + empty.string()));
  api_ = host_->admin();
  EXPECT_NE(listed_plugin(api_).value("reason", "").find("which is empty"), std::string::npos)
      << listed_plugin(api_).dump();
}

TEST_F(EmailOAuthTest, AFailedOrDeniedNewSignInLeavesAConnectedMailboxConnected) {
  connect();
  // The provider refuses the code of a second sign-in.
  control({{"expire_codes", true}});
  HttpResult page = callback(consent(start_sign_in()));
  EXPECT_GE(page.status, 400);
  EXPECT_NE(page.body.find("authorization code expired"), std::string::npos) << page.body;
  EXPECT_EQ(state(), "connected") << account().dump();
  EXPECT_NE(log_text().find("stays connected"), std::string::npos) << log_text();

  // The attendant says no at the provider's page.
  control({{"expire_codes", false}});
  const std::string sign_in = query_of(start_sign_in())["state"];
  ASSERT_FALSE(sign_in.empty());
  HttpResult denied =
      callback("/api/v1/oauth/callback?error=access_denied&state=" + sign_in);
  EXPECT_GE(denied.status, 400);
  EXPECT_NE(denied.body.find("access_denied"), std::string::npos) << denied.body;
  EXPECT_EQ(state(), "connected") << account().dump();

  // Still a working mailbox.
  const std::string subject = unique("after a failed new sign-in");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subject));
  EXPECT_TRUE(received(subject));
}

TEST_F(EmailOAuthTest, AThrottledOrFailingTokenEndpointIsRetriedAndNeverAsksForANewSignIn) {
  control({{"access_ttl_s", 4}});
  connect();
  for (int status : {429, 503}) {
    control({{"refresh_failure", {{"status", status}, {"error", "temporarily_unavailable"}}}});
    const int refreshes_before = control().value("refreshes", 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(4200));
    kick_imap_sessions();
    // Tried, refused, and tried again later: the account waits, it is not signed out.
    ASSERT_TRUE(eventually([&] { return control().value("refreshes", 0) > refreshes_before + 1; },
                           std::chrono::seconds(20)))
        << account().dump();
    EXPECT_EQ(state(), "connecting") << account().dump();
    // The detail says why between two tries (a dropped connection may say so for a moment).
    EXPECT_TRUE(eventually(
        [&] {
          return account().value("detail", "").find("HTTP " + std::to_string(status)) !=
                 std::string::npos;
        },
        std::chrono::seconds(20)))
        << account().dump();
    control({{"refresh_failure", nullptr}});
    ASSERT_TRUE(eventually([&] { return state() == "connected"; }, std::chrono::seconds(70)))
        << account().dump();
  }
}

TEST_F(EmailOAuthTest, ATokenEndpointRefusingTheHostsRegistrationIsSaidToTheAdmin) {
  control({{"access_ttl_s", 4}});
  connect();
  control({{"refresh_failure", {{"status", 401}, {"error", "invalid_client"}}}});
  std::this_thread::sleep_for(std::chrono::milliseconds(4200));
  kick_imap_sessions();
  ASSERT_TRUE(eventually([&] { return state() == "error"; }, std::chrono::seconds(15)))
      << account().dump();
  const std::string detail = account().value("detail", "");
  EXPECT_NE(detail.find("an admin must check google_client_id"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("connect again"), std::string::npos) << detail;
}

TEST_F(EmailOAuthTest, OddTokenAnswersAreRefusedInWords) {
  struct Case {
    Json change;
    std::string words;
  } cases[] = {
      {{{"exchange_patch", {{"access_token", 12345}}}}, "access_token is not text"},
      {{{"exchange_patch", {{"refresh_token", Json::array()}}}}, "refresh_token is not text"},
      {{{"exchange_raw", "<html>welcome</html>"}, {"exchange_raw_times", 1}},
       "is not a JSON object"},
      {{{"exchange_raw", std::string(1024, ' ')}, {"exchange_raw_times", 2048}},
       "larger than 1 MiB"},
      {{{"id_email", std::string(Fixture::kAgent) + "\r\nA1 LOGOUT"}},
       "not a plain e-mail address"},
      {{{"id_email", "a b@example.test"}}, "not a plain e-mail address"},
  };
  for (const auto &c : cases) {
    control({{"exchange_patch", nullptr}, {"exchange_raw", nullptr}, {"id_email", nullptr}});
    control(c.change);
    HttpResult page = callback(consent(start_sign_in()));
    EXPECT_GE(page.status, 400) << c.change.dump();
    EXPECT_NE(page.status, 500) << page.body;
    EXPECT_NE(page.body.find(c.words), std::string::npos) << c.change.dump() << page.body;
    EXPECT_NE(state(), "connected");
  }
}

TEST_F(EmailOAuthTest, AnAccessTokenLifeBeyondAnyClockIsKeptWithinAYear) {
  control({{"expires_in_raw", std::to_string(std::numeric_limits<int64_t>::max())}});
  const int refreshes_before = control().value("refreshes", 0);
  connect();
  // No overflow into the past: the fresh token is used as it is, not refreshed at once.
  EXPECT_EQ(control().value("refreshes", 0), refreshes_before);
}

TEST_F(EmailOAuthTest, TheSignInAnswerCompletesOnlyInTheBrowserThatStartedIt) {
  const std::string target = consent(start_sign_in());
  EXPECT_NE(last_set_cookie_.find("HttpOnly"), std::string::npos) << last_set_cookie_;
  EXPECT_NE(last_set_cookie_.find("SameSite=Lax"), std::string::npos) << last_set_cookie_;
  EXPECT_NE(last_set_cookie_.find("Path=/api/v1/oauth/callback"), std::string::npos);
  const int exchanges_before = control().value("exchanges", -1);

  // Another browser: no cookie, or the cookie of another sign-in.
  HttpResult elsewhere = callback(target, false);
  EXPECT_EQ(elsewhere.status, 400) << elsewhere.body;
  EXPECT_NE(elsewhere.body.find("not belong to a sign-in started in this browser"),
            std::string::npos)
      << elsewhere.body;
  EXPECT_EQ(control().value("exchanges", -1), exchanges_before);  // the code was not used
  EXPECT_NE(state(), "connected");
  EXPECT_NE(log_text().find("did not start the sign-in"), std::string::npos) << log_text();

  start_sign_in();
  const std::string other_cookie = cookie_;
  const std::string third = consent(start_sign_in());
  cookie_ = other_cookie;  // another sign-in's cookie with this one's answer
  HttpResult mixed = callback(third);
  EXPECT_EQ(mixed.status, 400) << mixed.body;
  EXPECT_NE(mixed.body.find("started in this browser"), std::string::npos) << mixed.body;
  EXPECT_NE(state(), "connected");

  // The browser that started a sign-in finishes it.
  connect();
}

}  // namespace
}  // namespace connector::test

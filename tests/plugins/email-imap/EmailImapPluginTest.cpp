// The email-imap plugin, loaded through the host's real plugin loader, against real Dovecot and
// Postfix on 127.0.0.1 (tests/support/mail/start-mail-servers.sh).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include "MailParser.hpp"
#include "RecordingServices.hpp"
#include "TestHost.hpp"
#include "mail/MailServerFixture.hpp"
#include "plugins/PluginRegistry.hpp"

namespace connector::test {
namespace {

using nlohmann::json;
using Fixture = MailServerFixture;

Fixture *servers = nullptr;

class MailServersEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { servers = new Fixture(); }
  void TearDown() override {
    delete servers;
    servers = nullptr;
  }
};
const auto *const kEnvironment = ::testing::AddGlobalTestEnvironment(new MailServersEnvironment());

std::filesystem::path plugin_library() {
  return std::filesystem::path(CONNECTOR_PLUGIN_DIR) / "libconnector_email_imap.so";
}

std::string unique(const std::string &prefix) {
  static std::mt19937_64 random(std::random_device{}());
  return prefix + " " + std::to_string(random() % 1000000000);
}

json form(const std::string &password = Fixture::kPassword) {
  return {{"provider", "imap"},
          {"address", Fixture::kAgent},
          {"password", password},
          {"imap_host", "127.0.0.1"},
          {"imap_port", servers->imap_starttls_port()},
          {"imap_security", "starttls"},
          {"smtp_host", "127.0.0.1"},
          {"smtp_port", servers->submission_port()},
          {"smtp_security", "starttls"},
          {"ca_file", servers->ca_file()}};
}

std::string simple_mail(const std::string &subject, const std::string &body,
                        const std::string &extra_headers = "") {
  return "From: Customer <" + std::string(Fixture::kCustomer) + ">\r\n" + "To: " + Fixture::kAgent +
         "\r\n" + "Subject: " + subject + "\r\n" + "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n" +
         extra_headers + "Message-ID: <" + std::to_string(std::random_device{}()) +
         "@customer.test>\r\n" + "\r\n" + body + "\r\n";
}

// Logs in to Dovecot over plain IMAP (loopback counts as secure) and returns what it said: the
// greeting with its capabilities before login, and the login reply with those after.
std::string capabilities_before_and_after_login() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(servers->imap_starttls_port());
  if (::connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0) {
    close(fd);
    return {};
  }
  const std::string login =
      std::string("a LOGIN ") + Fixture::kAgent + " " + Fixture::kPassword + "\r\n";
  (void)!write(fd, login.data(), login.size());
  std::string received;
  char chunk[4096];
  while (received.find("\r\na ") == std::string::npos) {
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    received.append(chunk, static_cast<size_t>(n));
  }
  close(fd);
  return received;
}

// The sync state the plugin stored for an account (empty when none yet).
json sync_state(RecordingServices &services, const std::string &account) {
  auto text = services.stored(account, "sync.inbox");
  return text ? json::parse(*text) : json::object();
}

// How long a test waits for what a loaded machine may make slow (a wait ends as soon as the
// event is there; only a failure takes this long).
constexpr std::chrono::seconds kGenerous(60);

// Every event but messages, for a failure's message.
std::string events_seen(RecordingServices &services) {
  std::string seen;
  for (const auto &e : services.events()) {
    if (e.value("type", "") != "message") seen += e.dump() + "\n";
  }
  return seen;
}

// Polls `done` for up to 15 s (for state that is stored, not emitted).
bool eventually(const std::function<bool()> &done) {
  for (int i = 0; i < 150; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

class EmailImapPluginTest : public ::testing::Test {
 protected:
  EmailImapPluginTest()
      : attachments_(servers->dir() / ("attachments-" + unique("t").substr(2))),
        services_(attachments_) {}

  void load(json settings = json::object()) {
    registry_.reset();
    if (!settings.contains("timeout_s")) settings["timeout_s"] = 5;
    // The forms name the test servers' CA files, which are in this folder.
    if (!settings.contains("ca_dir")) settings["ca_dir"] = (servers->dir() / "tls").string();
    registry_ = std::make_unique<plugins::PluginRegistry>(
        std::vector<plugins::PluginSpec>{{"email-imap", plugin_library(), settings}}, services_);
    plugin_ = registry_->find("email-imap");
    ASSERT_NE(plugin_, nullptr) << registry_->records().front().reason;
  }

  std::string connect(const json &values) {
    const std::string account = unique("acct").substr(5);
    auto connected = plugin_->connect(account, {{"values", values}});
    EXPECT_TRUE(connected) << (connected ? "" : connected.failure().message);
    return account;
  }

  std::string error_detail(const std::string &account) {
    auto error = services_.wait_for_status("error");
    EXPECT_TRUE(error.has_value()) << "no error status for " << account;
    return error ? error->value("detail", "") : "";
  }

  std::filesystem::path attachments_;
  RecordingServices services_;
  std::unique_ptr<plugins::PluginRegistry> registry_;
  plugins::LoadedPlugin *plugin_ = nullptr;
};

TEST_F(EmailImapPluginTest, ConnectsWhenImapAndSmtpLoginsSucceed) {
  load();
  const std::string account = connect(form());
  auto connected = services_.wait_for_status("connected");
  ASSERT_TRUE(connected.has_value());
  EXPECT_EQ(connected->value("account", ""), Fixture::kAgent);
  EXPECT_EQ(plugin_->status(account)->value("state", ""), "connected");
  // The password is kept only as a secret, never in the plain settings.
  EXPECT_EQ(services_.stored(account, "servers")->find(Fixture::kPassword), std::string::npos);
  EXPECT_EQ(*services_.stored(account, "password"), Fixture::kPassword);
}

TEST_F(EmailImapPluginTest, ConnectsOverImplicitTls) {
  load();
  json values = form();
  values["imap_port"] = servers->imaps_port();
  values["imap_security"] = "tls";
  values["smtp_port"] = servers->smtps_port();
  values["smtp_security"] = "tls";
  connect(values);
  EXPECT_TRUE(services_.wait_for_status("connected").has_value());
}

TEST_F(EmailImapPluginTest, ReportsWrongCredentials) {
  load();
  const std::string account = connect(form("not-the-password"));
  EXPECT_NE(error_detail(account).find("refused the address or password"), std::string::npos);
  auto error = services_.wait_for_status("error");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->value("reason_code", ""), "auth_failed");
  // The error status is what the host logs; the plugin does not log the same failure again.
  for (const auto &e : services_.events()) {
    EXPECT_NE(e.value("state", ""), "connected");
    EXPECT_FALSE(e.value("type", "") == "log" && e.value("level", "") == "error") << e.dump();
  }
}

TEST_F(EmailImapPluginTest, ReportsAnUntrustedCertificate) {
  load();
  json values = form();
  values["ca_file"] = servers->other_ca_file();
  const std::string account = connect(values);
  EXPECT_NE(error_detail(account).find("certificate is not trusted"), std::string::npos);
  EXPECT_EQ(services_.wait_for_status("error")->value("reason_code", ""), "untrusted_certificate");
}

// The form's CA file can only name a file in the folder the admin allows (ca_dir): not any
// path on the host, not a way out of the folder, and nothing at all without ca_dir.
TEST_F(EmailImapPluginTest, TheFormsCaFileStaysInTheAdminsFolder) {
  const std::string tls = (servers->dir() / "tls").string();
  for (const std::string &path : {std::string("/etc/passwd"), tls + "/../tls/../mail",
                                  std::string("../../../../etc/hostname")}) {
    load();
    json values = form();
    values["ca_file"] = path;
    auto refused = plugin_->connect(unique("acct").substr(5), {{"values", values}});
    ASSERT_FALSE(refused) << path;
    EXPECT_NE(refused.failure().message.find("folder the admin allows"), std::string::npos)
        << refused.failure().message;
  }
  load(json{{"ca_dir", ""}});
  auto refused = plugin_->connect(unique("acct").substr(5), {{"values", form()}});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.failure().message.find("ca_dir"), std::string::npos);

  // A plain name is taken inside the folder.
  load();
  json values = form();
  values["ca_file"] = "ca.pem";
  connect(values);
  EXPECT_TRUE(services_.wait_for_status("connected").has_value());
}

TEST_F(EmailImapPluginTest, APortOutOfRangeIsRefusedInWords) {
  load();
  for (const json &port : {json(70000), json("99999"), json("abc"), json(0)}) {
    json values = form();
    values["imap_port"] = port;
    auto refused = plugin_->connect(unique("acct").substr(5), {{"values", values}});
    ASSERT_FALSE(refused) << port.dump();
    EXPECT_NE(refused.failure().message.find("IMAP port must be a whole number from 1 to 65535"),
              std::string::npos) << refused.failure().message;
  }
}

TEST_F(EmailImapPluginTest, ReportsATlsHandshakeFailure) {
  load();
  json values = form();
  values["imap_security"] = "tls";  // implicit TLS against the plain-text (STARTTLS) port
  const std::string account = connect(values);
  EXPECT_NE(error_detail(account).find("TLS handshake"), std::string::npos);
}

TEST_F(EmailImapPluginTest, ReportsAnUnreachableHost) {
  load();
  json values = form();
  values["imap_port"] = servers->imap_starttls_port() + 9;  // nothing listens there
  const std::string account = connect(values);
  EXPECT_NE(error_detail(account).find("cannot reach"), std::string::npos);
}

TEST_F(EmailImapPluginTest, ReportsATimeoutWhenTheServerNeverAnswers) {
  // A socket that accepts connections (the kernel does) but never says a word.
  int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr *>(&address), sizeof address), 0);
  ASSERT_EQ(listen(silent, 8), 0);
  socklen_t size = sizeof address;
  getsockname(silent, reinterpret_cast<sockaddr *>(&address), &size);

  load({{"timeout_s", 1}});
  json values = form();
  values["imap_port"] = ntohs(address.sin_port);
  const std::string account = connect(values);
  EXPECT_NE(error_detail(account).find("did not answer in time"), std::string::npos);
  close(silent);
}

TEST_F(EmailImapPluginTest, ReportsSmtpFailuresToo) {
  load();
  json values = form();
  values["smtp_port"] = servers->submission_port() + 20;  // nothing listens there
  const std::string account = connect(values);
  const std::string detail = error_detail(account);
  EXPECT_NE(detail.find("SMTP"), std::string::npos) << detail;
  EXPECT_NE(detail.find("cannot reach"), std::string::npos) << detail;
}

TEST_F(EmailImapPluginTest, DeliversAMailWithByteIdenticalAttachments) {
  load();
  connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());

  std::string binary;
  for (int i = 0; i < 70000; ++i) binary += static_cast<char>((i * 7919) % 256);
  static const char *kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string encoded;
  for (size_t i = 0; i < binary.size(); i += 3) {
    uint32_t n = uint8_t(binary[i]) << 16;
    if (i + 1 < binary.size()) n |= uint8_t(binary[i + 1]) << 8;
    if (i + 2 < binary.size()) n |= uint8_t(binary[i + 2]);
    encoded += kAlphabet[(n >> 18) & 63];
    encoded += kAlphabet[(n >> 12) & 63];
    encoded += i + 1 < binary.size() ? kAlphabet[(n >> 6) & 63] : '=';
    encoded += i + 2 < binary.size() ? kAlphabet[n & 63] : '=';
    if ((i / 3 + 1) % 19 == 0) encoded += "\r\n";
  }
  const std::string subject = unique("Invoice [#4711]");
  const std::string body =
      "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached, obrigado.\r\n"
      "--b1\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
      "Content-Disposition: attachment; filename=\"data.bin\"\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n" +
      encoded + "\r\n--b1--";
  servers->deliver(Fixture::kCustomer, Fixture::kAgent,
                   simple_mail(subject, body,
                               "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
                               "boundary=\"b1\"\r\n"));

  auto message = services_.wait_for_subject(subject);
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->value("direction", ""), "inbound");
  EXPECT_EQ(message->value("from", ""), Fixture::kCustomer);
  EXPECT_EQ(message->value("text", ""), "See attached, obrigado.");
  EXPECT_FALSE(message->value("automatic", true));
  EXPECT_EQ((*message)["link"]["emails"], json::array({Fixture::kCustomer}));
  EXPECT_EQ((*message)["link"]["subject_case_ids"], json::array({"4711"}));
  ASSERT_EQ((*message)["attachments"].size(), 1u);
  const auto &attachment = (*message)["attachments"][0];
  EXPECT_EQ(attachment.value("name", ""), "data.bin");
  EXPECT_EQ(services_.attachment(attachment.value("id", "")), binary);
  const std::string raw =
      services_.attachment((*message)["details"].value("raw_attachment_id", ""));
  EXPECT_NE(raw.find(subject), std::string::npos);
}

TEST_F(EmailImapPluginTest, ReplyReachesTheCustomerWithThreadingHeaders) {
  load();
  const std::string account = connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());

  const std::string subject = unique("Re: [#12] Your order");
  json message = {{"to", Fixture::kCustomer},
                  {"subject", subject},
                  {"text", "We shipped it."},
                  {"html", "<p>We shipped it.</p>"},
                  {"thread",
                   {{"in_reply_to", "<question-2@customer.test>"},
                    {"references", {"<question-1@customer.test>", "question-2@customer.test"}}}}};
  auto sent = plugin_->send(account, message);
  ASSERT_TRUE(sent) << sent.failure().message;
  EXPECT_EQ(sent->value("status", ""), "sent");
  const std::string message_id = sent->value("external_id", "");
  ASSERT_FALSE(message_id.empty());

  servers->wait_for_queue_empty();
  std::string received;
  for (const auto &mail : servers->mailbox(Fixture::kCustomer)) {
    if (mail.find(message_id) != std::string::npos) received = mail;
  }
  ASSERT_FALSE(received.empty()) << "the reply did not reach the customer's mailbox";
  EXPECT_NE(received.find("Message-Id: <" + message_id + ">"), std::string::npos) << received;
  EXPECT_NE(received.find("In-Reply-To: <question-2@customer.test>"), std::string::npos);
  EXPECT_NE(received.find("References: <question-1@customer.test> <question-2@customer.test>"),
            std::string::npos)
      << received;
  EXPECT_NE(received.find("Subject: " + subject), std::string::npos);

  // Dovecot does not file sent mail by itself, so the plugin appended a copy to Sent.
  bool filed = false;
  for (const auto &mail : servers->mailbox(Fixture::kAgent, ".Sent")) {
    filed = filed || mail.find(message_id) != std::string::npos;
  }
  EXPECT_TRUE(filed);
}

TEST_F(EmailImapPluginTest, RefusesLineBreaksInHeaderValues) {
  load();
  const std::string account = connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());
  auto sent = plugin_->send(account, {{"to", Fixture::kCustomer},
                                      {"subject", "Hello\r\nBcc: victim@example.test"},
                                      {"text", "x"}});
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.failure().code, "invalid_argument");
}

TEST_F(EmailImapPluginTest, RefusesSmtpParametersSmuggledInRecipients) {
  load();
  const std::string account = connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());
  const std::string injected =
      std::string(Fixture::kColleague) + "> NOTIFY=NEVER ORCPT=rfc822;" + Fixture::kColleague;
  for (const char *field : {"to", "cc", "bcc"}) {
    json message = {{"to", Fixture::kCustomer}, {"subject", "hi"}, {"text", "x"}};
    message[field] = injected;
    auto sent = plugin_->send(account, message);
    ASSERT_FALSE(sent) << field;
    EXPECT_EQ(sent.failure().code, "invalid_argument") << field;
    EXPECT_NE(sent.failure().message.find(std::string("\"") + field + "\""), std::string::npos)
        << sent.failure().message;
  }

  // A named recipient is fine: its address alone goes on the envelope.
  const std::string subject = unique("named recipient");
  auto sent = plugin_->send(account, {{"to", std::string("Cliente <") + Fixture::kCustomer + ">"},
                                      {"cc", std::string("Colega <") + Fixture::kColleague + ">"},
                                      {"subject", subject},
                                      {"text", "x"}});
  ASSERT_TRUE(sent) << sent.failure().message;
  const std::string message_id = sent->value("external_id", "");
  servers->wait_for_queue_empty();
  for (const char *user : {Fixture::kCustomer, Fixture::kColleague}) {
    bool found = false;
    for (const auto &mail : servers->mailbox(user, "")) {
      if (mail.find(message_id) != std::string::npos) found = true;
    }
    EXPECT_TRUE(found) << user << " got nothing";
  }
}

TEST_F(EmailImapPluginTest, RestartsWithoutDuplicates) {
  load();
  const std::string first = unique("before restart");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(first, "one"));
  servers->wait_for_queue_empty();
  const std::string account = connect(form());
  ASSERT_TRUE(services_.wait_for_subject(first).has_value());
  // The initial sync reports its progress.
  EXPECT_TRUE(services_
                  .wait_for([](const json &e) {
                    return e.value("type", "") == "progress" &&
                           e.value("phase", "") == "initial_sync";
                  })
                  .has_value());
  const size_t before = services_.messages().size();

  // Stop the plugin as a host shutdown would, deliver one more, start again and resume.
  registry_.reset();
  const std::string second = unique("after restart");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(second, "two"));
  servers->wait_for_queue_empty();
  load();
  ASSERT_TRUE(plugin_->connect(account, {{"resume", true}}));
  ASSERT_TRUE(services_.wait_for_subject(second).has_value());

  EXPECT_EQ(services_.messages().size(), before + 1);
  for (const auto &m : services_.messages()) {
    EXPECT_EQ(services_.emits_of(m.value("external_id", "")), 1) << m.value("subject", "");
  }
}

TEST_F(EmailImapPluginTest, SameMailDeliveredTwiceIsOneMessage) {
  load();
  connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());
  const std::string subject = unique("delivered twice");
  const std::string mail = simple_mail(subject, "same bytes");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, mail);
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, mail);
  ASSERT_TRUE(services_.wait_for_count(
      [&](const json &e) {
        return e.value("type", "") == "message" && e.value("subject", "") == subject;
      },
      2));
  int stored = 0;
  for (const auto &m : services_.messages()) stored += m.value("subject", "") == subject;
  EXPECT_EQ(stored, 1);
}

TEST_F(EmailImapPluginTest, ReconnectsAndCatchesUpAfterDovecotRestartsDuringIdle) {
  load();
  connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());
  services_.clear_events();

  servers->stop_dovecot();
  servers->start_dovecot();
  const std::string subject = unique("after dovecot restart");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subject, "still there?"));

  EXPECT_TRUE(services_.wait_for_subject(subject).has_value());
  EXPECT_TRUE(services_
                  .wait_for([](const json &e) {
                    return e.value("type", "") == "status" && e.value("state", "") == "connecting";
                  })
                  .has_value());
}

TEST_F(EmailImapPluginTest, NewMailArrivesThroughIdle) {
  // Polling and IDLE renewal an hour apart: only an IDLE push can bring the mail in time.
  load({{"poll_interval_s", 3600}, {"idle_restart_s", 3600}});
  connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());
  // Give the initial sync time to finish and the IDLE to start.
  ASSERT_TRUE(services_.wait_for([](const json &e) {
    return e.value("type", "") == "progress" && e.value("done", -1) == e.value("total", -2);
  }));
  const std::string subject = unique("pushed");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subject, "push"));
  EXPECT_TRUE(services_.wait_for_subject(subject).has_value());
}

TEST_F(EmailImapPluginTest, AnOversizedMailIsRecordedNotLost) {
  load({{"max_message_mb", 1}});
  connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());
  const std::string subject = unique("too big");
  std::string body;
  for (int i = 0; i < 30000; ++i) body += std::string(70, 'a' + i % 26) + "\r\n";
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subject, body));
  auto message = services_.wait_for_subject(subject);
  ASSERT_TRUE(message.has_value());
  EXPECT_TRUE((*message)["details"].value("oversized", false));
  EXPECT_GT((*message)["details"].value("size", 0), 1 << 20);
  EXPECT_EQ(message->value("from", ""), Fixture::kCustomer);
}

TEST_F(EmailImapPluginTest, MalformedMimeBetweenGoodMailsBlocksNothing) {
  load();
  connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());
  std::ifstream file(
      std::string(CONNECTOR_SOURCE_DIR) + "/tests/plugins/email-common/corpus/malformed-mime.eml",
      std::ios::binary);
  std::string broken((std::istreambuf_iterator<char>(file)), {});
  const std::string broken_subject = unique("broken structure");
  broken.replace(broken.find("broken structure"), 16, broken_subject);
  const std::string before = unique("good before");
  const std::string after = unique("good after");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(before, "1"));
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, broken);
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(after, "3"));
  EXPECT_TRUE(services_.wait_for_subject(before).has_value());
  EXPECT_TRUE(services_.wait_for_subject(broken_subject).has_value());
  EXPECT_TRUE(services_.wait_for_subject(after).has_value());
}

TEST_F(EmailImapPluginTest, NewMailArrivesByPollingWhenTheServerOffersNoIdle) {
  servers->restart_dovecot_with(
      "protocol imap {\n"
      "  imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS "
      "CONDSTORE\n}");
  struct RestoreIdle {
    ~RestoreIdle() { servers->restart_dovecot_with(""); }
  } restore;
  const std::string capabilities = capabilities_before_and_after_login();
  ASSERT_NE(capabilities.find("CONDSTORE"), std::string::npos) << capabilities;
  ASSERT_EQ(capabilities.find("IDLE"), std::string::npos) << capabilities;

  // IDLE renewal an hour apart: only the one-second poll can bring the mail within the wait.
  load({{"poll_interval_s", 1}, {"idle_restart_s", 3600}});
  connect(form());
  ASSERT_TRUE(services_.wait_for([](const json &e) {
    return e.value("type", "") == "progress" && e.value("done", -1) == e.value("total", -2);
  }));
  const std::string subject = unique("polled");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subject, "poll"));
  EXPECT_TRUE(services_.wait_for_subject(subject).has_value());
}

TEST_F(EmailImapPluginTest, StoresHighestModseqAndSkipsTheSearchWhenNothingChanged) {
  load();
  const std::string account = connect(form());
  const std::string first = unique("modseq one");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(first, "1"));
  ASSERT_TRUE(services_.wait_for_subject(first).has_value());
  // The state is complete once the sync that fetched the mail finished (UIDNEXT stored).
  auto finished = [&] {
    const json state = sync_state(services_, account);
    return state.value("uid_next", 0) == state.value("last_uid", 0) + 1;
  };
  ASSERT_TRUE(eventually(finished));
  const json one = sync_state(services_, account);
  EXPECT_GT(one.value("highest_modseq", 0), 0);

  const std::string second = unique("modseq two");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(second, "2"));
  ASSERT_TRUE(services_.wait_for_subject(second).has_value());
  ASSERT_TRUE(eventually([&] {
    return finished() &&
           sync_state(services_, account).value("uid_next", 0) > one.value("uid_next", 0);
  }));
  const json two = sync_state(services_, account);
  EXPECT_GT(two.value("highest_modseq", 0), one.value("highest_modseq", 0));
  EXPECT_GT(two.value("last_uid", 0), one.value("last_uid", 0));

  // Restart with the last UID forgotten but UIDNEXT and HIGHESTMODSEQ as stored: a plugin that
  // searched anyway would fetch and emit every mail again; with CONDSTORE it does not search.
  registry_.reset();
  json tampered = sync_state(services_, account);  // as the plugin left it when it stopped
  tampered["last_uid"] = 0;
  services_.store_put("email-imap", account, "sync.inbox", tampered.dump(), false);
  services_.clear_events();
  load();
  ASSERT_TRUE(plugin_->connect(account, {{"resume", true}}));
  ASSERT_TRUE(services_.wait_for([](const json &e) {
    return e.value("type", "") == "log" &&
           e.value("text", "").find("unchanged since the last sync") != std::string::npos;
  })) << "stored before the restart: "
      << tampered.dump() << "; now: " << sync_state(services_, account).dump();
  for (const auto &e : services_.events()) {
    EXPECT_NE(e.value("type", ""), "message") << "fetched again: " << e.value("subject", "");
  }
}

TEST_F(EmailImapPluginTest, ReplyWithAttachmentCcAndBccReachesEveryMailbox) {
  load();
  const std::string account = connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());

  std::string binary;
  for (int i = 0; i < 50000; ++i) binary += static_cast<char>((i * 131) % 256);
  std::string attachment_id;
  ASSERT_EQ(services_.attachment_put("email-imap", account, binary, attachment_id), CN_OK);

  const std::string subject = unique("Re: Nota fiscal");
  json message = {
      {"to", Fixture::kCustomer},
      {"cc", Fixture::kColleague},
      {"bcc", Fixture::kAuditor},
      {"subject", subject},
      {"case_id", 4242},
      {"text", "Segue a nota."},
      {"attachments",
       {{{"id", attachment_id}, {"name", "nota fiscal.pdf"}, {"mime", "application/pdf"}}}},
      {"thread",
       {{"in_reply_to", "<q-9@customer.test>"}, {"references", {"<q-8@customer.test>"}}}}};
  auto sent = plugin_->send(account, message);
  ASSERT_TRUE(sent) << sent.failure().message;
  const std::string message_id = sent->value("external_id", "");
  servers->wait_for_queue_empty();

  auto received_by = [&](const std::string &user, const std::string &folder = "") {
    std::string found;
    for (const auto &mail : servers->mailbox(user, folder)) {
      if (mail.find(message_id) != std::string::npos) found = mail;
    }
    return found;
  };
  const std::string at_customer = received_by(Fixture::kCustomer);
  ASSERT_FALSE(at_customer.empty()) << "the reply did not reach the customer";
  auto parsed = email::parse_mail(at_customer);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->subject, subject + " [#4242]");
  EXPECT_EQ(parsed->text, "Segue a nota.");
  EXPECT_EQ(parsed->thread_refs,
            (std::vector<std::string>{"q-9@customer.test", "q-8@customer.test"}));
  EXPECT_EQ(parsed->cc, std::vector<std::string>{Fixture::kColleague});
  ASSERT_EQ(parsed->attachments.size(), 1u);
  EXPECT_EQ(parsed->attachments[0].name, "nota fiscal.pdf");
  EXPECT_EQ(parsed->attachments[0].mime, "application/pdf");
  EXPECT_TRUE(parsed->attachments[0].bytes == binary) << "the attachment changed on the way";

  EXPECT_FALSE(received_by(Fixture::kColleague).empty()) << "Cc got nothing";
  const std::string at_auditor = received_by(Fixture::kAuditor);
  EXPECT_FALSE(at_auditor.empty()) << "Bcc got nothing";
  for (const auto &copy : {at_customer, at_auditor}) {
    EXPECT_EQ(copy.find(Fixture::kAuditor, copy.find("\r\n\r\n")), std::string::npos);
    EXPECT_EQ(copy.find("Bcc:"), std::string::npos);
  }
  EXPECT_FALSE(received_by(Fixture::kAgent, ".Sent").empty()) << "no copy in Sent";
}

TEST_F(EmailImapPluginTest, AutomaticMailWeSendMarksItself) {
  load();
  const std::string account = connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value());
  auto sent = plugin_->send(account, {{"to", Fixture::kCustomer},
                                      {"subject", unique("Recebemos sua mensagem")},
                                      {"text", "Responderemos em breve."},
                                      {"automatic", true}});
  ASSERT_TRUE(sent) << sent.failure().message;
  servers->wait_for_queue_empty();
  std::string received;
  for (const auto &mail : servers->mailbox(Fixture::kCustomer)) {
    if (mail.find(sent->value("external_id", "")) != std::string::npos) received = mail;
  }
  ASSERT_FALSE(received.empty());
  auto parsed = email::parse_mail(received);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_TRUE(parsed->automatic) << received;
  EXPECT_NE(received.find("Auto-Submitted: auto-replied"), std::string::npos);
}

TEST_F(EmailImapPluginTest, AUidValidityChangeDuplicatesNothing) {
  load();
  const std::string account = connect(form());
  const std::string first = unique("before renumbering");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(first, "1"));
  ASSERT_TRUE(services_.wait_for_subject(first).has_value()) << [&] {
    std::string seen;
    for (const auto &e : services_.events()) {
      if (e.value("type", "") != "message") seen += e.dump() + "\n";
    }
    return seen;
  }();
  // The state is stored just after the event (the test once read it too early and crashed).
  ASSERT_TRUE(eventually([&] { return sync_state(services_, account).value("last_uid", 0) > 0; }));
  const json old_state = sync_state(services_, account);
  const size_t before = services_.messages().size();

  // Dovecot forgets its UID list and index: the mailbox comes back with a new UIDVALIDITY.
  servers->stop_dovecot();
  const auto maildir = servers->dir() / "mail" / Fixture::kAgent / "Maildir";
  for (const auto &entry : std::filesystem::directory_iterator(maildir)) {
    if (entry.path().filename().string().rfind("dovecot", 0) == 0) {
      std::filesystem::remove_all(entry.path());
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // UIDVALIDITY is a timestamp
  servers->start_dovecot();
  const std::string second = unique("after renumbering");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(second, "2"));
  // The plugin reconnects with a growing backoff while Dovecot is down: generous.
  ASSERT_TRUE(services_.wait_for_subject(second, kGenerous).has_value());

  ASSERT_TRUE(eventually([&] {
    return sync_state(services_, account).value("uid_validity", 0) !=
           old_state.value("uid_validity", 0);
  }));
  EXPECT_EQ(services_.messages().size(), before + 1);
  // The renumbered mailbox was read again (the first mail emitted twice), yet stored once.
  for (const auto &m : services_.messages()) {
    if (m.value("subject", "") == first) EXPECT_EQ(services_.emits_of(m["external_id"]), 2);
  }
}

// Through the real host: the API's answer and the stored copy of a reply on a case carry the
// subject the customer received, with the case id the plugin added.
TEST(EmailImapThroughTheHost, AReplyIsStoredWithTheSubjectActuallySent) {
  TestHost host("plugins:\n  email-imap:\n    library: " + plugin_library().string() +
                "\n    settings:\n      timeout_s: 10\n      ca_dir: " +
                (servers->dir() / "tls").string() + "\n");
  const TestHost::Person ana = host.add_attendant("Ana");
  const ApiClient client(host.port(), ana.token);
  const std::string account = TestHost::create_account(client, "email-imap");
  auto connected = client.post("/api/v1/accounts/" + account + "/connect", {{"values", form()}});
  ASSERT_LT(connected.status, 300) << connected.body;
  auto created =
      client.post("/api/v1/cases", {{"title", "Pedido"}, {"addresses", {Fixture::kCustomer}}});
  ASSERT_EQ(created.status, 201) << created.body;
  const int64_t case_id = created.json()["id"];

  const std::string typed = unique("Sobre seu pedido");
  auto sent = client.post("/api/v1/accounts/" + account + "/messages",
                          {{"to", Fixture::kCustomer},
                           {"subject", typed},
                           {"text", "Enviamos hoje."},
                           {"case_id", case_id}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  const std::string expected = typed + " [#" + std::to_string(case_id) + "]";
  EXPECT_EQ(sent.json().value("subject", ""), expected);

  auto filed = client.get("/api/v1/cases/" + std::to_string(case_id) + "/messages").json();
  ASSERT_EQ(filed["items"].size(), 1u) << filed.dump();
  EXPECT_EQ(filed["items"][0].value("subject", ""), expected);
  EXPECT_EQ(filed["items"][0].value("direction", ""), "outbound");

  servers->wait_for_queue_empty();
  std::optional<email::ParsedMail> received;
  for (const auto &mail : servers->mailbox(Fixture::kCustomer)) {
    if (mail.find(sent.json().value("external_id", "")) != std::string::npos) {
      received = email::parse_mail(mail);
    }
  }
  ASSERT_TRUE(received.has_value()) << "the reply did not reach the customer";
  EXPECT_EQ(received->subject, expected);
}

// Postfix checks passwords through Dovecot: once Dovecot restarted, Postfix's idle processes
// still hold the old connection to it and answer the next AUTH with "454 4.7.0 Temporary
// authentication failure". That is no wrong password: the connect check asks again.
TEST_F(EmailImapPluginTest, ConnectsRightAfterThePasswordBackendRestarted) {
  load();
  connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected").has_value()) << events_seen(services_);
  registry_.reset();
  servers->stop_dovecot();
  servers->start_dovecot();
  services_.clear_events();
  load();
  connect(form());
  ASSERT_TRUE(services_.wait_for_status("connected", kGenerous).has_value())
      << events_seen(services_);
}

TEST_F(EmailImapPluginTest, AnUnreadableMailIsQuarantinedAndTheNextStillArrives) {
  load();
  connect(form());
  ASSERT_TRUE(services_.wait_for(
      [](const json &e) {
        return e.value("type", "") == "progress" && e.value("done", -1) == e.value("total", -2);
      },
      kGenerous))
      << events_seen(services_);
  // Bytes that are no mail at all, put straight into the Maildir (Postfix would add headers).
  std::ifstream file(
      std::string(CONNECTOR_SOURCE_DIR) + "/tests/plugins/email-common/corpus/not-a-mail.bin",
      std::ios::binary);
  const std::string garbage((std::istreambuf_iterator<char>(file)), {});
  const auto maildir = servers->dir() / "mail" / Fixture::kAgent / "Maildir";
  const auto target = maildir / "new" / ("1796000000." + unique("q").substr(2) + ".garbage");
  std::ofstream(target, std::ios::binary) << garbage;
  run_command("chown nobody:nogroup " + target.string());
  const std::string after = unique("good after garbage");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(after, "fine"));

  auto quarantined = services_.wait_for(
      [](const json &e) {
        return e.value("type", "") == "message" && e.contains("details") &&
               e["details"].value("quarantined", false);
      },
      kGenerous);
  ASSERT_TRUE(quarantined.has_value());
  EXPECT_TRUE(quarantined->value("automatic", false));
  // The raw bytes are kept as Dovecot serves them (it turns NUL bytes into 0x80).
  EXPECT_NE(services_.attachment((*quarantined)["details"].value("raw_attachment_id", ""))
                .find("binary garbage without any header"),
            std::string::npos);
  EXPECT_TRUE(services_.wait_for_subject(after, kGenerous).has_value());
  EXPECT_TRUE(services_.wait_for(
      [](const json &e) {
        return e.value("type", "") == "log" &&
               e.value("text", "").find("quarantined") != std::string::npos;
      },
      kGenerous));
}

TEST_F(EmailImapPluginTest, TwoConnectionsFetchingAtOnceGiveTheMailOneId) {
  // Two accounts on one mailbox: two IMAP connections with their own sync state fetch the same
  // mail at the same time. Its content-derived id is the same, so the store keeps it once.
  load();
  connect(form());
  connect(form());
  ASSERT_TRUE(services_.wait_for_count(
      [](const json &e) { return e.value("type", "") == "status" && e["state"] == "connected"; },
      2, kGenerous))
      << events_seen(services_);
  const std::string subject = unique("fetched twice");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subject, "once"));
  ASSERT_TRUE(services_.wait_for_count(
      [&](const json &e) {
        return e.value("type", "") == "message" && e.value("subject", "") == subject;
      },
      2, kGenerous))
      << events_seen(services_);
  int stored = 0;
  for (const auto &m : services_.messages()) stored += m.value("subject", "") == subject;
  EXPECT_EQ(stored, 1);
}


// The mails a sync finds are handed over together, in "messages" events, so the host stores
// them in one transaction each instead of one per mail; each mail is in exactly one of them.
TEST_F(EmailImapPluginTest, TheFirstSyncHandsItsMailsOverTogether) {
  load();
  std::vector<std::string> subjects;
  for (int i = 0; i < 5; ++i) {
    subjects.push_back(unique("together " + std::to_string(i)));
    servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subjects.back(), "body"));
  }
  servers->wait_for_queue_empty();
  const std::string account = connect(form());
  for (const auto &subject : subjects) {
    ASSERT_TRUE(services_.wait_for_subject(subject, kGenerous).has_value()) << subject;
  }
  const auto sizes = services_.batch_sizes();
  ASSERT_FALSE(sizes.empty()) << "no mail was handed over in a \"messages\" event";
  EXPECT_GE(*std::max_element(sizes.begin(), sizes.end()), subjects.size());
  for (const auto &m : services_.messages()) {
    const std::string subject = m.value("subject", "");
    if (std::find(subjects.begin(), subjects.end(), subject) == subjects.end()) continue;
    EXPECT_EQ(services_.emits_of(m.value("external_id", "")), 1) << subject;
  }
  EXPECT_TRUE(eventually([&] { return sync_state(services_, account).value("last_uid", 0) > 0; }));
}

// A host that does not know "messages" events gets every mail one by one, none lost or twice.
TEST_F(EmailImapPluginTest, AHostThatTakesOneMessageAtATimeGetsEveryMail) {
  services_.refuse_batches();
  load();
  std::vector<std::string> subjects;
  for (int i = 0; i < 3; ++i) {
    subjects.push_back(unique("one by one " + std::to_string(i)));
    servers->deliver(Fixture::kCustomer, Fixture::kAgent, simple_mail(subjects.back(), "body"));
  }
  servers->wait_for_queue_empty();
  connect(form());
  for (const auto &subject : subjects) {
    ASSERT_TRUE(services_.wait_for_subject(subject, kGenerous).has_value()) << subject;
  }
  EXPECT_TRUE(services_.batch_sizes().empty());
  for (const auto &m : services_.messages()) {
    const std::string subject = m.value("subject", "");
    if (std::find(subjects.begin(), subjects.end(), subject) == subjects.end()) continue;
    EXPECT_EQ(services_.emits_of(m.value("external_id", "")), 1) << subject;
  }
}

}  // namespace
}  // namespace connector::test

// The host's disk fills up while mail arrives: the e-mail account pauses and says why, nothing is
// stored and nothing acknowledged to the mailbox, and once space returns the account resumes by
// itself and every mail arrives exactly once with its attachments. The host's data folder is on
// a small tmpfs the test mounts itself; real Dovecot and Postfix deliver the mail. Needs root.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "SmallDisk.hpp"
#include "StoredAttachments.hpp"
#include "TestHost.hpp"
#include "mail/MailServerFixture.hpp"

namespace connector::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Fixture = MailServerFixture;

Fixture *servers = nullptr;

class MailServersEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (geteuid() == 0) servers = new Fixture();
  }
  void TearDown() override {
    delete servers;
    servers = nullptr;
  }
};
const auto *const kEnvironment = ::testing::AddGlobalTestEnvironment(new MailServersEnvironment());

std::string plugin_library() {
  return (fs::path(CONNECTOR_PLUGIN_DIR) / "libconnector_email_imap.so").string();
}

std::string random_bytes(size_t size) {
  static std::mt19937_64 random(std::random_device{}());
  std::string bytes(size, '\0');
  for (auto &c : bytes) c = static_cast<char>(random() & 0xff);
  return bytes;
}

std::string unique(const std::string &prefix) {
  static std::mt19937_64 random(std::random_device{}());
  return prefix + " " + std::to_string(random() % 1000000000);
}

std::string sha256_hex(const std::string &bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char *>(bytes.data()), bytes.size());
  char hex[2 * sizeof(digest) + 1];
  sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
  return hex;
}

std::string base64(const std::string &bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char *>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);
  std::string wrapped;
  for (size_t at = 0; at < out.size(); at += 76) wrapped += out.substr(at, 76) + "\r\n";
  return wrapped;
}

// A mail from the customer with one attachment.
std::string mail_with_attachment(const std::string &subject, const std::string &name,
                                 const std::string &bytes) {
  const std::string boundary = "b-" + sha256_hex(subject).substr(0, 16);
  return "From: Customer <" + std::string(Fixture::kCustomer) + ">\r\nTo: " + Fixture::kAgent +
         "\r\nSubject: " + subject + "\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n" +
         "Message-ID: <" + sha256_hex(subject).substr(0, 24) + "@customer.test>\r\n" +
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + boundary +
         "\"\r\n\r\n--" + boundary + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
         "Segue o arquivo.\r\n--" + boundary +
         "\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
         "filename=\"" + name + "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
         base64(bytes) + "--" + boundary + "--\r\n";
}

json account_of(const ApiClient &client, const std::string &id) {
  return client.get("/api/v1/accounts/" + id).json();
}

// Polls `done` for up to 90 s (a loaded machine is slow; a wait ends as soon as it holds).
bool eventually(const std::function<bool()> &done) {
  for (int i = 0; i < 900; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// Every message of the account (the newest 200: enough here).
json messages_of(const ApiClient &client, const std::string &account) {
  return client.get("/api/v1/accounts/" + account + "/messages?limit=200").json()["items"];
}

int count_with_subject(const json &messages, const std::string &subject) {
  int count = 0;
  for (const auto &m : messages) count += m.value("subject", "") == subject ? 1 : 0;
  return count;
}

// What the stored messages name: their attachments and the raw mails kept beside them.
std::set<std::string> attachments_named(const json &messages) {
  std::set<std::string> ids;
  for (const auto &m : messages) {
    for (const auto &a : m["attachments"]) ids.insert(a.value("id", ""));
    const auto raw = m["details"].value("raw_attachment_id", "");
    if (!raw.empty()) ids.insert(raw);
  }
  return ids;
}

std::string log_text(const ApiClient &client, const std::string &account) {
  std::string text;
  const auto answer = client.get("/api/v1/accounts/" + account + "/log?limit=200");
  for (const auto &entry : answer.json()["items"]) text += entry.value("text", "") + "\n";
  if (text.empty()) text = answer.body;
  return text;
}

std::string host_plugins_yaml() {
  return "plugins:\n  email-imap:\n    library: " + plugin_library() +
         "\n    settings:\n      timeout_s: 10\n      ca_dir: " +
         (servers->dir() / "tls").string() + "\n";
}

// An e-mail account on the test mailbox, connecting; returns its id.
std::string connect_mailbox(const ApiClient &client) {
  const std::string account = TestHost::create_account(client, "email-imap");
  const json form = {{"provider", "imap"},
                     {"address", Fixture::kAgent},
                     {"password", Fixture::kPassword},
                     {"imap_host", "127.0.0.1"},
                     {"imap_port", servers->imap_starttls_port()},
                     {"imap_security", "starttls"},
                     {"smtp_host", "127.0.0.1"},
                     {"smtp_port", servers->submission_port()},
                     {"smtp_security", "starttls"},
                     {"ca_file", servers->ca_file()}};
  auto connected = client.post("/api/v1/accounts/" + account + "/connect", {{"values", form}});
  EXPECT_LT(connected.status, 300) << connected.body;
  return account;
}

TEST(EmailOnAFullDisk, PausesStoresNothingAndResumesWithEveryMailOnceWhenSpaceReturns) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting the small disk (and the mail servers) need root";
  ASSERT_NE(servers, nullptr);
  TestHost host(host_plugins_yaml());
  auto disk = move_data_to_small_disk(host, "48m");
  const TestHost::Person ana = host.add_attendant("Ana");
  const ApiClient client(host.port(), ana.token);
  const std::string account = connect_mailbox(client);

  // One mail before the disk fills: stored as usual.
  const std::string before = unique("antes");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent,
                   mail_with_attachment(before, "antes.bin", random_bytes(20000)));
  ASSERT_TRUE(eventually([&] { return count_with_subject(messages_of(client, account), before) == 1; }))
      << account_of(client, account).dump();

  // The disk fills up; two mails with attachments arrive.
  disk->fill();
  const std::string first = unique("primeiro"), second = unique("segundo");
  const std::string first_bytes = random_bytes(300000), second_bytes = random_bytes(200000);
  servers->deliver(Fixture::kCustomer, Fixture::kAgent,
                   mail_with_attachment(first, "primeiro.bin", first_bytes));
  servers->deliver(Fixture::kCustomer, Fixture::kAgent,
                   mail_with_attachment(second, "segundo.bin", second_bytes));
  servers->wait_for_queue_empty();

  // The account pauses and says why, in its status and its integration log.
  ASSERT_TRUE(eventually([&] {
    return account_of(client, account).value("reason_code", "") == "storage_full";
  })) << account_of(client, account).dump();
  const json paused = account_of(client, account);
  EXPECT_EQ(paused.value("state", ""), "error");
  EXPECT_NE(paused.value("detail", "").find("disk"), std::string::npos) << paused.dump();
  EXPECT_TRUE(paused.value("wanted_connected", false));
  // (The status is written just before the log entry.)
  EXPECT_TRUE(eventually([&] {
    return log_text(client, account).find("The disk of the host's data folder is full") !=
           std::string::npos;
  })) << log_text(client, account);

  // Nothing of the two mails is stored, and no attachment (row or file) is left without its
  // message.
  json stored = messages_of(client, account);
  EXPECT_EQ(count_with_subject(stored, first), 0);
  EXPECT_EQ(count_with_subject(stored, second), 0);
  EXPECT_EQ(stored_attachment_ids(host.data_dir()), attachments_named(stored));
  EXPECT_FALSE(fs::exists(host.data_dir() / "space.reserve"));

  // A reply now could not be stored: it is refused, and not sent.
  const std::string reply = unique("resposta");
  auto refused = client.post("/api/v1/accounts/" + account + "/messages",
                             {{"to", Fixture::kCustomer}, {"subject", reply}, {"text", "oi"}});
  EXPECT_EQ(refused.status, 507) << refused.body;
  EXPECT_EQ(refused.error_code(), "storage_full") << refused.body;
  servers->wait_for_queue_empty();
  for (const auto &mail : servers->mailbox(Fixture::kCustomer)) {
    EXPECT_EQ(mail.find(reply), std::string::npos) << "a reply refused for a full disk was sent";
  }

  // Space returns: the account resumes by itself and both mails arrive, once each.
  disk->empty();
  ASSERT_TRUE(eventually([&] {
    const json now = messages_of(client, account);
    return count_with_subject(now, first) >= 1 && count_with_subject(now, second) >= 1;
  })) << account_of(client, account).dump() << "\n" << log_text(client, account);
  ASSERT_TRUE(eventually([&] { return account_of(client, account).value("state", "") == "connected"; }))
      << account_of(client, account).dump();
  EXPECT_EQ(account_of(client, account).value("reason_code", ""), "");
  EXPECT_NE(log_text(client, account).find("There is room on the disk again"), std::string::npos)
      << log_text(client, account);
  EXPECT_TRUE(fs::exists(host.data_dir() / "space.reserve"));

  stored = messages_of(client, account);
  EXPECT_EQ(count_with_subject(stored, before), 1);
  EXPECT_EQ(count_with_subject(stored, first), 1);
  EXPECT_EQ(count_with_subject(stored, second), 1);
  const std::map<std::string, std::string> sent = {{first, first_bytes}, {second, second_bytes}};
  for (const auto &m : stored) {
    auto it = sent.find(m.value("subject", ""));
    if (it == sent.end()) continue;
    ASSERT_EQ(m["attachments"].size(), 1u) << m.dump();
    const std::string id = m["attachments"][0].value("id", "");
    EXPECT_EQ(id, sha256_hex(it->second));
    const std::string kept = stored_attachment(host.data_dir(), id);
    EXPECT_TRUE(kept == it->second) << "the attachment of \"" << it->first << "\" differs";
  }
  EXPECT_EQ(stored_attachment_ids(host.data_dir()), attachments_named(stored));
  host.stop();
}

// Here the attachment files fit (they are kept on another disk) but the database cannot grow:
// the message's transaction rolls back, and the files it had stored are not kept either.
TEST(EmailOnAFullDisk, AMailTheDatabaseCannotTakeLeavesNoFileBehindAndArrivesOnceLater) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting the small disk (and the mail servers) need root";
  ASSERT_NE(servers, nullptr);
  TestHost host(host_plugins_yaml());
  auto disk = move_data_to_small_disk(host, "32m");
  host.stop();
  const fs::path elsewhere = host.dir() / "attachments-elsewhere";
  fs::create_directories(elsewhere);
  if (fs::exists(host.data_dir() / "attachments")) {
    fs::copy(host.data_dir() / "attachments", elsewhere, fs::copy_options::recursive);
    fs::remove_all(host.data_dir() / "attachments");
  }
  fs::create_directory_symlink(elsewhere, host.data_dir() / "attachments");
  host.start();
  const TestHost::Person ana = host.add_attendant("Ana");
  const ApiClient client(host.port(), ana.token);
  const std::string account = connect_mailbox(client);
  const std::string before = unique("antes");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent,
                   mail_with_attachment(before, "antes.bin", random_bytes(1000)));
  ASSERT_TRUE(eventually([&] { return count_with_subject(messages_of(client, account), before) == 1; }))
      << account_of(client, account).dump();

  // A long text (more than the database's write-ahead log holds) with an attachment.
  disk->fill();
  const std::string subject = unique("longo");
  std::string text;
  while (text.size() < 4u << 20) text += "linha de texto de uma mensagem longa, repetida muitas vezes\r\n";
  const std::string bytes = random_bytes(100000);
  std::string mail = mail_with_attachment(subject, "anexo.bin", bytes);
  mail.replace(mail.find("Segue o arquivo.\r\n"), 18, text);
  servers->deliver(Fixture::kCustomer, Fixture::kAgent, mail);

  ASSERT_TRUE(eventually([&] {
    return account_of(client, account).value("reason_code", "") == "storage_full";
  })) << account_of(client, account).dump();
  json stored = messages_of(client, account);
  EXPECT_EQ(count_with_subject(stored, subject), 0);
  EXPECT_EQ(stored_attachment_ids(host.data_dir()), attachments_named(stored))
      << "the attachments of the message that was not stored were kept";
  EXPECT_FALSE(fs::exists(elsewhere / sha256_hex(bytes).substr(0, 2) / sha256_hex(bytes)));

  disk->empty();
  ASSERT_TRUE(eventually([&] { return count_with_subject(messages_of(client, account), subject) >= 1; }))
      << account_of(client, account).dump() << "\n" << log_text(client, account);
  stored = messages_of(client, account);
  EXPECT_EQ(count_with_subject(stored, subject), 1);
  for (const auto &m : stored) {
    if (m.value("subject", "") != subject) continue;
    ASSERT_EQ(m["attachments"].size(), 1u) << m.dump();
    EXPECT_EQ(m["attachments"][0].value("id", ""), sha256_hex(bytes));
    EXPECT_EQ(m.value("text", "").size(), 1u << 20) << "the host keeps the first MiB of a text";
  }
  EXPECT_EQ(stored_attachment_ids(host.data_dir()), attachments_named(stored));
  host.stop();
}


// A mail larger than what the disk has free: it can never be stored there, and the account must
// not pause, resume, fetch it again and pause again without end. Resuming right after a resume
// failed waits for more room each time.
TEST(EmailOnAFullDisk, AMailLargerThanTheFreeSpaceDoesNotMakeTheAccountResumeOverAndOver) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting the small disk (and the mail servers) need root";
  ASSERT_NE(servers, nullptr);
  TestHost host(host_plugins_yaml());
  auto disk = move_data_to_small_disk(host, "24m");
  const TestHost::Person ana = host.add_attendant("Ana");
  const ApiClient client(host.port(), ana.token);
  const std::string account = connect_mailbox(client);
  ASSERT_TRUE(eventually([&] { return account_of(client, account).value("state", "") == "connected"; }))
      << account_of(client, account).dump();

  const std::string big = unique("grande demais");
  servers->deliver(Fixture::kCustomer, Fixture::kAgent,
                   mail_with_attachment(big, "grande.bin", random_bytes(20 << 20)));
  servers->wait_for_queue_empty();
  ASSERT_TRUE(eventually([&] {
    return account_of(client, account).value("reason_code", "") == "storage_full";
  })) << account_of(client, account).dump();

  // Long enough for dozens of rounds of resuming and failing again.
  std::this_thread::sleep_for(std::chrono::seconds(15));
  const std::string log = log_text(client, account);
  size_t resumes = 0;
  for (size_t at = log.find("There is room on the disk again"); at != std::string::npos;
       at = log.find("There is room on the disk again", at + 1)) {
    ++resumes;
  }
  EXPECT_LE(resumes, 2u) << log;
  EXPECT_EQ(account_of(client, account).value("reason_code", ""), "storage_full")
      << account_of(client, account).dump();
  EXPECT_EQ(count_with_subject(messages_of(client, account), big), 0);
}

}  // namespace
}  // namespace connector::test

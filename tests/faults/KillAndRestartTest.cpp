// Nothing lost, nothing twice: the host runs as its own process with the e-mail (IMAP) and
// WhatsApp plugins while mail comes in through real Postfix and Dovecot and WhatsApp messages
// through the WhatsApp test server; it is killed with SIGKILL at random moments and started again
// on the same data folder, round after round. At the end every message the senders sent is stored
// exactly once, on its sender's case, and every attachment's bytes are in the attachment store.
//
// The size comes from the environment: FAULTS_MESSAGES (default 300) messages, half e-mail and
// half WhatsApp, over FAULTS_ROUNDS (default 4) kill-and-restart rounds; FAULTS_SEED (default:
// from the clock, printed) repeats a run's choices. scripts/faults runs 10,000 over 20 rounds.
#include <gtest/gtest.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "ApiClient.hpp"
#include "HostProcess.hpp"
#include "StoredAttachments.hpp"
#include "TempDir.hpp"
#include "TestServer.hpp"
#include "mail/MailServerFixture.hpp"

namespace connector::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char *kAttendantPhone = "5511900000001";
constexpr int kSendersPerChannel = 5;

int env_int(const char *name, int fallback) {
  const char *text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::atoi(text) : fallback;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char *>(bytes.data()), bytes.size());
  char hex[2 * sizeof digest + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

std::string base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char *>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// One message of the run, decided before anything is sent.
struct Planned {
  std::string marker;  // "fault-000123": the subject of a mail, the text of a WhatsApp message
  bool mail = false;
  int sender = 0;  // which of the channel's senders
  struct Attachment {
    std::string name;
    std::string mime;
    std::string bytes;
  };
  std::vector<Attachment> attachments;
};

std::string mail_sender(int sender) {
  return "client-" + std::to_string(sender) + "@customers.example";
}
std::string whatsapp_sender(int sender) { return "55219777700" + std::to_string(10 + sender); }

// Half e-mail, half WhatsApp, senders in turn; about one mail in six carries attachments (some
// two) and one WhatsApp message in five carries an image or a document.
std::vector<Planned> plan(int count, std::mt19937 &random) {
  std::vector<Planned> messages;
  auto bytes = [&](size_t size) {
    std::string out(size, '\0');
    for (auto &c : out) c = static_cast<char>(random() & 0xff);
    return out;
  };
  for (int i = 0; i < count; ++i) {
    Planned m;
    char marker[32];
    std::snprintf(marker, sizeof marker, "fault-%06d", i);
    m.marker = marker;
    m.mail = i % 2 == 0;
    m.sender = (i / 2) % kSendersPerChannel;
    const int nth = i / 2;
    if (m.mail && nth % 6 == 3) {
      const int files = nth % 12 == 3 ? 2 : 1;
      for (int f = 0; f < files; ++f) {
        m.attachments.push_back({m.marker + "-" + std::to_string(f) + ".bin",
                                 "application/octet-stream", bytes(1000 + random() % 60000)});
      }
    }
    if (!m.mail && nth % 5 == 2) {
      const bool image = nth % 10 == 2;
      m.attachments.push_back({m.marker + (image ? ".jpg" : ".pdf"),
                               image ? "image/jpeg" : "application/pdf",
                               bytes(1000 + random() % 60000)});
    }
    messages.push_back(std::move(m));
  }
  return messages;
}

std::string raw_mail(const Planned &m) {
  std::string mail = "From: Client " + std::to_string(m.sender) + " <" + mail_sender(m.sender) +
                     ">\r\nTo: <" + std::string(MailServerFixture::kAgent) +
                     ">\r\nSubject: " + m.marker + "\r\nMessage-ID: <" + m.marker + "." +
                     std::to_string(::getpid()) +
                     "@customers.example>\r\nDate: Sat, 05 Dec 2026 01:00:00 +0000\r\n"
                     "MIME-Version: 1.0\r\n";
  const std::string text = "Message " + m.marker + " from client " + std::to_string(m.sender);
  if (m.attachments.empty()) {
    return mail + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n";
  }
  const std::string boundary = "b-" + m.marker;
  mail += "Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n--" + boundary +
          "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n";
  for (const auto &a : m.attachments) {
    mail += "--" + boundary + "\r\nContent-Type: " + a.mime + "; name=\"" + a.name +
            "\"\r\nContent-Disposition: attachment; filename=\"" + a.name +
            "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    const std::string encoded = base64(a.bytes);
    for (size_t at = 0; at < encoded.size(); at += 76) mail += encoded.substr(at, 76) + "\r\n";
  }
  return mail + "--" + boundary + "--\r\n";
}

void send(const Planned &m, const MailServerFixture &mail, const WhatsAppTestServer &whatsapp) {
  if (m.mail) {
    mail.deliver(mail_sender(m.sender), MailServerFixture::kAgent, raw_mail(m));
    return;
  }
  Json message = {{"from", whatsapp_sender(m.sender)},
                  {"to", kAttendantPhone},
                  {"text", m.marker},
                  {"push_name", "Contact " + std::to_string(m.sender)}};
  if (!m.attachments.empty()) {
    const auto &a = m.attachments[0];
    message["media"] = {{"kind", a.mime == "image/jpeg" ? "image" : "document"},
                        {"data", base64(a.bytes)},
                        {"mime", a.mime},
                        {"file_name", a.name}};
  }
  whatsapp.send(message);
}

// What the host stored, read from its database file (read-only, with the host stopped).
struct Stored {
  int64_t id = 0;
  std::string account;
  std::string sender;
  std::string marker;
  int64_t case_id = 0;  // 0: on no case
  std::vector<std::string> attachments;
};

std::vector<Stored> read_store(const std::filesystem::path &database) {
  sqlite3 *db = nullptr;
  if (sqlite3_open_v2(database.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << database << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return {};
  }
  std::vector<Stored> stored;
  std::map<int64_t, size_t> by_id;
  const std::regex marker("fault-[0-9]{6}");
  auto each = [&](const char *sql, const std::function<void(sqlite3_stmt *)> &row) {
    sqlite3_stmt *statement = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &statement, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    while (sqlite3_step(statement) == SQLITE_ROW) row(statement);
    sqlite3_finalize(statement);
  };
  auto text = [](sqlite3_stmt *s, int column) {
    const auto *value = sqlite3_column_text(s, column);
    return value != nullptr ? std::string(reinterpret_cast<const char *>(value)) : std::string();
  };
  each(
      "SELECT m.id, m.account_id, m.sender, m.subject || ' ' || m.text_body, "
      "COALESCE(l.case_id, 0) FROM messages m LEFT JOIN message_links l ON l.message_id = m.id "
      "WHERE m.direction = 'inbound'",
      [&](sqlite3_stmt *s) {
        Stored m;
        m.id = sqlite3_column_int64(s, 0);
        m.account = text(s, 1);
        m.sender = text(s, 2);
        std::smatch found;
        const std::string body = text(s, 3);
        if (std::regex_search(body, found, marker)) m.marker = found.str();
        m.case_id = sqlite3_column_int64(s, 4);
        by_id[m.id] = stored.size();
        stored.push_back(std::move(m));
      });
  each("SELECT message_id, attachment_id FROM message_attachments", [&](sqlite3_stmt *s) {
    auto at = by_id.find(sqlite3_column_int64(s, 0));
    if (at != by_id.end()) stored[at->second].attachments.push_back(text(s, 1));
  });
  sqlite3_close(db);
  return stored;
}

// The run: servers, the host's folder and configuration, and the host process of the moment.
class KillAndRestart : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "Dovecot and Postfix need root";
    messages_ = std::max(2 * kSendersPerChannel, env_int("FAULTS_MESSAGES", 300));
    rounds_ = std::max(1, env_int("FAULTS_ROUNDS", 4));
    seed_ =
        static_cast<unsigned>(env_int("FAULTS_SEED", static_cast<int>(::time(nullptr) % 100000)));
    std::printf("fault injection: %d messages, %d rounds, FAULTS_SEED=%u\n", messages_, rounds_,
                seed_);
    mail_ = std::make_unique<MailServerFixture>();
    whatsapp_ = std::make_unique<WhatsAppTestServer>();
    config_ =
        dir_.write("host.yaml", "listen:\n  port: 0\ndata_dir: data\nlog:\n  level: info\n" +
                                    whatsapp_plugin_yaml(*whatsapp_) +
                                    "  email-imap:\n    library: " CONNECTOR_PLUGIN_DIR
                                    "/libconnector_email_imap.so\n    settings:\n      ca_dir: \"" +
                                    (mail_->dir() / "tls").string() + "\"\n");
  }

  // FAULTS_KEEP=<folder>: the host's folder (data, configuration, every start's output) is copied
  // there at the end, for a look at what happened.
  void TearDown() override {
    host_.reset();
    const char *keep = std::getenv("FAULTS_KEEP");
    if (keep == nullptr || *keep == '\0') return;
    std::error_code ec;
    std::filesystem::copy(dir_.path(), keep, std::filesystem::copy_options::recursive, ec);
    std::printf("kept the host's folder in %s%s\n", keep, ec ? (": " + ec.message()).c_str() : "");
  }

  // Starts the host (the first start signs the admin in); false when it does not run.
  bool start() {
    ++starts_;
    host_ = std::make_unique<HostProcess>(config_, output());
    if (token_.empty()) {
      auto admin = host_->sign_in();
      if (!admin) return false;
      token_ = admin->token;
      port_ = admin->port;
      return true;
    }
    port_ = host_->wait_until_running(60s);
    return port_ != 0;
  }
  std::filesystem::path output() const {
    return dir_ / ("host-" + std::to_string(starts_) + ".txt");
  }

  ApiClient api() const { return ApiClient(port_, token_); }
  std::string state_of(const std::string &account) const {
    return api().get("/api/v1/accounts/" + account).json().value("state", "");
  }

  void connect_accounts() {
    auto created = api().post("/api/v1/accounts", {{"plugin", "email-imap"}, {"label", "mail"}});
    ASSERT_EQ(created.status, 201) << created.body;
    mail_account_ = created.json()["id"];
    auto connected = api().post("/api/v1/accounts/" + mail_account_ + "/connect",
                                {{"values",
                                  {{"provider", "imap"},
                                   {"address", MailServerFixture::kAgent},
                                   {"password", MailServerFixture::kPassword},
                                   {"imap_host", "127.0.0.1"},
                                   {"imap_port", mail_->imap_starttls_port()},
                                   {"imap_security", "starttls"},
                                   {"smtp_host", "127.0.0.1"},
                                   {"smtp_port", mail_->submission_port()},
                                   {"smtp_security", "starttls"},
                                   {"ca_file", mail_->ca_file()}}}});
    ASSERT_EQ(connected.status, 202) << connected.body;

    created = api().post("/api/v1/accounts", {{"plugin", "whatsapp"}, {"label", "whatsapp"}});
    ASSERT_EQ(created.status, 201) << created.body;
    whatsapp_account_ = created.json()["id"];
    connected = api().post("/api/v1/accounts/" + whatsapp_account_ + "/connect",
                           {{"values", Json::object()}});
    ASSERT_EQ(connected.status, 202) << connected.body;
    std::string qr;
    ASSERT_TRUE(eventually(
        [&] {
          auto answer = api().get("/api/v1/accounts/" + whatsapp_account_ + "/qr");
          if (answer.status == 200) qr = answer.json().value("payload", "");
          return !qr.empty();
        },
        30s))
        << "no QR code for the WhatsApp account";
    whatsapp_->scan(qr, kAttendantPhone);

    ASSERT_TRUE(eventually([&] { return state_of(whatsapp_account_) == "connected"; }, 60s))
        << api().get("/api/v1/accounts/" + whatsapp_account_).body;
    ASSERT_TRUE(eventually([&] { return state_of(mail_account_) == "connected"; }, 60s))
        << api().get("/api/v1/accounts/" + mail_account_).body;
  }

  // How many messages of this run the host holds now, counted through the API.
  size_t markers_stored() const {
    std::set<std::string> markers;
    for (const std::string &account : {mail_account_, whatsapp_account_}) {
      std::string before;
      for (;;) {
        auto page = api().get("/api/v1/accounts/" + account + "/messages?limit=200" +
                              (before.empty() ? "" : "&before=" + before));
        if (page.status != 200) return markers.size();
        const Json answer = page.json();
        for (const auto &m : answer["items"]) {
          const std::string shown = m.value("subject", "") + " " + m.value("text", "");
          const auto at = shown.find("fault-");
          if (at != std::string::npos) markers.insert(shown.substr(at, 12));
        }
        if (!answer.contains("next_before") || answer["next_before"].is_null()) break;
        before = answer["next_before"].is_string() ? answer["next_before"].get<std::string>()
                                                   : answer["next_before"].dump();
      }
    }
    return markers.size();
  }

  // Waits until the host holds `count` messages of the run; gives up when none came for 120 s.
  bool wait_for_stored(size_t count) const {
    size_t last = 0;
    auto last_progress = Clock::now();
    for (;;) {
      const size_t now = markers_stored();
      if (now >= count) return true;
      if (now != last) {
        last = now;
        last_progress = Clock::now();
      } else if (Clock::now() - last_progress > 120s) {
        std::printf("stuck at %zu of %zu messages\n", now, count);
        return false;
      }
      std::this_thread::sleep_for(1s);
    }
  }

  TempDir dir_;
  int messages_ = 0;
  int rounds_ = 0;
  unsigned seed_ = 0;
  std::unique_ptr<MailServerFixture> mail_;
  std::unique_ptr<WhatsAppTestServer> whatsapp_;
  std::filesystem::path config_;
  std::unique_ptr<HostProcess> host_;
  int starts_ = 0;
  uint16_t port_ = 0;
  std::string token_;
  std::string mail_account_;
  std::string whatsapp_account_;
};

TEST_F(KillAndRestart, EveryMessageIsStoredOnceOnItsSendersCaseWithItsAttachments) {
  std::mt19937 random(seed_);
  const std::vector<Planned> messages = plan(messages_, random);
  const auto began = Clock::now();
  ASSERT_TRUE(start()) << read_file(output());
  connect_accounts();
  if (HasFatalFailure()) return;

  // Every sender's first message comes while the host runs, so each sender has a case before
  // the faults begin (a backlog message joins its contact's case but never opens one).
  const size_t warm_up = 2 * kSendersPerChannel;
  for (size_t i = 0; i < warm_up; ++i) send(messages[i], *mail_, *whatsapp_);
  ASSERT_TRUE(wait_for_stored(warm_up)) << "the first messages did not arrive";

  // Two senders (e-mail and WhatsApp) send the rest as fast as the servers take them.
  std::atomic<size_t> sent{warm_up};
  std::atomic<bool> send_failed{false};
  auto sender = [&](bool mail) {
    for (size_t i = warm_up; i < messages.size(); ++i) {
      if (messages[i].mail != mail) continue;
      try {
        send(messages[i], *mail_, *whatsapp_);
      } catch (const std::exception &e) {
        std::printf("sending %s failed: %s\n", messages[i].marker.c_str(), e.what());
        send_failed = true;
        return;
      }
      ++sent;
    }
  };
  std::thread mail_sender_thread(sender, true);
  std::thread whatsapp_sender_thread(sender, false);

  // Each round kills the host once a share of the messages is sent and it ran for a random
  // while (from just started to 4 s), then starts it again after a random pause.
  for (int round = 1; round <= rounds_; ++round) {
    const size_t due = warm_up + (messages.size() - warm_up) * (round - 1) / rounds_ +
                       random() % std::max<size_t>(1, (messages.size() - warm_up) / rounds_);
    const auto up_for = std::chrono::milliseconds(random() % 4000);
    const auto started = Clock::now();
    while (sent < due && !send_failed && Clock::now() - started < 300s) {
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_until(started + up_for);
    std::printf(
        "round %d: SIGKILL after %zu sent, %lld ms up\n", round, sent.load(),
        static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()));
    std::fflush(stdout);
    host_->stop(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 1000));
    ASSERT_TRUE(start()) << "the host did not start again after round " << round << ":\n"
                         << read_file(output());
  }
  mail_sender_thread.join();
  whatsapp_sender_thread.join();
  ASSERT_FALSE(send_failed);
  const auto sending_done = Clock::now();

  // The last host takes in what is still waiting, then stops cleanly.
  const bool all_arrived = wait_for_stored(messages.size());
  const auto arrived = Clock::now();
  EXPECT_TRUE(all_arrived) << "not every message arrived; the check below names the missing. "
                           << "The WhatsApp test server's devices: " << whatsapp_->devices();
  EXPECT_EQ(host_->stop(SIGTERM), 0) << read_file(output());
  auto seconds = [&](Clock::time_point t) {
    return std::chrono::duration<double>(t - began).count();
  };
  std::printf("sent %zu messages in %.1f s with %d kills; all stored at %.1f s\n", messages.size(),
              seconds(sending_done), rounds_, seconds(arrived));

  // Every message once, from its sender, on that sender's case, with its attachments' bytes.
  const auto stored = read_store(dir_ / "data" / "connector-host.db");
  std::map<std::string, std::vector<const Stored *>> by_marker;
  for (const auto &m : stored) {
    EXPECT_FALSE(m.marker.empty()) << "a message that was never sent: id " << m.id;
    by_marker[m.marker].push_back(&m);
  }
  std::map<std::string, int64_t> case_of_sender;
  std::map<int64_t, std::string> sender_of_case;
  int missing = 0;
  int duplicated = 0;
  size_t attachments_checked = 0;
  for (const auto &planned : messages) {
    const auto &copies = by_marker[planned.marker];
    if (copies.empty()) {
      if (++missing <= 20) ADD_FAILURE() << planned.marker << " is missing";
      continue;
    }
    if (copies.size() > 1 && ++duplicated <= 20) {
      ADD_FAILURE() << planned.marker << " is stored " << copies.size() << " times";
    }
    const Stored &m = *copies[0];
    const std::string from =
        planned.mail ? mail_sender(planned.sender) : "+" + whatsapp_sender(planned.sender);
    EXPECT_EQ(m.account, planned.mail ? mail_account_ : whatsapp_account_) << planned.marker;
    EXPECT_EQ(m.sender, from) << planned.marker;
    EXPECT_NE(m.case_id, 0) << planned.marker << " is on no case";
    auto [known, first] = case_of_sender.emplace(from, m.case_id);
    EXPECT_EQ(known->second, m.case_id) << planned.marker << " is not on its sender's case";
    auto [owner, new_case] = sender_of_case.emplace(m.case_id, from);
    EXPECT_EQ(owner->second, from) << planned.marker << " is on another sender's case";
    for (const auto &a : planned.attachments) {
      const std::string id = sha256_hex(a.bytes);
      EXPECT_NE(std::find(m.attachments.begin(), m.attachments.end(), id), m.attachments.end())
          << planned.marker << " lacks its attachment " << a.name;
      const std::string held = stored_attachment(dir_ / "data", id);
      EXPECT_TRUE(held.size() == a.bytes.size() && sha256_hex(held) == id)
          << planned.marker << ": the store does not hold the bytes of " << a.name;
      ++attachments_checked;
    }
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_EQ(case_of_sender.size(), static_cast<size_t>(2 * kSendersPerChannel));
  std::printf("checked %zu messages (%zu stored), %zu attachments: %d missing, %d duplicated\n",
              messages.size(), stored.size(), attachments_checked, missing, duplicated);
}

}  // namespace
}  // namespace connector::test

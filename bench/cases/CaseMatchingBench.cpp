// The case-matching engine against a store of 1,000,000 contacts and cases (issue 4):
//
//   1. matching: CaseMatcher::decide per message (WhatsApp ids without the ninth digit, and
//      mail with a case id in the subject checked against the sender) — throughput and p99
//      latency. Target: p99 ≤ 20 µs.
//   2. ingest: the whole path a plugin's message event takes (AccountService::emit: parse,
//      store, match, link, notify) in messages per second, beside raw SQLite inserting the same
//      rows in the same run: the message, its link and the case's updated_at (what the host
//      writes), one transaction per message, prepared statements, on the same schema (indexes
//      and trigger) with the same durability (WAL, synchronous = NORMAL), interleaved in blocks
//      so both see the same machine. Target: ratio ≥ 0.5.
//
// Usage: case_matching_bench [contacts=1000000] [matches=200000] [ingests=20000]
// The store is built in a temporary folder (about 400 MB for 1M contacts) and removed after.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "BenchTable.hpp"
#include "accounts/AccountService.hpp"
#include "accounts/EventHub.hpp"
#include "cases/Casework.hpp"
#include "log/Log.hpp"
#include "store/AccountValues.hpp"
#include "store/AttachmentStore.hpp"
#include "store/Conversations.hpp"
#include "store/Database.hpp"
#include "store/SecretBox.hpp"

namespace {

using namespace connector;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char *kAttendant = "att-bench";
constexpr const char *kWhatsApp = "acc-wa";
constexpr const char *kMail = "acc-mail";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Customer i: phone +55 11 9xxxx-xxxx (stored with the ninth digit), address ci@example.com,
// and case i+1, open.
std::string phone_digits(int64_t i, bool ninth) {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%08lld", static_cast<long long>(60000000 + i));
  return std::string("5511") + (ninth ? "9" : "") + digits;
}
std::string address(int64_t i) { return "c" + std::to_string(i) + "@example.com"; }

class RawDb {
 public:
  explicit RawDb(const fs::path &file) {
    sqlite3_open(file.c_str(), &db_);
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode = WAL");
    exec("PRAGMA synchronous = NORMAL");
    exec("PRAGMA foreign_keys = ON");
  }
  ~RawDb() { sqlite3_close(db_); }
  void exec(const char *sql) {
    char *error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      std::fprintf(stderr, "sqlite: %s: %s\n", sql, error);
      std::exit(1);
    }
  }
  sqlite3_stmt *prepare(const char *sql) {
    sqlite3_stmt *stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
      std::fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db_));
      std::exit(1);
    }
    return stmt;
  }
  static void run(sqlite3_stmt *stmt) {
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      std::fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(sqlite3_db_handle(stmt)));
      std::exit(1);
    }
    sqlite3_reset(stmt);
  }
  static void text(sqlite3_stmt *stmt, int i, const std::string &value) {
    sqlite3_bind_text(stmt, i, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  }
  sqlite3 *handle() { return db_; }

 private:
  sqlite3 *db_ = nullptr;
};

// One transaction, prepared statements, rows in key order.
void generate(const fs::path &file, int64_t contacts) {
  RawDb raw(file);
  raw.exec("BEGIN");
  raw.exec(
      "INSERT INTO attendants (id, name, role, created_at) VALUES ('att-bench', 'bench', "
      "'attendant', 0)");
  raw.exec(
      "INSERT INTO accounts (id, attendant_id, plugin_id, created_at, updated_at) VALUES "
      "('acc-wa', 'att-bench', 'whatsapp', 0, 0), ('acc-mail', 'att-bench', 'email', 0, 0)");
  sqlite3_stmt *contact =
      raw.prepare("INSERT INTO contacts (id, attendant_id, created_at) VALUES (?, 'att-bench', 0)");
  sqlite3_stmt *identity = raw.prepare(
      "INSERT INTO contact_identities (attendant_id, kind, value, contact_id) "
      "VALUES ('att-bench', ?, ?, ?)");
  sqlite3_stmt *kase = raw.prepare(
      "INSERT INTO cases (id, attendant_id, contact_id, title, status, created_at, updated_at) "
      "VALUES (?, 'att-bench', ?, 'case', 'open', 0, 0)");
  for (int64_t i = 0; i < contacts; ++i) {
    const int64_t id = i + 1;
    sqlite3_bind_int64(contact, 1, id);
    RawDb::run(contact);
    RawDb::text(identity, 1, "phone");
    RawDb::text(identity, 2, "+" + phone_digits(i, true));
    sqlite3_bind_int64(identity, 3, id);
    RawDb::run(identity);
    RawDb::text(identity, 1, "email");
    RawDb::text(identity, 2, address(i));
    RawDb::run(identity);
    sqlite3_bind_int64(kase, 1, id);
    sqlite3_bind_int64(kase, 2, id);
    RawDb::run(kase);
  }
  for (auto *stmt : {contact, identity, kase}) sqlite3_finalize(stmt);
  raw.exec("COMMIT");
  raw.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

store::NewMessage whatsapp_message(int64_t i) {
  store::NewMessage m;
  m.channel = "whatsapp";
  m.direction = "inbound";
  m.link_keys = {{"whatsapp_ids", {phone_digits(i, false) + "@s.whatsapp.net"}}};
  return m;
}

store::NewMessage mail_message(int64_t i) {
  store::NewMessage m;
  m.channel = "email";
  m.direction = "inbound";
  m.subject = "RES: ENC: [#" + std::to_string(i + 1) + "] Pedido";
  m.link_keys = {{"emails", {address(i)}},
                 {"thread_refs", {"<nowhere-" + std::to_string(i) + "@x>"}}};
  return m;
}

void bench_matching(cases::Casework &work, int64_t contacts, int64_t count) {
  std::mt19937_64 random(42);
  std::uniform_int_distribution<int64_t> pick(0, contacts - 1);
  std::vector<store::NewMessage> messages;
  messages.reserve(static_cast<size_t>(count));
  for (int64_t n = 0; n < count; ++n) {
    const int64_t i = pick(random);
    messages.push_back(n % 2 == 0 ? whatsapp_message(i) : mail_message(i));
  }
  const int64_t now = store::now_ms();
  // Warm the page cache as a running host's would be.
  int64_t linked = 0;
  for (int64_t n = 0; n < std::min<int64_t>(count, 20000); ++n) {
    linked +=
        work.matcher().decide(kAttendant, messages[static_cast<size_t>(n)], now).case_id ? 1 : 0;
  }

  std::vector<double> micros;
  micros.reserve(messages.size());
  linked = 0;
  const auto start = Clock::now();
  for (const auto &m : messages) {
    const auto t0 = Clock::now();
    auto decision = work.matcher().decide(kAttendant, m, now);
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    linked += decision.case_id ? 1 : 0;
  }
  const double total = seconds_since(start);
  std::sort(micros.begin(), micros.end());
  const auto at = [&](double q) { return micros[static_cast<size_t>(q * (micros.size() - 1))]; };
  std::printf(
      "matching: %lld messages (half WhatsApp without the ninth digit, half mail with a\n"
      "          subject id checked against the sender), %lld matched an existing case\n",
      static_cast<long long>(count), static_cast<long long>(linked));
  std::printf("  throughput  %10.0f messages/s\n", static_cast<double>(count) / total);
  std::printf("  p50         %10.2f us\n", at(0.50));
  std::printf("  p99         %10.2f us   (target <= 20 us: %s)\n", at(0.99),
              at(0.99) <= 20.0 ? "met" : "NOT met");
  std::printf("  max         %10.2f us\n", micros.back());
  bench::row("cases", "matching p99 (us), " + std::to_string(contacts) + " contacts", at(0.99), "us",
             "target", 20.0, "ratio <= 1");
  if (linked != count)
    std::printf("  WARNING: %lld messages found no case\n", static_cast<long long>(count - linked));
}

std::string event_for(int64_t i, int64_t n) {
  const std::string jid = phone_digits(i, false) + "@s.whatsapp.net";
  return nlohmann::json{{"type", "message"},
                        {"direction", "inbound"},
                        {"external_id", "bench-" + std::to_string(n)},
                        {"from", jid},
                        {"text", "mensagem " + std::to_string(n)},
                        {"timestamp", 1700000000000 + n},
                        {"link", {{"whatsapp_ids", {jid}}}}}
      .dump();
}

void bench_ingest(const fs::path &file, store::Database &db, cases::Casework &work,
                  accounts::AccountService &accounts, int64_t contacts, int64_t count) {
  std::mt19937_64 random(7);
  std::uniform_int_distribution<int64_t> pick(0, contacts - 1);
  std::vector<int64_t> who(static_cast<size_t>(count));
  for (auto &i : who) i = pick(random);

  RawDb raw(file);
  sqlite3_stmt *message = raw.prepare(
      "INSERT INTO messages (account_id, channel, direction, external_id, sender, recipient, "
      "subject, text_body, html_body, sent_at, stored_at, delivery_status, automatic, link_keys, "
      "details) VALUES ('acc-wa', 'whatsapp', 'inbound', ?, ?, '', '', ?, '', ?, ?, '', 0, ?, "
      "'{}')");
  sqlite3_stmt *link = raw.prepare(
      "INSERT INTO message_links (message_id, case_id, method, linked_by, linked_at) "
      "VALUES (?, ?, 'phone', '', ?)");
  sqlite3_stmt *touch = raw.prepare("UPDATE cases SET updated_at = ? WHERE id = ?");
  sqlite3_stmt *begin = raw.prepare("BEGIN IMMEDIATE");
  sqlite3_stmt *commit = raw.prepare("COMMIT");

  double host_seconds = 0, raw_seconds = 0;
  int64_t failures = 0;
  constexpr int64_t kBlock = 1000;
  for (int64_t from = 0; from < count; from += kBlock) {
    const int64_t to = std::min(count, from + kBlock);

    auto start = Clock::now();
    for (int64_t n = from; n < to; ++n) {
      if (accounts.emit("whatsapp", kWhatsApp, event_for(who[static_cast<size_t>(n)], n)) !=
          CN_OK) {
        ++failures;
      }
    }
    host_seconds += seconds_since(start);

    start = Clock::now();
    for (int64_t n = from; n < to; ++n) {
      const int64_t i = who[static_cast<size_t>(n)];
      const std::string jid = phone_digits(i, false) + "@s.whatsapp.net";
      RawDb::run(begin);
      RawDb::text(message, 1, "raw-" + std::to_string(n));
      RawDb::text(message, 2, jid);
      RawDb::text(message, 3, "mensagem " + std::to_string(n));
      sqlite3_bind_int64(message, 4, 1700000000000 + n);
      sqlite3_bind_int64(message, 5, store::now_ms());
      RawDb::text(message, 6, nlohmann::json{{"whatsapp_ids", {jid}}}.dump());
      RawDb::run(message);
      sqlite3_bind_int64(link, 1, sqlite3_last_insert_rowid(raw.handle()));
      sqlite3_bind_int64(link, 2, i + 1);
      sqlite3_bind_int64(link, 3, store::now_ms());
      RawDb::run(link);
      sqlite3_bind_int64(touch, 1, store::now_ms());
      sqlite3_bind_int64(touch, 2, i + 1);
      RawDb::run(touch);
      RawDb::run(commit);
    }
    raw_seconds += seconds_since(start);
  }
  for (auto *stmt : {message, link, touch, begin, commit}) sqlite3_finalize(stmt);

  int64_t linked = 0;
  (void)db.run(
      "SELECT COUNT(*) FROM messages m JOIN message_links l ON l.message_id = m.id "
      "WHERE m.external_id LIKE 'bench-%' AND l.case_id = (SELECT contact_id FROM "
      "contact_identities WHERE attendant_id = 'att-bench' AND kind = 'phone' AND "
      "value = '+' || substr(m.sender, 1, 4) || '9' || substr(m.sender, 5, 8))",
      {}, [&](const store::Row &row) { linked = row.integer(0); });
  const double host_rate = static_cast<double>(count) / host_seconds;
  const double raw_rate = static_cast<double>(count) / raw_seconds;
  std::printf("ingest: %lld WhatsApp messages to existing customers, in blocks of %lld\n",
              static_cast<long long>(count), static_cast<long long>(kBlock));
  std::printf("  host path (emit: parse, store, match, link, notify) %10.0f messages/s\n",
              host_rate);
  std::printf("  raw SQLite (message, link, case row; 1 txn each)    %10.0f messages/s\n",
              raw_rate);
  std::printf("  ratio       %10.2f        (target >= 0.5: %s)\n", host_rate / raw_rate,
              host_rate / raw_rate >= 0.5 ? "met" : "NOT met");
  bench::row("cases", "ingest path (messages/s)", host_rate, "msg/s", "raw SQLite, same rows",
             raw_rate, "ratio >= 0.5");
  std::printf("  on the right case: %lld of %lld; refused: %lld\n", static_cast<long long>(linked),
              static_cast<long long>(count), static_cast<long long>(failures));
}

}  // namespace

int main(int argc, char **argv) {
  const int64_t contacts = argc > 1 ? std::atoll(argv[1]) : 1000000;
  const int64_t matches = argc > 2 ? std::atoll(argv[2]) : 200000;
  const int64_t ingests = argc > 3 ? std::atoll(argv[3]) : 20000;
  log::init("warn");
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each figure as soon as it is known

  const fs::path dir = fs::temp_directory_path() / ("case-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "bench.db";
  {
    auto db = store::Database::open(file);  // the schema, through the host's own migrations
    if (!db) {
      std::fprintf(stderr, "%s\n", db.failure().message.c_str());
      return 1;
    }
    auto start = Clock::now();
    generate(file, contacts);
    std::printf("store: %lld contacts, %lld identities, %lld open cases generated in %.1f s\n",
                static_cast<long long>(contacts), static_cast<long long>(2 * contacts),
                static_cast<long long>(contacts), seconds_since(start));

    accounts::EventHub events;
    std::atomic<int64_t> notified{0};
    events.subscribe(kAttendant, false, [&](const std::shared_ptr<const std::string> &) {
      ++notified;
      return true;
    });
    auto work = cases::Casework::open(**db, events, config::Matching{});
    if (!work) {
      std::fprintf(stderr, "%s\n", work.failure().message.c_str());
      return 1;
    }
    bench_matching(**work, contacts, matches);

    auto secrets = store::SecretBox::load(dir / "secret.key");
    store::AccountValues values(**db, *secrets);
    store::AttachmentStore attachments(**db, dir / "attachments");
    store::Conversations conversations(**db);
    accounts::AccountService accounts(**db, values, attachments, conversations, events);
    cases::Casework *engine = work->get();
    accounts.set_message_filer(
        [engine](const accounts::Account &account, const store::NewMessage &m,
                 std::optional<int64_t> case_id,
                 const std::string &by) -> Expected<store::Conversations::Stored> {
          auto filed = engine->file_sent(account.id, account.attendant_id, m, case_id, by);
          if (!filed) return filed.failure();
          return filed->stored;
        });
    bench_ingest(file, **db, **work, accounts, contacts, ingests);
    std::printf("  live events delivered: %lld\n", static_cast<long long>(notified.load()));
  }
  fs::remove_all(dir);
  return 0;
}

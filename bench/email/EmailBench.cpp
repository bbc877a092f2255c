// E-mail benchmarks (not a test): run by hand, prints numbers.
//
//   email_bench sync [N]      initial sync of N (5,000) mails from Dovecot through the plugin
//                             (fetch, parse, store attachments, build link keys) against isync's
//                             mbsync mirroring the same mailbox in the same run; prints both
//                             times and the ratio (target: ≤ 0.5).
//   email_bench latency [N]   N (100) mails handed to Postfix one by one; the time from Postfix
//                             accepting each (end of the SMTP DATA) to the host's WebSocket
//                             pushing message.new (a real host in this process); prints p50
//                             and p95 (target p95 ≤ 1 s).
//
// Both start their own Dovecot and Postfix (tests/support/mail/), so they need root.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "BenchTable.hpp"
#include "TestHost.hpp"
#include "mail/MailServerFixture.hpp"

namespace {

using connector::test::EventStream;
using connector::test::MailServerFixture;
using connector::test::run_command;
using connector::test::TestHost;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

json form(const MailServerFixture &servers) {
  return {{"provider", "imap"},
          {"address", MailServerFixture::kAgent},
          {"password", MailServerFixture::kPassword},
          {"imap_host", "127.0.0.1"},
          {"imap_port", servers.imaps_port()},
          {"imap_security", "tls"},
          {"smtp_host", "127.0.0.1"},
          {"smtp_port", servers.smtps_port()},
          {"smtp_security", "tls"},
          {"ca_file", servers.ca_file()}};
}

// Writes N small mails straight into the agent's Maildir (as Dovecot's LMTP would).
void fill_mailbox(const MailServerFixture &servers, int count) {
  const auto maildir = servers.dir() / "mail" / MailServerFixture::kAgent / "Maildir";
  for (const char *sub : {"new", "cur", "tmp"}) std::filesystem::create_directories(maildir / sub);
  for (int i = 0; i < count; ++i) {
    std::ofstream file(
        maildir / "new" / (std::to_string(1700000000 + i) + ".bench" + std::to_string(i) + ".host"),
        std::ios::binary);
    file << "From: Customer " << i % 50 << " <customer" << i % 50 << "@customer.test>\r\n"
         << "To: agent@example.test\r\nSubject: Order question [#" << 1000 + i % 300 << "] " << i
         << "\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench-" << i
         << "@customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
         << "\r\nOlá, this is mail number " << i << ".\r\n"
         << std::string(400, 'x') << "\r\n";
  }
  run_command("chown -R nobody:nogroup " + (servers.dir() / "mail").string());
}

double time_mbsync(const MailServerFixture &servers) {
  const auto dir = servers.dir() / "mbsync";
  std::filesystem::create_directories(dir / "mirror");
  std::ofstream(dir / "mbsyncrc")
      << "IMAPAccount bench\nHost localhost\nPort " << servers.imaps_port() << "\nUser "
      << MailServerFixture::kAgent << "\nPass " << MailServerFixture::kPassword
      << "\nSSLType IMAPS\nCertificateFile " << servers.ca_file() << "\n\n"
      << "IMAPStore remote\nAccount bench\n\nMaildirStore local\nPath " << (dir / "mirror").string()
      << "/\nInbox " << (dir / "mirror" / "INBOX").string() << "\n\n"
      << "Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nSync Pull\nCreate Near\n"
      << "SyncState *\n";
  const auto start = Clock::now();
  run_command("mbsync -q -c " + (dir / "mbsyncrc").string() + " bench");
  return seconds_since(start);
}

// The real host in this process with the e-mail plugin: from the connect request to the host's
// WebSocket pushing message.new for the last mail (each one fetched, parsed, stored and linked).
std::string plugin_yaml(const MailServerFixture &servers) {
  return "plugins:\n  email-imap:\n    library: " CONNECTOR_PLUGIN_DIR
         "/libconnector_email_imap.so\n    settings:\n      timeout_s: 30\n      ca_dir: " +
         (servers.dir() / "tls").string() + "\n";
}

double time_plugin(int count, const MailServerFixture &servers) {
  TestHost host(plugin_yaml(servers));
  EventStream events(host.port(), host.admin_token());
  const std::string account = TestHost::create_account(host.admin(), "email-imap");
  const auto start = Clock::now();
  auto connected =
      host.admin().post("/api/v1/accounts/" + account + "/connect", {{"values", form(servers)}});
  if (connected.status >= 300) throw std::runtime_error("connect: " + connected.body);
  int arrived = 0;
  while (arrived < count) {
    auto event = events.next(std::chrono::seconds(60));
    if (!event)
      throw std::runtime_error("the initial sync stalled after " + std::to_string(arrived) +
                               " mails");
    if (event->value("type", "") == "message.new") ++arrived;
  }
  return seconds_since(start);
}

// Lets Dovecot index the new mails before either client is timed, so neither pays for it.
void warm_up(const MailServerFixture &servers) {
  run_command("doveadm -c " + (servers.dir() / "dovecot/dovecot.conf").string() + " fetch -u " +
              MailServerFixture::kAgent + " 'uid size.physical date.received' mailbox INBOX ALL" +
              " >/dev/null");
}

int sync_bench(int count) {
  MailServerFixture servers;
  fill_mailbox(servers, count);
  warm_up(servers);
  // The plugin first: whatever Dovecot caches for the first client helps mbsync, not us.
  const double plugin = time_plugin(count, servers);
  const double mbsync = time_mbsync(servers);
  std::printf(
      "initial sync of %d mails: plugin %.3f s, mbsync %.3f s, ratio %.2f (target <= 0.50)\n",
      count, plugin, mbsync, plugin / mbsync);
  bench::row("email", "first sync of " + std::to_string(count) + " mails (s)", plugin, "s",
             "isync mbsync, same mailbox", mbsync, "ratio <= 0.5");
  return 0;
}

// The real host in this process (tests/support/TestHost) with the e-mail plugin; the clock stops
// when the host's WebSocket pushes message.new for the mail.
int latency_bench(int count) {
  MailServerFixture servers;
  TestHost host(plugin_yaml(servers));
  EventStream events(host.port(), host.admin_token());
  const std::string account = TestHost::create_account(host.admin(), "email-imap");
  host.admin().post("/api/v1/accounts/" + account + "/connect", {{"values", form(servers)}});
  auto arrived = [&](const std::string &text) {
    return events.wait_for(
        [&](const json &e) {
          return e.value("type", "") == "message.new" && e["message"].value("text", "") == text;
        },
        std::chrono::seconds(30));
  };
  auto probe = [&](const std::string &text) {
    servers.deliver(MailServerFixture::kCustomer, MailServerFixture::kAgent,
                    "From: " + std::string(MailServerFixture::kCustomer) +
                        "\r\nTo: agent@example.test\r\nSubject: latency\r\nMessage-ID: <" + text +
                        "@customer.test>\r\n\r\n" + text + "\r\n");
  };
  // One mail first: once it is in, the initial sync is over and the plugin IDLEs.
  probe("warm-up");
  if (!arrived("warm-up")) throw std::runtime_error("the first mail never arrived");

  std::vector<double> latencies;
  for (int i = 0; i < count; ++i) {
    const std::string text = "latency-probe-" + std::to_string(i);
    probe(text);  // returns once Postfix accepted the DATA
    const auto accepted = Clock::now();
    if (!arrived(text)) throw std::runtime_error("mail " + text + " never arrived");
    latencies.push_back(seconds_since(accepted));
  }
  std::sort(latencies.begin(), latencies.end());
  auto at = [&](double q) {
    return latencies[std::min(latencies.size() - 1, size_t(q * latencies.size()))];
  };
  std::printf(
      "Postfix accept -> host WebSocket message.new over %d mails: p50 %.3f s, p95 %.3f s, "
      "max %.3f s (target p95 <= 1 s)\n",
      count, at(0.50), at(0.95), latencies.back());
  bench::row("email", "Postfix accept to WebSocket event p95 (s)", at(0.95), "s", "target p95",
             1.0, "ratio <= 1");
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  const std::string what = argc > 1 ? argv[1] : "sync";
  try {
    if (what == "sync") return sync_bench(argc > 2 ? std::atoi(argv[2]) : 5000);
    if (what == "latency") return latency_bench(argc > 2 ? std::atoi(argv[2]) : 100);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "benchmark failed: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: email_bench sync [N] | latency [N]\n");
  return 2;
}

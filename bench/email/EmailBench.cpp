// E-mail benchmarks (not a test): run by hand, prints numbers.
//
//   email_bench sync [N]      initial sync of N (5,000) mails from Dovecot through the plugin
//                             (fetch, parse, store attachments, build link keys) against isync's
//                             mbsync mirroring the same mailbox in the same run; prints both
//                             times and the ratio (target: ≤ 0.5).
//   email_bench latency [N]   N (100) mails handed to Postfix one by one; the time from Postfix
//                             accepting each (end of the SMTP DATA) to the plugin's message
//                             event reaching the host's services; prints p50 and p95
//                             (target p95 ≤ 1 s).
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

#include "../../tests/plugins/email-imap/RecordingServices.hpp"
#include "mail/MailServerFixture.hpp"
#include "plugins/PluginRegistry.hpp"

namespace {

using connector::test::MailServerFixture;
using connector::test::RecordingServices;
using connector::test::run_command;
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

std::unique_ptr<connector::plugins::PluginRegistry> load(RecordingServices &services) {
  const auto library = std::filesystem::path(CONNECTOR_PLUGIN_DIR) / "libconnector_email_imap.so";
  return std::make_unique<connector::plugins::PluginRegistry>(
      std::vector<connector::plugins::PluginSpec>{{"email-imap", library, {{"timeout_s", 30}}}},
      services);
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

double time_plugin(int count, const MailServerFixture &servers) {
  RecordingServices services(servers.dir() / "bench-attachments");
  auto registry = load(services);
  auto *plugin = registry->find("email-imap");
  const auto start = Clock::now();
  if (!plugin->connect("bench", {{"values", form(servers)}})) throw std::runtime_error("connect");
  while (services.messages().size() < static_cast<size_t>(count)) {
    if (seconds_since(start) > 600) throw std::runtime_error("initial sync did not finish");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return seconds_since(start);
}

int sync_bench(int count) {
  MailServerFixture servers;
  fill_mailbox(servers, count);
  const double mbsync = time_mbsync(servers);
  const double plugin = time_plugin(count, servers);
  std::printf(
      "initial sync of %d mails: plugin %.3f s, mbsync %.3f s, ratio %.2f (target <= 0.50)\n",
      count, plugin, mbsync, plugin / mbsync);
  return 0;
}

int latency_bench(int count) {
  MailServerFixture servers;
  RecordingServices services(servers.dir() / "bench-attachments");
  auto registry = load(services);
  auto *plugin = registry->find("email-imap");
  if (!plugin->connect("bench", {{"values", form(servers)}})) throw std::runtime_error("connect");
  if (!services.wait_for_status("connected")) throw std::runtime_error("not connected");
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let the first IDLE start

  std::vector<double> latencies;
  for (int i = 0; i < count; ++i) {
    const std::string subject = "latency probe " + std::to_string(i);
    servers.deliver(MailServerFixture::kCustomer, MailServerFixture::kAgent,
                    "From: " + std::string(MailServerFixture::kCustomer) +
                        "\r\nTo: agent@example.test\r\nSubject: " + subject + "\r\n\r\nprobe\r\n");
    const auto accepted = Clock::now();
    if (!services.wait_for_subject(subject)) throw std::runtime_error("mail " + subject + " lost");
    latencies.push_back(seconds_since(accepted));
  }
  std::sort(latencies.begin(), latencies.end());
  auto at = [&](double q) {
    return latencies[std::min(latencies.size() - 1, size_t(q * latencies.size()))];
  };
  std::printf(
      "Postfix accept -> host event over %d mails: p50 %.3f s, p95 %.3f s, max %.3f s "
      "(target p95 <= 1 s)\n",
      count, at(0.50), at(0.95), latencies.back());
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

// Real Dovecot and Postfix for the e-mail tests, started by start-mail-servers.sh on 127.0.0.1
// in a temporary folder, stopped when the fixture goes away. Needs root and the Debian packages
// of scripts/deps/apt-email.txt.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace connector::test {

class MailServerFixture {
 public:
  static constexpr const char *kPassword = "secret-pass";
  static constexpr const char *kAgent = "agent@example.test";
  static constexpr const char *kCustomer = "customer@example.test";
  static constexpr const char *kColleague = "colleague@example.test";  // for Cc
  static constexpr const char *kAuditor = "auditor@example.test";      // for Bcc

  MailServerFixture();  // throws std::runtime_error with the script's output when it fails
  ~MailServerFixture();

  uint16_t imap_starttls_port() const { return base_; }
  uint16_t imaps_port() const { return base_ + 1; }
  uint16_t smtp_mx_port() const { return base_ + 4; }
  uint16_t submission_port() const { return base_ + 5; }
  uint16_t smtps_port() const { return base_ + 6; }
  std::string ca_file() const { return (dir_ / "tls" / "ca.pem").string(); }
  std::string other_ca_file() const { return (dir_ / "tls" / "other-ca.pem").string(); }
  const std::filesystem::path &dir() const { return dir_; }

  // Hands a mail to Postfix's MX port (no auth), as a sender on the internet would.
  void deliver(const std::string &from, const std::string &to, const std::string &raw) const;

  // Waits (up to 10 s) until Postfix's queue is empty, i.e. every mail reached Dovecot.
  void wait_for_queue_empty() const;

  // The files of a user's Maildir folder ("" for INBOX, ".Sent" for Sent), new and cur.
  std::vector<std::string> mailbox(const std::string &user, const std::string &folder = "") const;

  void stop_dovecot() const;
  void start_dovecot() const;

  // Restarts Dovecot with `settings` added to its configuration ("" restores the original).
  void restart_dovecot_with(const std::string &settings) const;

 private:
  void stop_and_remove();

  std::filesystem::path dir_;
  uint16_t base_ = 0;
};

// Runs a shell command; throws with its output when it fails.
std::string run_command(const std::string &command);

}  // namespace connector::test

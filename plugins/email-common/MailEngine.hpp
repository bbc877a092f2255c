// The synchronising and sending engine shared by the e-mail plugins (password IMAP, OAuth).
//
// One engine serves every account of a plugin on ONE event-loop thread of its own: each account
// is a coroutine (connect, check SMTP, sync, IDLE or poll, reconnect with backoff), not a
// thread. Blocking work (libcurl's SMTP check) runs on a small worker pool.
//
// What it guarantees, per account:
//   - sync state is UIDVALIDITY + last UID (+ HIGHESTMODSEQ), stored through Host::put, and
//     advanced only after the host confirmed the message durable (emit returned CN_OK);
//   - nothing on the server is changed: mailboxes are opened with EXAMINE, bodies fetched with
//     BODY.PEEK;
//   - every mail gets a content-derived external_id (see MailIdentity.hpp), so restarts,
//     reconnects, UIDVALIDITY changes and double deliveries never duplicate a message.
#pragma once

#include <chrono>
#include <connector/sdk.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "MailServer.hpp"

namespace connector::email {

struct SyncSettings {
  int initial_sync_days = 30;                      // 0: the whole inbox
  uint64_t max_message_bytes = 50ull << 20;        // larger mails are recorded headers-only
  std::chrono::milliseconds idle_restart{600000};  // IDLE is renewed (liveness check) this often
  std::chrono::milliseconds poll_interval{30000};  // without IDLE
  std::chrono::milliseconds timeout{30000};        // one network step
  std::string case_id_pattern = R"(\[#(\d+)\])";   // first group: the case id in a subject
  std::string subject_case_format = "[#{id}]";     // added to a sent subject lacking its case id
  size_t fetch_batch = 500;
};

class MailEngine {
 public:
  MailEngine(sdk::Host host, SyncSettings settings);
  ~MailEngine();  // stops every account and joins the loop thread
  MailEngine(const MailEngine &) = delete;
  MailEngine &operator=(const MailEngine &) = delete;

  // Starts (or restarts) an account: IMAP login and SMTP login are checked first. With
  // `give_up_on_failure` (a connect from the form) a failed check ends in status "error";
  // otherwise network failures are retried with backoff. Returns at once.
  void start(const std::string &account_id, const MailServers &servers, bool give_up_on_failure);

  // Stops the account's session (no more events from it once this returns).
  void stop(const std::string &account_id);

  // {"type":"status","state":...,"account":...,"detail":...}
  sdk::Json status(const std::string &account_id) const;

  // Sends one message (the SDK's send verb). Blocks: call from a verb thread. Beyond the SDK's
  // members it reads "cc" and "bcc" (comma-separated; Bcc only on the envelope) and "case_id",
  // which is added to the subject in subject_case_format unless the subject already names it.
  sdk::Result<sdk::Json> send(const std::string &account_id, const sdk::Json &message);

  // Link keys of a message event this engine emitted (the SDK's link verb).
  sdk::LinkKeys link_keys(const sdk::Json &message) const;

  struct Account;
  struct Loop;

 private:
  sdk::Host host_;
  SyncSettings settings_;
  std::unique_ptr<Loop> loop_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Account>> accounts_;
};

}  // namespace connector::email

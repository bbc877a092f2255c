// One IMAP connection on Boost.Asio, driven by C++20 coroutines on the caller's executor.
//
// Many accounts share one io_context thread: nothing here blocks. Every network step has a
// deadline; when it passes the socket is closed and the step fails with kTimeout. Failures are
// thrown as MailError (caught by the account's loop, never across the plugin boundary).
#pragma once

// clang-format off
#include <utility>  // before Asio's coroutine header, which needs it with g++ 12
#include <boost/asio/awaitable.hpp>
// clang-format on
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "MailServer.hpp"

namespace connector::email {

class MailError : public std::runtime_error {
 public:
  explicit MailError(MailFailure failure)
      : std::runtime_error(failure.detail), failure_(std::move(failure)) {}
  const MailFailure &failure() const { return failure_; }

 private:
  MailFailure failure_;
};

// One server response line with the literals it carried ({n} markers stay in `text`).
struct ImapLine {
  std::string text;
  std::vector<std::string> literals;
};

struct ImapReply {
  std::string status;  // OK, NO or BAD
  std::string text;    // the rest of the tagged line
  std::vector<ImapLine> untagged;
};

// What SELECT/EXAMINE reported about the mailbox.
struct MailboxState {
  uint64_t uid_validity = 0;
  uint64_t uid_next = 0;
  uint64_t highest_modseq = 0;  // 0 without CONDSTORE
  uint64_t exists = 0;
};

// One fetched message: its UID, size and the requested body section (may be empty).
struct FetchedMessage {
  uint64_t uid = 0;
  uint64_t size = 0;
  std::string body;
  std::string internal_date;
  bool has_size = false;  // unsolicited FETCH responses (flag changes) carry neither
  bool has_body = false;
};

class ImapConnection {
 public:
  using Executor = boost::asio::any_io_executor;

  ImapConnection(Executor executor, std::chrono::milliseconds timeout);
  ~ImapConnection();

  // Connects, negotiates TLS (implicit or STARTTLS) and verifies the certificate.
  boost::asio::awaitable<void> open(const ServerAddress &server, const std::string &ca_file);
  boost::asio::awaitable<void> login(const Credentials &credentials);

  // EXAMINE (read-only: the plugin never changes flags), with CONDSTORE when offered.
  boost::asio::awaitable<MailboxState> examine(const std::string &mailbox);

  boost::asio::awaitable<std::vector<uint64_t>> search_uids(const std::string &criteria);

  // UID FETCH of `uid_set` with the given items, e.g. "(UID RFC822.SIZE BODY.PEEK[])".
  boost::asio::awaitable<std::vector<FetchedMessage>> fetch(const std::string &uid_set,
                                                            const std::string &items);

  boost::asio::awaitable<void> append(const std::string &mailbox, const std::string &flags,
                                      const std::string &message);

  boost::asio::awaitable<void> noop();
  boost::asio::awaitable<void> create(const std::string &mailbox);

  // IDLEs until the server reports new mail (true) or `max_wait` passes (false), then ends
  // the IDLE. A connection that stays silent beyond that fails with kTimeout.
  boost::asio::awaitable<bool> idle(std::chrono::milliseconds max_wait);

  boost::asio::awaitable<void> logout();

  // Closes the socket: any pending step fails at once. Safe from the connection's executor only.
  void close();

  bool has_capability(const std::string &name) const { return capabilities_.count(name) > 0; }

 private:
  boost::asio::awaitable<ImapReply> command(const std::string &text, bool sensitive = false);
  // SASL OAUTHBEARER where offered, XOAUTH2 otherwise (ImapOAuth.cpp).
  boost::asio::awaitable<ImapReply> authenticate_oauth(const Credentials &credentials);
  boost::asio::awaitable<ImapReply> read_reply(const std::string &tag);
  boost::asio::awaitable<ImapLine> read_line();
  boost::asio::awaitable<std::string> read_raw_line(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  boost::asio::awaitable<void> read_exactly(size_t size);
  boost::asio::awaitable<void> write(const std::string &text);
  boost::asio::awaitable<void> handshake(const ServerAddress &server);
  void arm(std::chrono::milliseconds timeout);
  void disarm();
  [[noreturn]] void fail_io(const std::exception &error, const char *step);
  void learn_capabilities(const std::string &text);
  std::string next_tag();

  Executor executor_;
  std::chrono::milliseconds timeout_;
  boost::asio::ssl::context tls_context_;
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_;
  boost::asio::steady_timer deadline_;
  bool tls_active_ = false;
  bool timed_out_ = false;
  bool closed_ = false;
  // The server announced a new mail (an untagged EXISTS or RECENT) since the last EXAMINE: an
  // IDLE that follows ends at once, since the server does not announce that mail again.
  bool news_ = false;
  std::string buffer_;
  std::set<std::string> capabilities_;
  uint64_t tag_counter_ = 0;
  std::string host_;
};

}  // namespace connector::email

#include "ImapConnection.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <regex>
#include <sstream>

namespace connector::email {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

constexpr size_t kMaxLineBytes = 1 << 20;

[[noreturn]] void fail(FailureKind kind, std::string detail) {
  throw MailError({kind, std::move(detail)});
}

// An IMAP quoted string; CR, LF and NUL cannot be quoted, so they are refused.
std::string quoted(const std::string &text) {
  if (text.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
    fail(FailureKind::kProtocol, "a value contains a line break");
  }
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

uint64_t number_after(const std::string &text, const std::string &key) {
  const size_t at = text.find(key);
  if (at == std::string::npos) return 0;
  return std::strtoull(text.c_str() + at + key.size(), nullptr, 10);
}

bool ends_with_literal(const std::string &line, size_t &size) {
  if (line.empty() || line.back() != '}') return false;
  const size_t open = line.rfind('{');
  if (open == std::string::npos) return false;
  std::string digits = line.substr(open + 1, line.size() - open - 2);
  if (!digits.empty() && digits.back() == '+') digits.pop_back();
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  size = std::stoull(digits);
  return true;
}

}  // namespace

std::string describe(const MailFailure &failure) { return failure.detail; }

ImapConnection::ImapConnection(Executor executor, std::chrono::milliseconds timeout)
    : executor_(executor),
      timeout_(timeout),
      tls_context_(asio::ssl::context::tls_client),
      stream_(executor, tls_context_),
      deadline_(executor) {}

ImapConnection::~ImapConnection() { close(); }

void ImapConnection::close() {
  closed_ = true;
  deadline_.cancel();
  boost::system::error_code ignored;
  stream_.next_layer().close(ignored);
}

void ImapConnection::arm(std::chrono::milliseconds timeout) {
  deadline_.expires_after(timeout);
  deadline_.async_wait([this](boost::system::error_code ec) {
    // Only a real expiry touches the connection: a cancelled wait may outlive it.
    if (ec) return;
    timed_out_ = true;
    boost::system::error_code ignored;
    stream_.next_layer().close(ignored);
  });
}

void ImapConnection::disarm() { deadline_.cancel(); }

void ImapConnection::fail_io(const std::exception &error, const char *step) {
  if (closed_) fail(FailureKind::kStopped, "the connection was closed");
  if (timed_out_) {
    fail(FailureKind::kTimeout,
         std::string("IMAP: the server did not answer in time (") + step + ")");
  }
  fail(FailureKind::kUnreachable, std::string("IMAP: the connection to the server was lost (") +
                                      step + ": " + error.what() + ")");
}

std::string ImapConnection::next_tag() { return "A" + std::to_string(++tag_counter_); }

awaitable<void> ImapConnection::open(const ServerAddress &server, const std::string &ca_file) {
  host_ = server.host;
  tls_context_.set_verify_mode(asio::ssl::verify_peer);
  tls_context_.set_default_verify_paths();
  if (!ca_file.empty()) {
    boost::system::error_code ec;
    tls_context_.load_verify_file(ca_file, ec);
    if (ec) fail(FailureKind::kUntrustedCertificate, "the CA file " + ca_file + " cannot be read");
  }

  // Resolve and connect, within the deadline.
  arm(timeout_);
  try {
    tcp::resolver resolver(executor_);
    auto endpoints =
        co_await resolver.async_resolve(server.host, std::to_string(server.port), use_awaitable);
    co_await asio::async_connect(stream_.next_layer(), endpoints, use_awaitable);
  } catch (const boost::system::system_error &e) {
    disarm();
    if (timed_out_) {
      fail(FailureKind::kTimeout,
           "IMAP: " + server.host + ":" + std::to_string(server.port) + " did not answer in time");
    }
    fail(FailureKind::kUnreachable, "IMAP: cannot reach " + server.host + ":" +
                                        std::to_string(server.port) + " (" + e.what() + ")");
  }
  disarm();

  if (server.security == Security::kImplicitTls) co_await handshake(server);
  ImapLine greeting = co_await read_line();
  if (greeting.text.rfind("* OK", 0) != 0 && greeting.text.rfind("* PREAUTH", 0) != 0) {
    fail(FailureKind::kProtocol, "IMAP: unexpected greeting from the server");
  }
  learn_capabilities(greeting.text);
  if (server.security == Security::kStartTls) {
    ImapReply reply = co_await command("STARTTLS");
    if (reply.status != "OK") fail(FailureKind::kTlsHandshake, "IMAP: the server refused STARTTLS");
    co_await handshake(server);
    capabilities_.clear();
  }
  if (capabilities_.empty()) {
    ImapReply reply = co_await command("CAPABILITY");
    for (const auto &line : reply.untagged) learn_capabilities(line.text);
  }
}

awaitable<void> ImapConnection::handshake(const ServerAddress &server) {
  SSL *ssl = stream_.native_handle();
  boost::system::error_code ec;
  asio::ip::make_address(server.host, ec);
  if (ec) SSL_set_tlsext_host_name(ssl, server.host.c_str());  // SNI for names only
  stream_.set_verify_callback(asio::ssl::rfc2818_verification(server.host));

  arm(timeout_);
  try {
    co_await stream_.async_handshake(asio::ssl::stream_base::client, use_awaitable);
  } catch (const boost::system::system_error &e) {
    disarm();
    if (timed_out_) fail(FailureKind::kTimeout, "IMAP: the TLS handshake did not finish in time");
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      fail(FailureKind::kUntrustedCertificate,
           std::string("IMAP: the server's certificate is not trusted (") +
               X509_verify_cert_error_string(verify) + ")");
    }
    fail(FailureKind::kTlsHandshake,
         std::string("IMAP: the TLS handshake with the server failed (") + e.what() + ")");
  }
  disarm();
  tls_active_ = true;
}

awaitable<void> ImapConnection::login(const Credentials &credentials) {
  ImapReply reply;
  if (!credentials.oauth_token.empty()) {
    reply = co_await authenticate_oauth(credentials);
  } else {
    reply = co_await command(
        "LOGIN " + quoted(credentials.user) + " " + quoted(credentials.password), true);
  }
  if (reply.status != "OK") {
    if (reply.text.find("[UNAVAILABLE]") != std::string::npos) {
      fail(FailureKind::kUnreachable, "IMAP: the server is temporarily unavailable");
    }
    fail(FailureKind::kWrongCredentials, "IMAP: the server refused the address or password");
  }

  // Capabilities may change once logged in (RFC 3501, 6.2.3): the list announced now, with the
  // tagged OK or in an untagged CAPABILITY line, replaces the one from before the login.
  std::vector<std::string> announced;
  if (reply.text.rfind("[CAPABILITY ", 0) == 0) announced.push_back(reply.text);
  for (const auto &line : reply.untagged) {
    if (line.text.rfind("* CAPABILITY ", 0) == 0) announced.push_back(line.text);
  }
  if (announced.empty()) {
    ImapReply caps = co_await command("CAPABILITY");
    for (const auto &line : caps.untagged) {
      if (line.text.rfind("* CAPABILITY ", 0) == 0) announced.push_back(line.text);
    }
  }
  capabilities_.clear();
  for (const auto &text : announced) learn_capabilities(text);
}

// Reads "CAPABILITY a b c" from an untagged line, or "[CAPABILITY a b c] text" from a response
// code, where the list ends at the closing bracket.
void ImapConnection::learn_capabilities(const std::string &text) {
  size_t at = text.find("CAPABILITY ");
  if (at == std::string::npos) return;
  const bool bracketed = at > 0 && text[at - 1] == '[';
  std::istringstream words(text.substr(at + 11));
  std::string word;
  while (words >> word) {
    const bool last = bracketed && word.back() == ']';
    if (last) word.pop_back();
    if (!word.empty()) capabilities_.insert(word);
    if (last) break;
  }
}

awaitable<MailboxState> ImapConnection::examine(const std::string &mailbox) {
  const bool condstore = has_capability("CONDSTORE");
  ImapReply reply =
      co_await command("EXAMINE " + quoted(mailbox) + (condstore ? " (CONDSTORE)" : ""));
  if (reply.status != "OK") fail(FailureKind::kProtocol, "IMAP: cannot open " + mailbox);
  news_ = false;  // what this reply counts is what the sync that follows reads
  MailboxState state;
  for (const auto &line : reply.untagged) {
    if (line.text.find("[UIDVALIDITY ") != std::string::npos) {
      state.uid_validity = number_after(line.text, "[UIDVALIDITY ");
    }
    if (line.text.find("[UIDNEXT ") != std::string::npos) {
      state.uid_next = number_after(line.text, "[UIDNEXT ");
    }
    if (line.text.find("[HIGHESTMODSEQ ") != std::string::npos) {
      state.highest_modseq = number_after(line.text, "[HIGHESTMODSEQ ");
    }
    if (line.text.size() > 7 && line.text.compare(line.text.size() - 7, 7, " EXISTS") == 0) {
      state.exists = std::strtoull(line.text.c_str() + 2, nullptr, 10);
    }
  }
  co_return state;
}

awaitable<std::vector<uint64_t>> ImapConnection::search_uids(const std::string &criteria) {
  ImapReply reply = co_await command("UID SEARCH " + criteria);
  if (reply.status != "OK") fail(FailureKind::kProtocol, "IMAP: the search was refused");
  std::vector<uint64_t> uids;
  for (const auto &line : reply.untagged) {
    if (line.text.rfind("* SEARCH", 0) != 0) continue;
    std::istringstream words(line.text.substr(8));
    uint64_t uid = 0;
    while (words >> uid) uids.push_back(uid);
  }
  co_return uids;
}

awaitable<std::vector<FetchedMessage>> ImapConnection::fetch(const std::string &uid_set,
                                                             const std::string &items) {
  ImapReply reply = co_await command("UID FETCH " + uid_set + " " + items);
  if (reply.status != "OK") fail(FailureKind::kProtocol, "IMAP: the server refused a fetch");
  static const std::regex kFetch(R"(^\* \d+ FETCH )");
  std::vector<FetchedMessage> messages;
  for (auto &line : reply.untagged) {
    if (!std::regex_search(line.text, kFetch)) continue;
    FetchedMessage message;
    message.uid = number_after(line.text, "UID ");
    message.size = number_after(line.text, "RFC822.SIZE ");
    message.has_size = line.text.find("RFC822.SIZE ") != std::string::npos;
    if (const size_t at = line.text.find("INTERNALDATE \""); at != std::string::npos) {
      message.internal_date = line.text.substr(at + 14, line.text.find('"', at + 14) - at - 14);
    }
    if (line.text.find("BODY[") != std::string::npos && !line.literals.empty()) {
      message.body = std::move(line.literals.front());
      message.has_body = true;
    }
    if (message.uid != 0) messages.push_back(std::move(message));
  }
  co_return messages;
}

awaitable<void> ImapConnection::append(const std::string &mailbox, const std::string &flags,
                                       const std::string &message) {
  const std::string tag = next_tag();
  co_await write(tag + " APPEND " + quoted(mailbox) + " (" + flags + ") {" +
                 std::to_string(message.size()) + "}\r\n");
  ImapLine go_ahead = co_await read_line();
  if (go_ahead.text.rfind("+", 0) != 0) fail(FailureKind::kProtocol, "IMAP: APPEND refused");
  co_await write(message + "\r\n");
  ImapReply reply = co_await read_reply(tag);
  if (reply.status != "OK") fail(FailureKind::kProtocol, "IMAP: APPEND to " + mailbox + " failed");
}

awaitable<void> ImapConnection::create(const std::string &mailbox) {
  ImapReply reply = co_await command("CREATE " + quoted(mailbox));
  if (reply.status != "OK") fail(FailureKind::kProtocol, "IMAP: cannot create " + mailbox);
}

awaitable<void> ImapConnection::noop() {
  ImapReply reply = co_await command("NOOP");
  if (reply.status != "OK") fail(FailureKind::kProtocol, "IMAP: NOOP refused");
}

awaitable<bool> ImapConnection::idle(std::chrono::milliseconds max_wait) {
  const std::string tag = next_tag();
  co_await write(tag + " IDLE\r\n");
  ImapLine go_ahead = co_await read_line();
  while (go_ahead.text.rfind("+", 0) != 0) {
    if (go_ahead.text.rfind(tag + " ", 0) == 0) fail(FailureKind::kProtocol, "IMAP: IDLE refused");
    go_ahead = co_await read_line();
  }

  // Wait for news, unless the server announced a mail since the sync looked (in a reply to one
  // of its commands, or just before its go-ahead here). The server's own keep-alives ("* OK
  // Still here") restart nothing: the IDLE ends after max_wait regardless, which also proves
  // the connection still answers.
  bool news = news_;
  asio::steady_timer stop_waiting(executor_);
  stop_waiting.expires_after(max_wait);
  bool waiting_over = false;
  stop_waiting.async_wait([this, &waiting_over](boost::system::error_code ec) {
    if (ec) return;
    waiting_over = true;
    boost::system::error_code ignored;
    stream_.next_layer().cancel(ignored);
  });
  try {
    while (!news) {
      std::string line = co_await read_raw_line(max_wait + timeout_);
      if (line.find(" EXISTS") != std::string::npos || line.find(" RECENT") != std::string::npos) {
        news = true;
      }
    }
  } catch (const boost::system::system_error &e) {
    if (!waiting_over) {
      stop_waiting.cancel();
      fail_io(e, "IDLE");
    }
  }
  stop_waiting.cancel();

  // End the IDLE; the tagged OK must come within the normal deadline.
  co_await write("DONE\r\n");
  ImapReply reply = co_await read_reply(tag);
  if (reply.status != "OK") fail(FailureKind::kProtocol, "IMAP: IDLE ended badly");
  for (const auto &line : reply.untagged) {
    if (line.text.find(" EXISTS") != std::string::npos) news = true;
  }
  co_return news;
}

awaitable<void> ImapConnection::logout() {
  try {
    co_await command("LOGOUT");
  } catch (const MailError &) {
    // The server may close first; the session is over either way.
  }
}

awaitable<ImapReply> ImapConnection::command(const std::string &text, bool sensitive) {
  const std::string tag = next_tag();
  co_await write(tag + " " + text + "\r\n");
  co_return co_await read_reply(tag);
}

awaitable<ImapReply> ImapConnection::read_reply(const std::string &tag) {
  ImapReply reply;
  for (;;) {
    ImapLine line = co_await read_line();
    if (line.text.rfind(tag + " ", 0) == 0) {
      const std::string rest = line.text.substr(tag.size() + 1);
      const size_t space = rest.find(' ');
      reply.status = rest.substr(0, space);
      reply.text = space == std::string::npos ? "" : rest.substr(space + 1);
      co_return reply;
    }
    if (line.text.rfind("* BYE", 0) == 0) {
      fail(FailureKind::kUnreachable, "IMAP: the server closed the session");
    }
    reply.untagged.push_back(std::move(line));
  }
}

awaitable<ImapLine> ImapConnection::read_line() {
  ImapLine line;
  line.text = co_await read_raw_line();
  size_t size = 0;
  while (ends_with_literal(line.text, size)) {
    co_await read_exactly(size);
    line.literals.push_back(buffer_.substr(0, size));
    buffer_.erase(0, size);
    line.text += co_await read_raw_line();
  }
  const std::string &text = line.text;
  if (text.rfind("* ", 0) == 0 && text.size() > 9 &&
      (text.compare(text.size() - 7, 7, " EXISTS") == 0 ||
       text.compare(text.size() - 7, 7, " RECENT") == 0)) {
    news_ = true;
  }
  co_return line;
}

awaitable<std::string> ImapConnection::read_raw_line(std::chrono::milliseconds timeout) {
  arm(timeout.count() > 0 ? timeout : timeout_);
  size_t length = 0;
  try {
    auto buffer = asio::dynamic_buffer(buffer_, kMaxLineBytes);
    length = tls_active_ ? co_await asio::async_read_until(stream_, buffer, "\r\n", use_awaitable)
                         : co_await asio::async_read_until(stream_.next_layer(), buffer, "\r\n",
                                                           use_awaitable);
  } catch (const boost::system::system_error &e) {
    disarm();
    if (e.code() == asio::error::operation_aborted && !timed_out_ && !closed_) throw;
    fail_io(e, "reading");
  }
  disarm();
  std::string line = buffer_.substr(0, length - 2);
  buffer_.erase(0, length);
  co_return line;
}

awaitable<void> ImapConnection::read_exactly(size_t size) {
  if (buffer_.size() >= size) co_return;
  arm(timeout_ * 4);  // a large literal may take a while
  try {
    auto buffer = asio::dynamic_buffer(buffer_);
    const size_t missing = size - buffer_.size();
    if (tls_active_) {
      co_await asio::async_read(stream_, buffer, asio::transfer_exactly(missing), use_awaitable);
    } else {
      co_await asio::async_read(stream_.next_layer(), buffer, asio::transfer_exactly(missing),
                                use_awaitable);
    }
  } catch (const boost::system::system_error &e) {
    disarm();
    fail_io(e, "reading a message");
  }
  disarm();
}

awaitable<void> ImapConnection::write(const std::string &text) {
  arm(timeout_);
  try {
    if (tls_active_) {
      co_await asio::async_write(stream_, asio::buffer(text), use_awaitable);
    } else {
      co_await asio::async_write(stream_.next_layer(), asio::buffer(text), use_awaitable);
    }
  } catch (const boost::system::system_error &e) {
    disarm();
    fail_io(e, "writing");
  }
  disarm();
}

}  // namespace connector::email

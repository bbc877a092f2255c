// The IMAP client against a scripted IMAP peer on loopback (implicit TLS with a throw-away CA):
// what the client believes the server can do after login.
#include <gtest/gtest.h>

// clang-format off
#include <utility>  // before Asio's coroutine header, which needs it with g++ 12
#include <boost/asio/co_spawn.hpp>
// clang-format on
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <set>
#include <string>
#include <thread>

#include "ImapConnection.hpp"

namespace connector::email {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A throw-away CA and a certificate for 127.0.0.1 (tests/support/mail/make-test-ca.sh).
std::filesystem::path test_tls_dir() {
  static const std::filesystem::path dir = [] {
    auto path = std::filesystem::temp_directory_path() /
                ("imap-peer-tls-" + std::to_string(::getpid()));
    const std::string command =
        "sh " CONNECTOR_SOURCE_DIR "/tests/support/mail/make-test-ca.sh " + path.string();
    if (std::system(command.c_str()) != 0) throw std::runtime_error("make-test-ca.sh failed");
    return path;
  }();
  return dir;
}

// What the peer says after the greeting's capabilities, in answer to LOGIN.
enum class LoginAnswer { kTaggedCode, kUntaggedLine, kNothing };

// What the peer's mailbox says beyond the login: untagged lines in its answer to NOOP, and
// before its go-ahead to IDLE (a mail that arrived meanwhile).
struct MailboxScript {
  std::string noop_untagged;
  std::string before_idle_go_ahead;
};

// One scripted IMAP session over implicit TLS: a greeting announcing `before`, a LOGIN that
// succeeds (announcing `after` as `answer` says), CAPABILITY answered with `after`, EXAMINE of a
// mailbox of one mail, NOOP and IDLE as `mailbox` says, LOGOUT.
class ScriptedImapPeer {
 public:
  ScriptedImapPeer(std::string before, std::string after, LoginAnswer answer,
                   MailboxScript mailbox = {})
      : before_(std::move(before)),
        after_(std::move(after)),
        answer_(answer),
        mailbox_(std::move(mailbox)) {
    tls_.use_certificate_chain_file((test_tls_dir() / "server.pem").string());
    tls_.use_private_key_file((test_tls_dir() / "server.key").string(), asio::ssl::context::pem);
    acceptor_.open(tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedImapPeer() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    if (thread_.joinable()) thread_.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  const std::vector<std::string> &commands() const { return commands_; }  // after the join

 private:
  void serve() {
    try {
      asio::ssl::stream<tcp::socket> stream(io_, tls_);
      acceptor_.accept(stream.next_layer());
      stream.handshake(asio::ssl::stream_base::server);
      say(stream, "* OK [CAPABILITY " + before_ + "] scripted peer ready\r\n");
      std::string buffer;
      for (;;) {
        const size_t n = asio::read_until(stream, asio::dynamic_buffer(buffer), "\r\n");
        const std::string line = buffer.substr(0, n - 2);
        buffer.erase(0, n);
        if (line == "DONE") {
          say(stream, idle_tag_ + " OK idle done\r\n");
          continue;
        }
        const std::string tag = line.substr(0, line.find(' '));
        const std::string verb = line.substr(tag.size() + 1, line.find(' ', tag.size() + 1) -
                                                                 tag.size() - 1);
        commands_.push_back(verb);
        if (verb == "LOGIN") {
          if (answer_ == LoginAnswer::kTaggedCode) {
            say(stream, tag + " OK [CAPABILITY " + after_ + "] Logged in\r\n");
          } else if (answer_ == LoginAnswer::kUntaggedLine) {
            say(stream, "* CAPABILITY " + after_ + "\r\n" + tag + " OK Logged in\r\n");
          } else {
            say(stream, tag + " OK Logged in\r\n");
          }
        } else if (verb == "CAPABILITY") {
          say(stream, "* CAPABILITY " + after_ + "\r\n" + tag + " OK done\r\n");
        } else if (verb == "EXAMINE") {
          say(stream, "* 1 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n" +
                          tag + " OK [READ-ONLY] examined\r\n");
        } else if (verb == "NOOP") {
          say(stream, mailbox_.noop_untagged + tag + " OK done\r\n");
        } else if (verb == "IDLE") {
          idle_tag_ = tag;
          say(stream, mailbox_.before_idle_go_ahead + "+ idling\r\n");
        } else if (verb == "LOGOUT") {
          say(stream, "* BYE bye\r\n" + tag + " OK done\r\n");
          return;
        } else {
          say(stream, tag + " BAD not scripted\r\n");
        }
      }
    } catch (const std::exception &) {
      // The client went away; the test reads what it learned.
    }
  }

  static void say(asio::ssl::stream<tcp::socket> &stream, const std::string &text) {
    asio::write(stream, asio::buffer(text));
  }

  std::string before_;
  std::string after_;
  LoginAnswer answer_;
  MailboxScript mailbox_;
  std::string idle_tag_;
  asio::io_context io_;
  asio::ssl::context tls_{asio::ssl::context::tls_server};
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
  std::vector<std::string> commands_;
};

const char *const kNames[] = {"IMAP4rev1", "IDLE", "AUTH=PLAIN", "X-BEFORE", "CONDSTORE",
                              "X-AFTER",   "Logged", "in",       "scripted", "ready"};

// Connects, logs in and returns the capabilities (of kNames) the client then believes in.
asio::awaitable<std::set<std::string>> log_in(uint16_t port) {
  // Named, not temporaries: g++ 12 destroys temporaries inside a co_await expression badly.
  const ServerAddress server{"127.0.0.1", port, Security::kImplicitTls};
  const std::string ca_file = (test_tls_dir() / "ca.pem").string();
  Credentials credentials;
  credentials.user = "agent@example.test";
  credentials.password = "secret-pass";
  ImapConnection connection(co_await asio::this_coro::executor, std::chrono::seconds(10));
  co_await connection.open(server, ca_file);
  co_await connection.login(credentials);
  std::set<std::string> known;
  for (const char *name : kNames) {
    if (connection.has_capability(name)) known.insert(name);
  }
  co_await connection.logout();
  co_return known;
}

std::set<std::string> capabilities_after_login(ScriptedImapPeer &peer) {
  asio::io_context io;
  auto known = asio::co_spawn(io, log_in(peer.port()), asio::use_future);
  io.run();
  return known.get();
}

const std::set<std::string> kAfter = {"IMAP4rev1", "CONDSTORE", "X-AFTER"};

TEST(ImapConnection, CapabilitiesAnnouncedWithTheLoginReplaceThoseFromBefore) {
  ScriptedImapPeer peer("IMAP4rev1 IDLE AUTH=PLAIN X-BEFORE", "IMAP4rev1 CONDSTORE X-AFTER",
                        LoginAnswer::kTaggedCode);
  EXPECT_EQ(capabilities_after_login(peer), kAfter);
}

TEST(ImapConnection, AnUntaggedCapabilityLineAtLoginReplacesThoseFromBefore) {
  ScriptedImapPeer peer("IMAP4rev1 IDLE AUTH=PLAIN X-BEFORE", "IMAP4rev1 CONDSTORE X-AFTER",
                        LoginAnswer::kUntaggedLine);
  EXPECT_EQ(capabilities_after_login(peer), kAfter);
}

TEST(ImapConnection, WithoutCapabilitiesAtLoginTheClientAsksAndTakesTheAnswer) {
  ScriptedImapPeer peer("IMAP4rev1 IDLE AUTH=PLAIN X-BEFORE", "IMAP4rev1 CONDSTORE X-AFTER",
                        LoginAnswer::kNothing);
  EXPECT_EQ(capabilities_after_login(peer), kAfter);
}

TEST(ImapConnection, TheTextAfterACapabilityCodeIsNoCapability) {
  // Nothing new at login: what the greeting announced stays, without the words after "]".
  ScriptedImapPeer peer("IMAP4rev1 IDLE", "IMAP4rev1 IDLE", LoginAnswer::kTaggedCode);
  EXPECT_EQ(capabilities_after_login(peer), (std::set<std::string>{"IMAP4rev1", "IDLE"}));
}

// Logs in, opens INBOX, sends a NOOP, then IDLEs for at most `max_wait`: whether the IDLE
// reported news.
asio::awaitable<bool> idle_after_noop(uint16_t port, std::chrono::milliseconds max_wait) {
  const ServerAddress server{"127.0.0.1", port, Security::kImplicitTls};
  const std::string ca_file = (test_tls_dir() / "ca.pem").string();
  Credentials credentials;
  credentials.user = "agent@example.test";
  credentials.password = "secret-pass";
  ImapConnection connection(co_await asio::this_coro::executor, std::chrono::seconds(10));
  co_await connection.open(server, ca_file);
  co_await connection.login(credentials);
  co_await connection.examine("INBOX");
  co_await connection.noop();
  const bool news = co_await connection.idle(max_wait);
  co_await connection.logout();
  co_return news;
}

bool idle_news(ScriptedImapPeer &peer, std::chrono::milliseconds max_wait) {
  asio::io_context io;
  auto news = asio::co_spawn(io, idle_after_noop(peer.port(), max_wait), asio::use_future);
  io.run();
  return news.get();
}

// A mail that arrives while the sync runs is announced in the reply to one of its commands; the
// server does not announce it again, so the IDLE after the sync must not wait for it (it waited
// until the IDLE's renewal, ten minutes by default).
TEST(ImapConnection, AMailAnnouncedBeforeTheIdleEndsItAtOnce) {
  ScriptedImapPeer in_a_reply("IMAP4rev1 IDLE", "IMAP4rev1 IDLE", LoginAnswer::kTaggedCode,
                              {"* 2 EXISTS\r\n", ""});
  EXPECT_TRUE(idle_news(in_a_reply, std::chrono::seconds(30)));
  ScriptedImapPeer before_go_ahead("IMAP4rev1 IDLE", "IMAP4rev1 IDLE", LoginAnswer::kTaggedCode,
                                   {"", "* 2 EXISTS\r\n"});
  EXPECT_TRUE(idle_news(before_go_ahead, std::chrono::seconds(30)));
}

TEST(ImapConnection, WhatTheMailboxCountedWhenOpenedIsNoNews) {
  ScriptedImapPeer peer("IMAP4rev1 IDLE", "IMAP4rev1 IDLE", LoginAnswer::kTaggedCode);
  EXPECT_FALSE(idle_news(peer, std::chrono::milliseconds(300)));
}

}  // namespace
}  // namespace connector::email

// Internal to the server: the listener and the two kinds of session, on Beast.
#pragma once

#include <map>

#include <utility>  // Asio's coroutine support on g++ 12 needs this first

#include "api/Server.hpp"

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace connector::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

class WebSocketSession;

// What every session needs from the server.
struct Server::Impl {
  ServerSettings settings;
  ControlApi &api;
  accounts::EventHub &events;
  net::io_context io{1};
  net::thread_pool workers;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread io_thread;
  std::atomic<bool> stopping{false};

  // The open WebSockets by the id of the token they signed in with, so revoking a token closes
  // them at once.
  std::mutex sockets_mutex;
  std::multimap<std::string, std::weak_ptr<WebSocketSession>> sockets;

  Impl(ServerSettings s, ControlApi &a, accounts::EventHub &e)
      : settings(std::move(s)), api(a), events(e), workers(settings.worker_threads) {}

  void accept();
  void token_revoked(const std::string &token_id);
};

// Reads HTTP requests on one connection and answers them, in order, until the client closes,
// a limit is crossed or the connection upgrades to a WebSocket.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket &&socket, Server::Impl &server);
  void run();

 private:
  void read();
  void on_read(beast::error_code ec);
  void answer(http::request<http::string_body> &&request);
  void write(http::response<http::string_body> &&response);
  void on_write(bool keep_alive, beast::error_code ec);
  void fail_and_close(http::status status, const std::string &code, const std::string &message);

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Server::Impl &server_;
};

// One subscriber of live events. Events are queued per session and written one at a time; when
// the queue outgrows its limit the client is too slow and is disconnected.
class WebSocketSession : public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(beast::tcp_stream &&stream, Server::Impl &server, auth::Principal who,
                   std::string token);
  void run(http::request<http::string_body> request);

  // The close code a client gets when its token is revoked (a private-use code, 4000–4999).
  static constexpr uint16_t kTokenRevoked = 4401;

  // Ends the session with a close frame: the client learns why. Called on its strand.
  void close_with(uint16_t code, const std::string &reason);

 private:
  void on_accept(beast::error_code ec);
  void read();
  void on_read(beast::error_code ec);
  void enqueue(std::shared_ptr<const std::string> event);
  void write_next();
  void on_write(beast::error_code ec);
  void close();
  void forget();
  void schedule_token_check();

  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer token_check_;
  beast::flat_buffer buffer_;
  Server::Impl &server_;
  auth::Principal who_;
  std::string token_;  // checked again periodically: a revoked token loses its events too
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool writing_ = false;
  std::atomic<bool> closed_{false};
  uint64_t subscription_ = 0;
};

inline std::string_view to_std(beast::string_view text) { return {text.data(), text.size()}; }

// Reads the bearer token of an upgrade request: the Authorization header, or (for browsers,
// which cannot set headers on a WebSocket) a "bearer.<token>" entry in Sec-WebSocket-Protocol.
std::string bearer_token(const http::request<http::string_body> &request);

}  // namespace connector::api

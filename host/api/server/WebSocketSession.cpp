#include "api/server/Sessions.hpp"

#include "log/Log.hpp"

namespace connector::api {

WebSocketSession::WebSocketSession(beast::tcp_stream &&stream, Server::Impl &server,
                                   auth::Principal who, std::string token)
    : ws_(std::move(stream)),
      token_check_(ws_.get_executor()),
      server_(server),
      who_(std::move(who)),
      token_(std::move(token)) {}

void WebSocketSession::run(http::request<http::string_body> request) {
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.read_message_max(server_.settings.websocket_max_message_bytes);
  const bool via_protocol = !request[http::field::sec_websocket_protocol].empty();
  ws_.set_option(websocket::stream_base::decorator([via_protocol](websocket::response_type &res) {
    res.set(http::field::server, "connector-host");
    // Browsers send the token as a subprotocol; they expect one protocol chosen in return.
    if (via_protocol) res.set(http::field::sec_websocket_protocol, "connector.v1");
  }));

  // Complete the handshake with the request already read.
  ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
    self->on_accept(ec);
  });
}

void WebSocketSession::on_accept(beast::error_code ec) {
  if (ec) return;

  // Subscribe to live events. The sink runs on whatever thread publishes: it only hands the
  // event to this session's strand, and reports whether the session still wants events.
  std::weak_ptr<WebSocketSession> weak = shared_from_this();
  auto executor = ws_.get_executor();
  subscription_ = server_.events.subscribe(
      who_.attendant_id, who_.admin(),
      [weak, executor](const std::shared_ptr<const std::string> &event) {
        auto self = weak.lock();
        if (!self || self->closed_) return false;
        net::post(executor, [self, event] { self->enqueue(event); });
        return true;
      });

  {
    std::lock_guard lock(server_.sockets_mutex);
    server_.sockets.emplace(who_.token_id, weak);
  }

  nlohmann::json hello = {{"type", "hello"},
                          {"attendant_id", who_.attendant_id},
                          {"role", auth::to_string(who_.role)}};
  enqueue(std::make_shared<const std::string>(hello.dump()));
  schedule_token_check();
  read();
}

void WebSocketSession::schedule_token_check() {
  token_check_.expires_after(std::chrono::seconds(server_.settings.websocket_token_check_seconds));
  token_check_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->closed_) return;

    // The store may be busy: ask on a worker, answer on this session's strand.
    net::post(self->server_.workers, [self] {
      const bool valid = self->server_.api.authenticate(self->token_).has_value();
      net::post(self->ws_.get_executor(), [self, valid] {
        if (!valid) return self->close_with(kTokenRevoked, "token revoked");
        self->schedule_token_check();
      });
    });
  });
}

void WebSocketSession::read() {
  // Clients have nothing to tell us but pings and closes; reading keeps those flowing.
  ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->on_read(ec);
  });
}

void WebSocketSession::on_read(beast::error_code ec) {
  if (ec) return close();
  buffer_.consume(buffer_.size());
  read();
}

void WebSocketSession::enqueue(std::shared_ptr<const std::string> event) {
  if (closed_) return;
  if (queue_.size() >= server_.settings.websocket_queue_limit) {
    log::warn({"api"}, "a WebSocket client fell behind its events and was disconnected");
    return close();
  }
  queue_.push_back(std::move(event));
  if (!writing_) write_next();
}

void WebSocketSession::write_next() {
  // The handler owns the event being written, so close() may clear the queue meanwhile.
  auto event = std::move(queue_.front());
  queue_.pop_front();
  writing_ = true;
  ws_.text(true);
  ws_.async_write(net::buffer(*event),
                  [self = shared_from_this(), event](beast::error_code ec, size_t) {
                    self->on_write(ec);
                  });
}

void WebSocketSession::on_write(beast::error_code ec) {
  writing_ = false;
  if (ec) return close();
  if (!queue_.empty()) write_next();
}

void WebSocketSession::close() {
  if (closed_.exchange(true)) return;
  forget();
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(ws_).socket().close(ignored);
}

void WebSocketSession::close_with(uint16_t code, const std::string &reason) {
  net::dispatch(ws_.get_executor(), [self = shared_from_this(), code, reason] {
    if (self->closed_.exchange(true)) return;
    log::info({"api"}, "a WebSocket was closed: " + reason);
    self->forget();
    // The close handshake waits for a write in progress; its own timeout bounds a client that
    // never answers. The socket is shut either way.
    const websocket::close_reason why(static_cast<websocket::close_code>(code), reason);
    self->ws_.async_close(why, [self](beast::error_code) {
      beast::error_code ignored;
      auto &socket = beast::get_lowest_layer(self->ws_).socket();
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
    });
  });
}

// Stops events and the token check, and leaves the server's list of open WebSockets.
void WebSocketSession::forget() {
  server_.events.unsubscribe(subscription_);
  token_check_.cancel();
  queue_.clear();
  std::lock_guard lock(server_.sockets_mutex);
  auto [first, last] = server_.sockets.equal_range(who_.token_id);
  for (auto it = first; it != last;) {
    auto session = it->second.lock();
    it = !session || session.get() == this ? server_.sockets.erase(it) : std::next(it);
  }
}

}  // namespace connector::api

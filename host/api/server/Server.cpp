#include "api/server/Sessions.hpp"

#include "log/Log.hpp"

#include <chrono>
#include <limits>

namespace connector::api {

Server::Server(ServerSettings settings, ControlApi &api, accounts::EventHub &events)
    : impl_(std::make_unique<Impl>(std::move(settings), api, events)) {
  api.on_token_revoked([impl = impl_.get()](const std::string &token_id) {
    impl->token_revoked(token_id);
  });
}

Server::~Server() {
  stop();
  impl_->api.on_token_revoked({});
}

Expected<uint16_t> Server::start() {
  auto &impl = *impl_;
  beast::error_code ec;
  const auto address = net::ip::make_address(impl.settings.address, ec);
  if (ec) return failure("invalid_config", "cannot listen on \"" + impl.settings.address + "\"");
  const tcp::endpoint endpoint(address, impl.settings.port);

  impl.acceptor = std::make_unique<tcp::acceptor>(impl.io);
  impl.acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor->bind(endpoint, ec);
  if (!ec) impl.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return failure("listen_failed", "cannot listen on " + impl.settings.address + ":" +
                                        std::to_string(impl.settings.port) + ": " + ec.message() +
                                        " (is another host running?)");
  }
  const uint16_t port = impl.acceptor->local_endpoint().port();

  // Accept connections.
  impl.accept();

  impl.io_thread = std::thread([&impl] {
    for (;;) {
      try {
        impl.io.run();
        return;
      } catch (const std::exception &e) {
        // A handler that throws must not take the whole API down: log it and go on.
        log::error({"api"}, std::string("network handler failed: ") + e.what());
      }
    }
  });
  return port;
}

void Server::stop() {
  auto &impl = *impl_;
  if (impl.stopping.exchange(true)) return;
  net::post(impl.io, [&impl] {
    beast::error_code ignored;
    if (impl.acceptor) impl.acceptor->close(ignored);
  });
  impl.workers.join();
  impl.io.stop();
  if (impl.io_thread.joinable()) impl.io_thread.join();
}

void Server::Impl::token_revoked(const std::string &token_id) {
  std::vector<std::shared_ptr<WebSocketSession>> open;
  {
    std::lock_guard lock(sockets_mutex);
    auto [first, last] = sockets.equal_range(token_id);
    for (auto it = first; it != last; ++it) {
      if (auto session = it->second.lock()) open.push_back(std::move(session));
    }
  }
  for (auto &session : open) session->close_with(WebSocketSession::kTokenRevoked, "token revoked");
}

void Server::Impl::accept() {
  acceptor->async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || stopping) return;
    if (ec) {
      // Out of file descriptors, most likely: accepting again at once would spin this thread.
      // Pause, so the connections that hold them can finish; say so at most once a minute.
      static std::atomic<int64_t> last_warning_ms{std::numeric_limits<int64_t>::min() / 2};
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count();
      if (now - last_warning_ms.load() > 60000) {
        last_warning_ms = now;
        log::warn({"api"}, "cannot accept connections: " + ec.message() + " (pausing 100 ms)");
      }
      auto pause = std::make_shared<net::steady_timer>(io, std::chrono::milliseconds(100));
      pause->async_wait([this, pause](beast::error_code) {
        if (!stopping) accept();
      });
      return;
    }
    std::make_shared<HttpSession>(std::move(socket), *this)->run();
    accept();
  });
}

std::string bearer_token(const http::request<http::string_body> &request) {
  const std::string_view authorization = to_std(request[http::field::authorization]);
  constexpr std::string_view kBearer = "bearer ";
  if (authorization.size() > kBearer.size() &&
      beast::iequals(beast::string_view(authorization.data(), kBearer.size()),
                     beast::string_view(kBearer.data(), kBearer.size()))) {
    return std::string(authorization.substr(kBearer.size()));
  }
  std::string_view protocols = to_std(request[http::field::sec_websocket_protocol]);
  while (!protocols.empty()) {
    const size_t comma = protocols.find(',');
    std::string_view entry = protocols.substr(0, comma);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    if (entry.rfind("bearer.", 0) == 0) return std::string(entry.substr(7));
    if (comma == std::string_view::npos) break;
    protocols.remove_prefix(comma + 1);
  }
  return {};
}

}  // namespace connector::api

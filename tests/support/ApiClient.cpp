#include <utility>

#include "ApiClient.hpp"

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace connector::test {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

constexpr auto kIoTimeout = std::chrono::seconds(30);

}  // namespace

Json HttpResult::json() const { return Json::parse(body, nullptr, false); }

std::string HttpResult::error_code() const {
  const Json parsed = json();
  if (!parsed.is_object() || !parsed.contains("error")) return {};
  return parsed["error"].value("code", "");
}

HttpResult ApiClient::request(const std::string &method, const std::string &target,
                              const std::string &body,
                              const std::map<std::string, std::string> &headers) const {
  net::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(kIoTimeout);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));

  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  for (const auto &[name, value] : headers) req.set(name, value);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::read(stream, buffer, parser);
  const auto &res = parser.get();

  HttpResult result;
  result.status = static_cast<int>(res.result_int());
  result.body = res.body();
  for (const auto &field : res) {
    std::string name(field.name_string().data(), field.name_string().size());
    for (auto &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    result.headers[name] = std::string(field.value().data(), field.value().size());
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return result;
}

// Reads events on a thread of its own into a queue the test drains.
struct EventStream::Impl {
  net::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};
  std::thread reader;
  std::mutex mutex;
  std::condition_variable arrived;
  std::deque<Json> events;
  bool closed = false;
  std::optional<int> close_code;

  void read_loop() {
    for (;;) {
      beast::flat_buffer buffer;
      beast::error_code ec;
      ws.read(buffer, ec);
      std::lock_guard lock(mutex);
      if (ec) {
        if (ec == websocket::error::closed) close_code = static_cast<int>(ws.reason().code);
        closed = true;
        arrived.notify_all();
        return;
      }
      events.push_back(Json::parse(beast::buffers_to_string(buffer.data()), nullptr, false));
      arrived.notify_all();
    }
  }
};

EventStream::EventStream(uint16_t port, const std::string &token, TokenVia via)
    : impl_(std::make_unique<Impl>()) {
  auto &lowest = beast::get_lowest_layer(impl_->ws);
  lowest.expires_after(kIoTimeout);
  lowest.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  impl_->ws.set_option(websocket::stream_base::decorator([&](websocket::request_type &req) {
    if (via == TokenVia::kHeader) {
      req.set(http::field::authorization, "Bearer " + token);
    } else {
      req.set(http::field::sec_websocket_protocol, "connector.v1, bearer." + token);
    }
  }));
  websocket::response_type response;
  beast::error_code ec;
  impl_->ws.handshake(response, "127.0.0.1", "/api/v1/events", ec);
  if (ec) {
    throw std::runtime_error("WebSocket refused with HTTP " +
                             std::to_string(response.result_int()));
  }
  lowest.expires_never();
  impl_->reader = std::thread([impl = impl_.get()] { impl->read_loop(); });
}

EventStream::~EventStream() {
  beast::error_code ignored;
  beast::get_lowest_layer(impl_->ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(impl_->ws).socket().close(ignored);
  if (impl_->reader.joinable()) impl_->reader.join();
}

std::optional<Json> EventStream::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  if (!impl_->arrived.wait_for(lock, timeout, [&] {
        return !impl_->events.empty() || impl_->closed;
      })) {
    return std::nullopt;
  }
  if (impl_->events.empty()) return std::nullopt;
  Json event = std::move(impl_->events.front());
  impl_->events.pop_front();
  return event;
}

std::optional<Json> EventStream::wait_for(const std::function<bool(const Json &)> &match,
                                          std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto event = next(left);
    if (!event) return std::nullopt;
    if (match(*event)) return event;
  }
}

std::optional<Json> EventStream::wait_for_type(const std::string &type,
                                               std::chrono::milliseconds timeout) {
  return wait_for([&](const Json &e) { return e.value("type", "") == type; }, timeout);
}

bool EventStream::closed_within(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  return impl_->arrived.wait_for(lock, timeout, [&] { return impl_->closed; });
}

std::optional<int> EventStream::close_code() {
  std::lock_guard lock(impl_->mutex);
  return impl_->close_code;
}

int websocket_upgrade_status(uint16_t port, const std::string &token) {
  ApiClient client(port, token);
  auto result = client.request("GET", "/api/v1/events", {},
                               {{"Connection", "Upgrade"},
                                {"Upgrade", "websocket"},
                                {"Sec-WebSocket-Version", "13"},
                                {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
  return result.status;
}

bool eventually(const std::function<bool()> &condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

}  // namespace connector::test

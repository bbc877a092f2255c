// Clients for the host's control API over real loopback sockets: plain HTTP requests and a
// WebSocket event stream, with bounded waits so a broken host fails a test instead of hanging it.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace connector::test {

using Json = nlohmann::json;

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names

  Json json() const;  // the body as JSON (discarded value when it is not JSON)
  std::string error_code() const;
};

class ApiClient {
 public:
  explicit ApiClient(uint16_t port, std::string token = {}) : port_(port), token_(std::move(token)) {}

  void set_token(std::string token) { token_ = std::move(token); }

  HttpResult get(const std::string &target) const { return request("GET", target); }
  HttpResult del(const std::string &target) const { return request("DELETE", target); }
  HttpResult post(const std::string &target, const Json &body = Json::object()) const {
    return request("POST", target, body.dump());
  }
  HttpResult request(const std::string &method, const std::string &target,
                     const std::string &body = {},
                     const std::map<std::string, std::string> &headers = {}) const;

 private:
  uint16_t port_;
  std::string token_;
};

// A WebSocket subscription to /api/v1/events.
class EventStream {
 public:
  enum class TokenVia { kHeader, kSubprotocol };

  // Connects and completes the handshake; throws std::runtime_error if the host refuses.
  EventStream(uint16_t port, const std::string &token, TokenVia via = TokenVia::kHeader);
  ~EventStream();

  // The next event, or nullopt if none arrives within `timeout`.
  std::optional<Json> next(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Skips events until one matches; nullopt if none does within `timeout`.
  std::optional<Json> wait_for(const std::function<bool(const Json &)> &match,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Whether the host closes the stream within `timeout` (events still queued are skipped).
  bool closed_within(std::chrono::milliseconds timeout);
  // The code of the host's close frame once the stream is closed; nullopt when the connection
  // ended without one (or is still open).
  std::optional<int> close_code();

  std::optional<Json> wait_for_type(const std::string &type,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Tries a WebSocket upgrade and returns the HTTP status the host answered with (101 when it
// accepted).
int websocket_upgrade_status(uint16_t port, const std::string &token);

// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
bool eventually(const std::function<bool()> &condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace connector::test

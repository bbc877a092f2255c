// The host's network front: one HTTP/1.1 port serving the control API, the WebSocket of live
// events (/api/v1/events) and the connection screen's files, on Boost.Beast.
//
// One thread does all network I/O; requests are answered on a pool of worker threads, so a slow
// plugin verb never stalls other clients. Every connection has a body limit, a header limit and a
// timeout; a WebSocket client that cannot keep up with its events is dropped, not waited for.
#pragma once

#include "accounts/EventHub.hpp"
#include "api/ControlApi.hpp"
#include "common/Expected.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace connector::api {

struct ServerSettings {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0 picks a free port
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  size_t max_header_count = 100;
  int64_t request_timeout_ms = 30000;
  size_t websocket_max_message_bytes = 64 << 10;
  size_t websocket_queue_limit = 1024;
  // How often an open WebSocket's token is checked again. Revocations through the API close the
  // token's WebSockets at once; this catches those made elsewhere (the command line).
  int64_t websocket_token_check_seconds = 5;
  int worker_threads = 4;
  std::filesystem::path static_dir;  // the connection screen's files; empty: none
};

class Server {
 public:
  Server(ServerSettings settings, ControlApi &api, accounts::EventHub &events);
  ~Server();
  Server(const Server &) = delete;
  Server &operator=(const Server &) = delete;

  // Binds and starts serving; returns the port bound.
  Expected<uint16_t> start();

  // Stops accepting, closes every connection and joins the threads. Idempotent.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace connector::api

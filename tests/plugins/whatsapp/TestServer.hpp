// The WhatsApp test server (server/main.mjs) as a child process of the test, with its control
// interface. Everything stays on 127.0.0.1.
#pragma once

#include "ApiClient.hpp"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace connector::test {

class WhatsAppTestServer {
 public:
  // Starts the server; `refs` is how many QR refs each pairing offers before the client gives up.
  explicit WhatsAppTestServer(int refs = 3);
  ~WhatsAppTestServer();
  WhatsAppTestServer(const WhatsAppTestServer &) = delete;
  WhatsAppTestServer &operator=(const WhatsAppTestServer &) = delete;

  const std::string &ws_url() const { return ws_url_; }
  const std::string &root_key() const { return root_key_; }
  // The media host's certificate (PEM file), which only the plugin's test setting trusts.
  const std::string &media_ca_file() const { return media_ca_file_; }

  // A control call; throws std::runtime_error when the server answers with an error.
  Json call(const std::string &method, const std::string &path, const Json &body = nullptr) const;
  // The same with a body written by the caller (JSON this library would not write, e.g. a lone
  // UTF-16 surrogate escape).
  Json call_raw(const std::string &method, const std::string &path, const std::string &body) const;

  // Shorthands for the control interface (see server/main.mjs).
  Json scan(const std::string &qr, const std::string &phone) const;
  Json send(const Json &message) const;
  Json history(const Json &sync) const { return call("POST", "/history", sync); }
  Json received() const { return call("GET", "/received"); }
  Json info() const { return call("GET", "/info"); }
  // The paired devices (GET /info's "devices"), held by value.
  Json devices() const;
  bool device_connected(const std::string &phone) const;
  int kick(const std::string &phone, int code) const;

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  uint16_t control_port_ = 0;
  std::string ws_url_;
  std::string root_key_;
  std::string media_ca_file_;
};

// The plugins section of a host configuration that enables the WhatsApp plugin against `server`.
std::string whatsapp_plugin_yaml(const WhatsAppTestServer &server, int qr_timeout_ms = 0,
                                 const std::string &extra_settings = {});

// Process ids of this process's children whose command line contains `needle` (the bridge).
std::vector<pid_t> own_children_running(const std::string &needle);

}  // namespace connector::test

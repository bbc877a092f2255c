// The whole host, assembled from its configuration: store, secrets, plugins, accounts, control
// API and server. main() runs one; the tests run several, in-process, against real sockets.
#pragma once

#include "api/Http.hpp"
#include "common/Expected.hpp"
#include "config/Config.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace connector::app {

class Host {
 public:
  // Opens the store, loads the plugins and starts serving; the accounts that were connected
  // when the host last stopped are resumed. Fails with a message naming what to fix.
  static Expected<std::unique_ptr<Host>> start(const config::Config &config);

  // A database file gone from a data folder that still holds what an earlier store left (the
  // secret key, attachments) is a loss to be told, not a first start: fails with
  // "database_missing", naming the file and the ways out. The admin commands check it too.
  static Outcome check_database_present(const std::filesystem::path &data_dir);

  ~Host();  // stops serving, shuts the plugins down and closes the store
  Host(const Host &) = delete;
  Host &operator=(const Host &) = delete;

  uint16_t port() const;
  const std::string &public_url() const;

  // On the very first start (no attendant yet) an admin is created; this is their one-time
  // login link. Empty on later starts.
  const std::string &first_login_link() const;

  // Answers one control-API request in-process, as the server's workers do, without a socket
  // (the API fuzzer drives the host this way).
  api::Response handle(const api::Request &request);

  struct Parts;

 private:
  explicit Host(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace connector::app

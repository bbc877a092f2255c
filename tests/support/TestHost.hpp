// A real host running in the test's process: its own data folder, a free loopback port, the
// example plugin enabled, and an admin token ready to use.
#pragma once

#include "ApiClient.hpp"
#include "TempDir.hpp"

#include "app/Host.hpp"

#include <memory>
#include <string>

namespace connector::test {

class TestHost {
 public:
  // `plugins_yaml` replaces the default plugins section (the loopback plugin); `extra_yaml` is
  // appended to the configuration as it is.
  explicit TestHost(std::string plugins_yaml = {}, std::string extra_yaml = {});
  ~TestHost();

  uint16_t port() const;
  const TempDir &dir() const { return dir_; }
  std::filesystem::path data_dir() const { return dir_ / "data"; }

  // Stops the host and starts it again on the same data folder (and a new port).
  void restart();
  void stop();
  void start();

  ApiClient admin() const { return ApiClient(port(), admin_token_); }
  ApiClient anonymous() const { return ApiClient(port()); }
  const std::string &admin_token() const { return admin_token_; }

  // Creates an attendant through the admin API and returns a client holding their token.
  struct Person {
    std::string id;
    std::string token;
  };
  Person add_attendant(const std::string &name);

  // Creates an account of `plugin` for the client's attendant; returns its id.
  static std::string create_account(const ApiClient &client, const std::string &plugin,
                                    const std::string &label = "test");

  std::string config_text() const { return config_text_; }

 private:
  TempDir dir_;
  std::string config_text_;
  std::unique_ptr<app::Host> host_;
  std::string admin_token_;
};

// The default plugins section: the example loopback plugin with short QR timings.
std::string loopback_plugin_yaml(int qr_ttl_ms = 60000, int qr_pairs_after_ms = 0);

}  // namespace connector::test

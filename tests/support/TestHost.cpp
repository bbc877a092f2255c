#include "TestHost.hpp"

#include "config/Config.hpp"
#include "log/Log.hpp"

#include <stdexcept>

namespace connector::test {

std::string loopback_plugin_yaml(int qr_ttl_ms, int qr_pairs_after_ms) {
  return "plugins:\n"
         "  loopback:\n"
         "    library: " CONNECTOR_PLUGIN_DIR "/libconnector_loopback.so\n"
         "    settings:\n"
         "      qr_ttl_ms: " + std::to_string(qr_ttl_ms) + "\n" +
         "      qr_pairs_after_ms: " + std::to_string(qr_pairs_after_ms) + "\n";
}

TestHost::TestHost(std::string plugins_yaml, std::string extra_yaml) {
  config_text_ = "listen:\n  address: 127.0.0.1\n  port: 0\n"
                 "data_dir: data\n"
                 "log:\n  level: warn\n" +
                 (plugins_yaml.empty() ? loopback_plugin_yaml() : plugins_yaml) + extra_yaml;
  start();
}

TestHost::~TestHost() { stop(); }

void TestHost::start() {
  log::init("warn");
  auto config = config::parse_config(config_text_, "test.yaml", dir_.path());
  if (!config) throw std::runtime_error(config.failure().message);
  auto host = app::Host::start(*config);
  if (!host) throw std::runtime_error(host.failure().message);
  host_ = std::move(*host);

  // The first start prints a login link: redeem it like the UI would.
  const std::string link = host_->first_login_link();
  if (!link.empty()) {
    const std::string code = link.substr(link.find("#login=") + 7);
    auto redeemed = anonymous().post("/api/v1/auth/login-link", {{"code", code}});
    if (redeemed.status != 201) throw std::runtime_error("login link refused: " + redeemed.body);
    admin_token_ = redeemed.json()["token"];
  }
}

void TestHost::stop() { host_.reset(); }

void TestHost::restart() {
  stop();
  start();
}

uint16_t TestHost::port() const {
  if (!host_) throw std::runtime_error("the test host is not running");
  return host_->port();
}

TestHost::Person TestHost::add_attendant(const std::string &name) {
  auto created = admin().post("/api/v1/attendants", {{"name", name}});
  if (created.status != 201) throw std::runtime_error("cannot add attendant: " + created.body);
  const std::string id = created.json()["id"];
  auto token = admin().post("/api/v1/attendants/" + id + "/tokens", {{"label", "test"}});
  if (token.status != 201) throw std::runtime_error("cannot issue token: " + token.body);
  return {id, token.json()["token"]};
}

std::string TestHost::create_account(const ApiClient &client, const std::string &plugin,
                                     const std::string &label) {
  auto created = client.post("/api/v1/accounts", {{"plugin", plugin}, {"label", label}});
  if (created.status != 201) throw std::runtime_error("cannot create account: " + created.body);
  return created.json()["id"];
}

}  // namespace connector::test

// The control API: any request, from anyone, gets an answer that is not a fault (500 means an
// exception escaped a route), JSON answers are JSON, no answer repeats a token other than the
// one it just issued, and an attendant never sees another attendant's account.
//
// An input is "<METHOD> <target>\n<who>\n<body>": who is admin, alice, bob, or anything else,
// which is sent as the bearer token itself. Alice owns one account of the loopback plugin.
#include "FuzzCheck.hpp"
#include "app/Host.hpp"
#include "config/Config.hpp"
#include "log/Log.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace {

using connector::api::Json;
using connector::api::Request;
using connector::api::Response;

struct World {
  std::filesystem::path dir;
  std::unique_ptr<connector::app::Host> host;
  std::string admin, alice, bob, alice_account;

  World() {
    char name[] = "/tmp/connector-api-fuzz-XXXXXX";
    FUZZ_CHECK(::mkdtemp(name) != nullptr, "cannot make a data folder");
    dir = name;
    connector::log::init("off");
    const std::string yaml = "listen:\n  address: 127.0.0.1\n  port: 0\n"
                             "data_dir: data\n"
                             "plugins:\n  loopback:\n    library: " CONNECTOR_PLUGIN_DIR
                             "/libconnector_loopback.so\n";
    auto config = connector::config::parse_config(yaml, "fuzz.yaml", dir);
    FUZZ_CHECK(config, "the fuzz configuration is refused");
    auto started = connector::app::Host::start(*config);
    FUZZ_CHECK(started, "the host does not start");
    host = std::move(*started);

    const std::string link = host->first_login_link();
    admin = answer("POST", "/api/v1/auth/login-link", "",
                   Json{{"code", link.substr(link.find("#login=") + 7)}})["token"];
    alice = attendant("alice");
    bob = attendant("bob");
    alice_account = answer("POST", "/api/v1/accounts", alice,
                           Json{{"plugin", "loopback"}, {"label", "fuzz"}})["id"];
  }

  ~World() {
    host.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  Json answer(const std::string &method, const std::string &path, const std::string &token,
              const Json &body) {
    Request request;
    request.method = method;
    request.path = path;
    request.bearer_token = token;
    request.content_type = "application/json";
    request.body = body.dump();
    Response response = host->handle(request);
    if (response.status / 100 != 2) {
      std::fprintf(stderr, "set-up %s %s answered %d: %s\n", method.c_str(), path.c_str(),
                   response.status, response.body.c_str());
    }
    FUZZ_CHECK(response.status / 100 == 2, "the fuzz set-up was refused");
    return Json::parse(response.body);
  }

  std::string attendant(const std::string &who) {
    const std::string id = answer("POST", "/api/v1/attendants", admin, Json{{"name", who}})["id"];
    return answer("POST", "/api/v1/attendants/" + id + "/tokens", admin, Json{{"label", "fuzz"}})
        ["token"];
  }

  std::string token_of(std::string_view who) const {
    if (who == "admin") return admin;
    if (who == "alice") return alice;
    if (who == "bob") return bob;
    return std::string(who);
  }
};

World &world() {
  static World instance;
  return instance;
}

std::string_view next_line(std::string_view &input) {
  const size_t end = input.find('\n');
  const std::string_view line = input.substr(0, end);
  input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view input(reinterpret_cast<const char *>(data), size);
  const std::string_view first = next_line(input);
  const std::string_view who = next_line(input);
  const size_t space = first.find(' ');
  if (space == std::string_view::npos) return 0;

  // The server turns the request target into a path and query the same way.
  auto target = connector::api::split_target(first.substr(space + 1));
  if (!target) return 0;
  World &w = world();
  Request request;
  request.method = std::string(first.substr(0, space));
  request.path = target->first;
  request.query = target->second;
  request.bearer_token = w.token_of(who);
  request.content_type = "application/json";
  request.body = std::string(input);

  const Response response = w.host->handle(request);
  FUZZ_CHECK(response.status != 500, "an exception escaped a route");
  FUZZ_CHECK(response.status >= 200 && response.status < 600, "not an HTTP status");
  if (response.content_type == "application/json" && !response.body.empty()) {
    FUZZ_CHECK(!Json::parse(response.body, nullptr, false).is_discarded(),
               "a JSON answer that is not JSON");
  }
  for (const std::string *token : {&w.admin, &w.alice, &w.bob}) {
    if (*token == request.bearer_token || first.find(*token) != std::string_view::npos ||
        request.body.find(*token) != std::string::npos) {
      continue;
    }
    FUZZ_CHECK(response.body.find(*token) == std::string::npos, "an answer repeats a token");
  }
  if (request.bearer_token == w.bob && request.body.find(w.alice_account) == std::string::npos &&
      request.path.find(w.alice_account) == std::string::npos) {
    FUZZ_CHECK(response.body.find(w.alice_account) == std::string::npos,
               "bob sees alice's account");
  }
  return 0;
}

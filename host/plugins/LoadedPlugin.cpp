#include "plugins/LoadedPlugin.hpp"

#include <cstddef>
#include <cstdlib>

#include "log/Log.hpp"

namespace connector::plugins {
namespace {

// A string handed over by the plugin, allocated with cn_host_api.alloc (malloc).
struct ReleaseWithFree {
  void operator()(char *text) const { std::free(text); }
};
using PluginString = std::unique_ptr<char, ReleaseWithFree>;

PluginString take(char *text) { return PluginString(text); }

const char *code_of(cn_result rc) {
  switch (rc) {
    case CN_OK:
      return "ok";
    case CN_ERR_INVALID_ARGUMENT:
      return "invalid_argument";
    case CN_ERR_NOT_FOUND:
      return "not_found";
    case CN_ERR_UNSUPPORTED:
      return "unsupported";
    case CN_ERR_STATE:
      return "state";
    case CN_ERR_AUTH:
      return "auth";
    case CN_ERR_NETWORK:
      return "network";
    case CN_ERR_STORAGE:
      return "storage";
    case CN_ERR_INTERNAL:
      break;
  }
  return "internal";
}

}  // namespace

LoadedPlugin::LoadedPlugin(PluginFile file, boost::dll::shared_library library,
                           std::unique_ptr<HostTable> host, const cn_plugin_api &api,
                           nlohmann::json descriptor)
    : library_(std::move(library)),
      host_(std::move(host)),
      file_(std::move(file)),
      api_(api),
      descriptor_(std::move(descriptor)),
      id_(descriptor_.value("id", std::string())) {}

LoadedPlugin::~LoadedPlugin() {
  // The plugin may still be calling the host table from its own threads until shutdown returns;
  // host_ and library_ are released after this body, in that order.
  api_.shutdown(api_.plugin);
  log::debug({id_}, "plugin shut down");
}

Outcome LoadedPlugin::configure(const nlohmann::json &settings) {
  char *error = nullptr;
  const std::string text = settings.dump();
  const cn_result rc = api_.configure(api_.plugin, text.c_str(), &error);
  return outcome("configure", rc, error);
}

Outcome LoadedPlugin::connect(const std::string &account_id, const nlohmann::json &params) {
  char *error = nullptr;
  const std::string text = params.dump();
  const cn_result rc = api_.connect(api_.plugin, account_id.c_str(), text.c_str(), &error);
  return outcome("connect", rc, error);
}

Outcome LoadedPlugin::disconnect(const std::string &account_id, bool forget) {
  char *error = nullptr;
  const cn_result rc = api_.disconnect(api_.plugin, account_id.c_str(), forget ? 1 : 0, &error);
  return outcome("disconnect", rc, error);
}

Outcome LoadedPlugin::refresh_qr(const std::string &account_id) {
  char *error = nullptr;
  const cn_result rc = api_.refresh_qr(api_.plugin, account_id.c_str(), &error);
  return outcome("refresh_qr", rc, error);
}

Expected<nlohmann::json> LoadedPlugin::status(const std::string &account_id) {
  char *out = nullptr;
  char *error = nullptr;
  const cn_result rc = api_.status(api_.plugin, account_id.c_str(), &out, &error);
  return json_result("status", rc, out, error);
}

Expected<nlohmann::json> LoadedPlugin::send(const std::string &account_id,
                                            const nlohmann::json &message) {
  char *out = nullptr;
  char *error = nullptr;
  const std::string text = message.dump();
  const cn_result rc = api_.send(api_.plugin, account_id.c_str(), text.c_str(), &out, &error);
  return json_result("send", rc, out, error);
}

Expected<nlohmann::json> LoadedPlugin::link(const nlohmann::json &message) {
  char *out = nullptr;
  char *error = nullptr;
  const std::string text = message.dump();
  const cn_result rc = api_.link(api_.plugin, text.c_str(), &out, &error);
  return json_result("link", rc, out, error);
}

Expected<nlohmann::json> LoadedPlugin::oauth_start(const std::string &account_id,
                                                   const nlohmann::json &request) {
  // A 1.0 plugin's table ends before oauth_start: its struct_size says so.
  const bool offered = api_.struct_size >= offsetof(cn_plugin_api, oauth_start) +
                                               sizeof(api_.oauth_start) &&
                       api_.oauth_start != nullptr;
  if (!offered) return failure("unsupported", "plugin " + id_ + " does not sign in with OAuth");
  char *out = nullptr;
  char *error = nullptr;
  const std::string text = request.dump();
  const cn_result rc =
      api_.oauth_start(api_.plugin, account_id.c_str(), text.c_str(), &out, &error);
  return json_result("oauth_start", rc, out, error);
}

Outcome LoadedPlugin::outcome(const char *verb, cn_result rc, char *error) const {
  const PluginString owned_error = take(error);
  if (rc == CN_OK) return Ok{};
  const std::string text = owned_error != nullptr
                               ? log::mask(owned_error.get())
                               : "plugin " + id_ + " failed to " + verb + " (" + code_of(rc) + ")";
  return failure(code_of(rc), text);
}

Expected<nlohmann::json> LoadedPlugin::json_result(const char *verb, cn_result rc, char *out,
                                                   char *error) const {
  const PluginString owned_out = take(out);
  if (auto done = outcome(verb, rc, error); !done) return done.failure();
  auto value = nlohmann::json::parse(owned_out ? owned_out.get() : "", nullptr, false);
  if (value.is_discarded()) {
    return failure("internal", "plugin " + id_ + " returned malformed JSON from " + verb);
  }
  return value;
}

}  // namespace connector::plugins

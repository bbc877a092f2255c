// A plugin that passed every check and is running: its library, its tables and its descriptor.
#pragma once

#include <connector/sdk.h>

#include <boost/dll/shared_library.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/Expected.hpp"
#include "plugins/HostTable.hpp"
#include "plugins/PluginFile.hpp"

namespace connector::plugins {

// Owns one loaded plugin. The verbs are thin: they pass JSON across the C boundary and turn the
// plugin's result code and error text into a Failure whose code names the cn_result
// ("invalid_argument", "not_found", "unsupported", "state", "auth", "network", "storage",
// "internal") and whose message is the plugin's text, with known secrets masked.
//
// Threading: the verbs follow cn_plugin_api's rules (never two verbs of one account at once);
// this class adds no locking and no state of its own. Destruction calls shutdown and only then
// unloads the library, so no plugin code can run after its library is gone.
class LoadedPlugin {
 public:
  // Takes over a plugin whose entry point succeeded and whose table and descriptor were
  // checked (see load() in PluginLoader.hpp).
  LoadedPlugin(PluginFile file, boost::dll::shared_library library, std::unique_ptr<HostTable> host,
               const cn_plugin_api &api, nlohmann::json descriptor);
  ~LoadedPlugin();
  LoadedPlugin(const LoadedPlugin &) = delete;
  LoadedPlugin &operator=(const LoadedPlugin &) = delete;

  const std::string &id() const { return id_; }
  const PluginFile &file() const { return file_; }
  const nlohmann::json &descriptor() const { return descriptor_; }

  // Applies settings already checked with validate_settings(). Called once, before other verbs.
  Outcome configure(const nlohmann::json &settings);

  // Starts connecting; params is {"values":{…}}, {"resume":true} or {"oauth":{…}}.
  Outcome connect(const std::string &account_id, const nlohmann::json &params);
  Outcome disconnect(const std::string &account_id, bool forget);
  Outcome refresh_qr(const std::string &account_id);

  // The account's status object, as a "status" event plus "qr" while pairing.
  Expected<nlohmann::json> status(const std::string &account_id);

  // Sends a message; returns {"external_id", "to", "status"}.
  Expected<nlohmann::json> send(const std::string &account_id, const nlohmann::json &message);

  // The link keys of a stored inbound message body.
  Expected<nlohmann::json> link(const nlohmann::json &message);

  // Begins an OAuth flow (SDK 1.1); request is {"values","redirect_uri","state"}, the answer
  // {"authorization_url"}. "unsupported" for a plugin without the verb.
  Expected<nlohmann::json> oauth_start(const std::string &account_id,
                                       const nlohmann::json &request);

 private:
  Outcome outcome(const char *verb, cn_result rc, char *error) const;
  Expected<nlohmann::json> json_result(const char *verb, cn_result rc, char *out,
                                       char *error) const;

  // Declared first so it is destroyed last: the library outlives everything taken from it.
  boost::dll::shared_library library_;
  std::unique_ptr<HostTable> host_;
  PluginFile file_;
  cn_plugin_api api_;
  nlohmann::json descriptor_;
  std::string id_;
};

}  // namespace connector::plugins

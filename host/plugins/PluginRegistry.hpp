// The plugins the configuration enables: each one loaded and configured, or refused with a reason.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/LoadedPlugin.hpp"
#include "plugins/PluginServices.hpp"

namespace connector::plugins {

// One plugin as the configuration enables it.
struct PluginSpec {
  std::string id;                 // the id the plugin's descriptor must declare
  std::filesystem::path library;  // its shared library
  nlohmann::json settings = nlohmann::json::object();  // the admin's settings, from YAML
};

enum class PluginState { kLoaded, kRefused };

// What the API shows about one configured plugin.
struct PluginRecord {
  std::string id;
  std::filesystem::path path;
  PluginState state = PluginState::kRefused;
  std::string code;  // why it was refused ("incompatible", "invalid_config", …); empty if loaded
  std::string reason;         // one line for the admin; empty if loaded
  nlohmann::json descriptor;  // null if refused

  // {"id", "path", "state": "loaded"|"refused", "code", "reason", "descriptor"}
  nlohmann::json to_json() const;
  // The reason for attendants: the library's place on the server (for admins only) left out,
  // the file named by its name alone.
  std::string attendant_reason() const;
};

// Loads every configured plugin, in order. A plugin is refused, with one error line in the host
// log, when load() refuses it, when its descriptor declares another id than the configured one,
// when its settings do not match what it declares, or when its configure verb fails; the host
// carries on with the others.
//
// `services` must outlive the registry. Destroying the registry shuts the plugins down, last
// loaded first. Built once at startup, then read-only: find() and records() are thread-safe.
class PluginRegistry {
 public:
  PluginRegistry(const std::vector<PluginSpec> &specs, PluginServices &services);
  ~PluginRegistry();
  PluginRegistry(const PluginRegistry &) = delete;
  PluginRegistry &operator=(const PluginRegistry &) = delete;

  // Every configured plugin, loaded or refused, in configuration order.
  const std::vector<PluginRecord> &records() const { return records_; }

  // The loaded plugin with this id, or nullptr when it was refused or is not configured.
  LoadedPlugin *find(std::string_view id) const;

 private:
  Expected<std::unique_ptr<LoadedPlugin>> start(const PluginSpec &spec);

  PluginServices &services_;
  std::vector<PluginRecord> records_;
  std::vector<std::unique_ptr<LoadedPlugin>> plugins_;
};

}  // namespace connector::plugins

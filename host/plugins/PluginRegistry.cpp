#include "plugins/PluginRegistry.hpp"

#include "log/Log.hpp"
#include "plugins/Descriptor.hpp"
#include "plugins/PluginLoader.hpp"

namespace connector::plugins {

nlohmann::json PluginRecord::to_json() const {
  return {{"id", id},
          {"path", path.string()},
          {"state", state == PluginState::kLoaded ? "loaded" : "refused"},
          {"code", code},
          {"reason", reason},
          {"descriptor", descriptor}};
}

std::string PluginRecord::attendant_reason() const {
  std::string text = reason;
  const std::string full = path.string();
  const std::string name = path.filename().string();
  if (full.empty() || full == name) return text;
  for (size_t at = text.find(full); at != std::string::npos;
       at = text.find(full, at + name.size())) {
    text.replace(at, full.size(), name);
  }
  return text;
}

PluginRegistry::PluginRegistry(const std::vector<PluginSpec> &specs, PluginServices &services)
    : services_(services) {
  for (const auto &spec : specs) {
    PluginRecord record;
    record.id = spec.id;
    record.path = spec.library;
    auto plugin = start(spec);
    if (plugin) {
      record.state = PluginState::kLoaded;
      record.descriptor = (*plugin)->descriptor();
      log::info({"host"}, "plugin " + spec.id + " " + record.descriptor.value("version", "") +
                              " loaded from " + spec.library.string() + " (connector SDK " +
                              (*plugin)->file().abi_version() + ")");
      plugins_.push_back(std::move(*plugin));
    } else {
      record.code = plugin.failure().code;
      record.reason = plugin.failure().message;
      log::error({"host"}, record.reason);
    }
    records_.push_back(std::move(record));
  }
}

PluginRegistry::~PluginRegistry() {
  while (!plugins_.empty()) plugins_.pop_back();
}

LoadedPlugin *PluginRegistry::find(std::string_view id) const {
  for (const auto &plugin : plugins_) {
    if (plugin->id() == id) return plugin.get();
  }
  return nullptr;
}

Expected<std::unique_ptr<LoadedPlugin>> PluginRegistry::start(const PluginSpec &spec) {
  const std::string named = "plugin " + spec.id + " (" + spec.library.string() + ")";
  if (find(spec.id) != nullptr) {
    return failure("invalid_config", named + " is configured twice: keep one entry per id");
  }
  auto plugin = load(spec.library, spec.id, services_);
  if (!plugin) return plugin;

  // Each refusal below drops the plugin, which shuts it down.
  const LoadedPlugin &loaded = **plugin;
  if (loaded.id() != spec.id) {
    return failure("invalid_config", named + " declares the id \"" + loaded.id() +
                                         "\": enable it under that id or fix the library path");
  }
  auto settings = validate_settings(loaded.descriptor(), spec.settings);
  if (!settings) return failure("invalid_config", named + ": " + settings.failure().message);
  if (auto configured = (*plugin)->configure(*settings); !configured) {
    return failure("invalid_config",
                   named + " refused its settings: " + configured.failure().message);
  }
  return plugin;
}

}  // namespace connector::plugins

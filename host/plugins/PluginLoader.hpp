// Loading a plugin: version check first, then the library, its entry point and its tables.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/Expected.hpp"
#include "plugins/LoadedPlugin.hpp"
#include "plugins/PluginServices.hpp"

namespace connector::plugins {

// Loads the plugin at `path` and starts it:
//   1. inspect(path): the SDK version and the entry point are checked without loading the file;
//   2. the library is opened (RTLD_NOW | RTLD_LOCAL) and connector_plugin_entry is called with a
//      host table whose calls reach `services`, tagged with `plugin_id`;
//   3. the returned cn_plugin_api is checked (struct_size, every verb present) and its
//      descriptor parsed and validated (validate_descriptor).
// A plugin refused after its entry point succeeded is shut down before its library is closed.
// Refusals are one line naming the file, with codes "not_found", "not_a_plugin",
// "incompatible", "init_failed" or "invalid_plugin".
//
// `services` must outlive the returned plugin. Neither the descriptor's id nor the settings are
// checked here: PluginRegistry does that against the configuration.
Expected<std::unique_ptr<LoadedPlugin>> load(const std::filesystem::path &path,
                                             const std::string &plugin_id,
                                             PluginServices &services);

}  // namespace connector::plugins

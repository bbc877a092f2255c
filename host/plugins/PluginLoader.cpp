#include "plugins/PluginLoader.hpp"

#include <cstddef>
#include <cstdlib>
#include <exception>
#include <type_traits>

#include "log/Log.hpp"
#include "plugins/Descriptor.hpp"

namespace connector::plugins {
namespace {

using nlohmann::json;

// Every member up to shutdown exists since SDK 1.0, so a 1.x plugin fills at least this much;
// later members (oauth_start, 1.1) are read only when struct_size covers them.
constexpr size_t kMinPluginApiSize = offsetof(cn_plugin_api, shutdown) + sizeof(void (*)(void *));

std::string plugin_named(const std::filesystem::path &path) { return "plugin " + path.string(); }

// Opens the library; static constructors of the plugin run here, after inspect() accepted it.
Expected<boost::dll::shared_library> open(const PluginFile &file) {
  try {
    return boost::dll::shared_library(
        boost::dll::fs::path(file.path.string()),
        boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception &e) {
    return failure("not_a_plugin", plugin_named(file.path) + " could not be loaded (" + e.what() +
                                       "): install the libraries it needs or rebuild it");
  }
}

// Calls the entry point; on failure the plugin has released everything it made.
Outcome enter(const boost::dll::shared_library &library, const PluginFile &file,
              const HostTable &host, cn_plugin_api &api) {
  char *error = nullptr;
  cn_result rc = CN_ERR_INTERNAL;
  try {
    auto &entry = library.get<std::remove_pointer_t<cn_plugin_entry_fn>>(CN_PLUGIN_ENTRY_SYMBOL);
    rc = entry(host.api(), &api, &error);
  } catch (const std::exception &e) {
    // Only a plugin that ignores the SDK's rules lets an exception out of its entry point.
    return failure("init_failed",
                   plugin_named(file.path) + " failed to initialise: it threw " + e.what());
  } catch (...) {
    return failure("init_failed", plugin_named(file.path) + " failed to initialise: it threw");
  }
  if (rc == CN_OK) return Ok{};
  const std::string reason =
      error != nullptr ? log::mask(error) : "error code " + std::to_string(rc);
  std::free(error);
  return failure("init_failed", plugin_named(file.path) + " failed to initialise: " + reason);
}

Outcome check_table(const cn_plugin_api &api, const PluginFile &file) {
  const std::string prefix =
      plugin_named(file.path) + " (connector SDK " + file.abi_version() + ")";
  if (api.struct_size < kMinPluginApiSize) {
    return failure("invalid_plugin",
                   prefix + " filled in a cn_plugin_api of " + std::to_string(api.struct_size) +
                       " bytes, expected at least " + std::to_string(kMinPluginApiSize) +
                       ": rebuild it against the SDK headers");
  }
  const std::pair<const char *, bool> verbs[] = {
      {"descriptor_json", api.descriptor_json != nullptr},
      {"configure", api.configure != nullptr},
      {"connect", api.connect != nullptr},
      {"disconnect", api.disconnect != nullptr},
      {"refresh_qr", api.refresh_qr != nullptr},
      {"status", api.status != nullptr},
      {"send", api.send != nullptr},
      {"link", api.link != nullptr},
      {"shutdown", api.shutdown != nullptr}};
  for (const auto &[name, present] : verbs) {
    if (!present) {
      return failure("invalid_plugin", prefix + " left " + name +
                                           " empty in its cn_plugin_api: every member must be "
                                           "set (return CN_ERR_UNSUPPORTED for verbs it lacks)");
    }
  }
  return Ok{};
}

Expected<json> read_descriptor(const cn_plugin_api &api, const PluginFile &file) {
  const std::string prefix = plugin_named(file.path) + " has an invalid descriptor: ";
  auto descriptor = json::parse(api.descriptor_json, nullptr, false);
  if (descriptor.is_discarded()) {
    return failure("invalid_plugin", prefix + "it is not JSON: fix the plugin's descriptor()");
  }
  if (auto valid = validate_descriptor(descriptor); !valid) {
    return failure("invalid_plugin",
                   prefix + valid.failure().message + ": fix the plugin's descriptor()");
  }
  return descriptor;
}

// The table's checks, then the descriptor's: what a running plugin must offer to be kept.
Expected<json> accept(const cn_plugin_api &api, const PluginFile &file) {
  if (auto table = check_table(api, file); !table) return table.failure();
  return read_descriptor(api, file);
}

}  // namespace

Expected<std::unique_ptr<LoadedPlugin>> load(const std::filesystem::path &path,
                                             const std::string &plugin_id,
                                             PluginServices &services) {
  auto file = inspect(path);
  if (!file) return file.failure();
  auto library = open(*file);
  if (!library) return library.failure();

  // The host table must outlive the plugin; it moves into LoadedPlugin with the library.
  auto host = std::make_unique<HostTable>(services, plugin_id);
  cn_plugin_api api{};
  if (auto entered = enter(*library, *file, *host, api); !entered) return entered.failure();

  // From here on the plugin runs: a refusal shuts it down before the library closes.
  auto descriptor = accept(api, *file);
  if (!descriptor) {
    if (api.shutdown != nullptr) api.shutdown(api.plugin);
    return descriptor.failure();
  }
  return std::make_unique<LoadedPlugin>(std::move(*file), std::move(*library), std::move(host), api,
                                        std::move(*descriptor));
}

}  // namespace connector::plugins

#include "plugins/PluginFile.hpp"

#include <connector/sdk.h>

#include <algorithm>
#include <boost/dll/library_info.hpp>
#include <charconv>
#include <optional>
#include <string_view>
#include <vector>

#include "plugins/ElfSymbols.hpp"

namespace connector::plugins {
namespace {

constexpr std::string_view kMarkerPrefix = CN_SDK_ABI_SYMBOL_PREFIX;

std::string host_version() {
  return std::to_string(CN_SDK_ABI_MAJOR) + "." + std::to_string(CN_SDK_ABI_MINOR);
}

// Parses the "<major>_<minor>" tail of a marker name.
std::optional<std::pair<int, int>> parse_version(std::string_view tail) {
  const size_t sep = tail.find('_');
  if (sep == std::string_view::npos) return std::nullopt;
  int major = 0;
  int minor = 0;
  const auto [major_end, major_ec] = std::from_chars(tail.data(), tail.data() + sep, major);
  const auto [minor_end, minor_ec] =
      std::from_chars(tail.data() + sep + 1, tail.data() + tail.size(), minor);
  if (major_ec != std::errc() || major_end != tail.data() + sep || minor_ec != std::errc() ||
      minor_end != tail.data() + tail.size()) {
    return std::nullopt;
  }
  return std::make_pair(major, minor);
}

// Whether boost::dll recognises the file as a shared library of this platform (it parses the
// headers only). Its symbol listing is not used: see ElfSymbols.hpp.
bool is_native_library(const std::filesystem::path &path) {
  try {
    boost::dll::library_info info(boost::dll::fs::path(path.string()));
    return true;
  } catch (const std::exception &) {
    return false;
  }
}

Expected<PluginFile> read_marker(const std::filesystem::path &path,
                                 const std::vector<std::string> &symbols) {
  std::vector<std::string> markers;
  for (const auto &symbol : symbols) {
    if (std::string_view(symbol).starts_with(kMarkerPrefix)) markers.push_back(symbol);
  }
  const std::string rebuild = "rebuild it against connector SDK " +
                              std::to_string(CN_SDK_ABI_MAJOR) +
                              ".x, declaring the plugin with CONNECTOR_PLUGIN from "
                              "<connector/sdk.hpp>";
  if (markers.empty()) {
    return failure("not_a_plugin", "plugin " + path.string() +
                                       " carries no connector SDK version marker (" +
                                       std::string(kMarkerPrefix) + "<major>_<minor>): " + rebuild);
  }
  if (markers.size() > 1) {
    return failure("not_a_plugin",
                   "plugin " + path.string() +
                       " carries several connector SDK version markers: " + rebuild + " only");
  }
  const auto version = parse_version(std::string_view(markers[0]).substr(kMarkerPrefix.size()));
  if (!version) {
    return failure("not_a_plugin", "plugin " + path.string() + " carries a malformed SDK marker " +
                                       markers[0] + ": " + rebuild);
  }
  return PluginFile{path, version->first, version->second};
}

Outcome check_version(const PluginFile &file) {
  const std::string found = file.abi_version();
  const std::string prefix = "plugin " + file.path.string() + " was built for connector SDK " +
                             found + " but this host speaks " + host_version() + ": ";
  if (file.abi_major != CN_SDK_ABI_MAJOR) {
    return failure("incompatible", prefix + "rebuild the plugin against SDK " +
                                       std::to_string(CN_SDK_ABI_MAJOR) +
                                       ".x or use a host that supports " + found);
  }
  if (file.abi_minor > CN_SDK_ABI_MINOR) {
    return failure("incompatible", prefix + "rebuild the plugin against SDK " + host_version() +
                                       " or upgrade to a host that supports " + found);
  }
  return Ok{};
}

}  // namespace

std::string PluginFile::abi_version() const {
  return std::to_string(abi_major) + "." + std::to_string(abi_minor);
}

Expected<PluginFile> inspect(const std::filesystem::path &path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return failure("not_found", "plugin file " + path.string() +
                                    " does not exist: check the library path configured for it");
  }

  const auto symbols = is_native_library(path) ? exported_symbols(path) : std::nullopt;
  if (!symbols) {
    return failure("not_a_plugin", "plugin file " + path.string() +
                                       " is not a shared library: point the configuration at "
                                       "the plugin's .so file");
  }

  auto file = read_marker(path, *symbols);
  if (!file) return file;
  if (auto version = check_version(*file); !version) return version.failure();

  const bool has_entry =
      std::find(symbols->begin(), symbols->end(), CN_PLUGIN_ENTRY_SYMBOL) != symbols->end();
  if (!has_entry) {
    return failure("not_a_plugin", "plugin " + path.string() + " (connector SDK " +
                                       file->abi_version() + ") does not export " +
                                       CN_PLUGIN_ENTRY_SYMBOL +
                                       ": declare the plugin class with CONNECTOR_PLUGIN from "
                                       "<connector/sdk.hpp>");
  }
  return file;
}

}  // namespace connector::plugins

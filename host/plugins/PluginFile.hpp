// Reading a plugin file before any of its code runs.
#pragma once

#include <filesystem>
#include <string>

#include "common/Expected.hpp"

namespace connector::plugins {

// What the host learns from a plugin file without loading it.
struct PluginFile {
  std::filesystem::path path;
  int abi_major = 0;  // the SDK version the plugin was built against,
  int abi_minor = 0;  // read from its connector_sdk_abi_v<major>_<minor> marker

  std::string abi_version() const;  // "1.0"
};

// Reads the SDK version marker and checks the entry point of the shared library at `path`
// through its dynamic symbol table, without loading it: no static constructor of the plugin runs.
// Accepts a plugin whose major version equals CN_SDK_ABI_MAJOR and whose minor is not newer than
// CN_SDK_ABI_MINOR. A refusal is one line naming the file, both versions where they matter and
// what to do; its code is "not_found", "not_a_plugin" or "incompatible".
Expected<PluginFile> inspect(const std::filesystem::path &path);

}  // namespace connector::plugins

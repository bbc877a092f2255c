// Where the tests find the plugins they load.
#pragma once

#include <filesystem>
#include <string>

namespace connector::plugins::test {

inline std::filesystem::path fixture(const std::string &name) {
  return std::filesystem::path(CONNECTOR_FIXTURE_PLUGIN_DIR) / ("libfixture_" + name + ".so");
}

inline std::filesystem::path loopback_library() {
  return std::filesystem::path(CONNECTOR_PLUGIN_DIR) / "libconnector_loopback.so";
}

}  // namespace connector::plugins::test

// inspect(): the checks made on a plugin file before any of its code runs.
#include <gtest/gtest.h>

#include <cstdlib>

#include "Paths.hpp"
#include "TempDir.hpp"
#include "plugins/PluginFile.hpp"

namespace connector::plugins::test {
namespace {

std::string refusal(const std::filesystem::path &path) {
  auto file = inspect(path);
  EXPECT_FALSE(file.ok()) << path;
  return file ? std::string() : file.failure().code + " | " + file.failure().message;
}

TEST(PluginFileTest, AcceptsThePluginOfThisSdk) {
  auto file = inspect(loopback_library());
  ASSERT_TRUE(file.ok()) << file.failure().message;
  EXPECT_EQ(file->abi_major, 1);
  EXPECT_EQ(file->abi_minor, 1);
  EXPECT_EQ(file->abi_version(), "1.1");
  EXPECT_EQ(file->path, loopback_library());
}

TEST(PluginFileTest, ReadsTheMarkerOfAStrippedPlugin) {
  // Release packaging strips the static symbol table; the exported symbols must still be found.
  connector::test::TempDir dir;
  const auto stripped = dir / "libconnector_loopback.so";
  std::filesystem::copy_file(loopback_library(), stripped);
  const std::string command = "strip --strip-all '" + stripped.string() + "'";
  if (std::system(command.c_str()) != 0) GTEST_SKIP() << "strip is not available";
  ASSERT_EQ(std::system(("readelf -S '" + stripped.string() + "' | grep -q symtab").c_str()) == 0,
            false)
      << "strip left the static symbol table in place";

  auto file = inspect(stripped);
  ASSERT_TRUE(file.ok()) << file.failure().message;
  EXPECT_EQ(file->abi_version(), "1.1");
}

TEST(PluginFileTest, RefusesAMissingFile) {
  const auto path = fixture("that_was_never_built");
  EXPECT_EQ(refusal(path), "not_found | plugin file " + path.string() +
                               " does not exist: check the library path configured for it");
}

TEST(PluginFileTest, RefusesATextFileWithALibraryName) {
  const auto path = fixture("not_a_library");
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(refusal(path), "not_a_plugin | plugin file " + path.string() +
                               " is not a shared library: point the configuration at the "
                               "plugin's .so file");
}

TEST(PluginFileTest, RefusesALibraryWithoutVersionMarker) {
  const auto path = fixture("no_marker");
  EXPECT_EQ(refusal(path),
            "not_a_plugin | plugin " + path.string() +
                " carries no connector SDK version marker (connector_sdk_abi_v<major>_<minor>): "
                "rebuild it against connector SDK 1.x, declaring the plugin with CONNECTOR_PLUGIN "
                "from <connector/sdk.hpp>");
}

TEST(PluginFileTest, RefusesAnotherMajorVersion) {
  const auto path = fixture("abi_v2_0");
  EXPECT_EQ(refusal(path), "incompatible | plugin " + path.string() +
                               " was built for connector SDK 2.0 but this host speaks 1.1: "
                               "rebuild the plugin against SDK 1.x or use a host that supports "
                               "2.0");
}

TEST(PluginFileTest, RefusesANewerMinorVersion) {
  const auto path = fixture("abi_v1_9");
  EXPECT_EQ(refusal(path), "incompatible | plugin " + path.string() +
                               " was built for connector SDK 1.9 but this host speaks 1.1: "
                               "rebuild the plugin against SDK 1.1 or upgrade to a host that "
                               "supports 1.9");
}

TEST(PluginFileTest, RefusesALibraryWithoutEntryPoint) {
  const auto path = fixture("no_entry");
  EXPECT_EQ(refusal(path), "not_a_plugin | plugin " + path.string() +
                               " (connector SDK 1.1) does not export connector_plugin_entry: "
                               "declare the plugin class with CONNECTOR_PLUGIN from "
                               "<connector/sdk.hpp>");
}

}  // namespace
}  // namespace connector::plugins::test

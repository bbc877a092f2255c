// PluginRegistry: every configured plugin ends up loaded or refused, and the good ones still run.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <sstream>

#include "FakePluginServices.hpp"
#include "Paths.hpp"
#include "TempDir.hpp"
#include "plugins/PluginRegistry.hpp"

namespace connector::plugins::test {
namespace {

using nlohmann::json;

// Captures the host log for the duration of a test.
class CapturedLog {
 public:
  CapturedLog() {
    previous_ = spdlog::default_logger();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_pattern("%l %v");
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }

  std::string text() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_;
};

size_t count(const std::string &text, const std::string &part) {
  size_t found = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++found;
  }
  return found;
}

const PluginRecord &record_of(const PluginRegistry &registry, const std::string &id) {
  for (const auto &record : registry.records()) {
    if (record.id == id) return record;
  }
  throw std::runtime_error("no record for " + id);
}

TEST(PluginRegistryTest, KeepsTheGoodPluginsWhenOthersAreRefused) {
  CapturedLog log;
  FakePluginServices services;
  PluginRegistry registry({{"future", fixture("abi_v2_0")},
                           {"loopback", loopback_library(), {{"echo_prefix", "re: "}}},
                           {"text", fixture("not_a_library")},
                           {"broken", fixture("throws")}},
                          services);

  ASSERT_EQ(registry.records().size(), 4u);
  EXPECT_EQ(registry.records()[0].id, "future");  // configuration order
  EXPECT_EQ(record_of(registry, "future").state, PluginState::kRefused);
  EXPECT_EQ(record_of(registry, "future").code, "incompatible");
  EXPECT_EQ(record_of(registry, "text").state, PluginState::kRefused);
  EXPECT_EQ(record_of(registry, "broken").state, PluginState::kRefused);
  EXPECT_EQ(registry.find("future"), nullptr);
  EXPECT_EQ(registry.find("broken"), nullptr);

  const PluginRecord &loopback = record_of(registry, "loopback");
  EXPECT_EQ(loopback.state, PluginState::kLoaded);
  EXPECT_EQ(loopback.reason, "");
  EXPECT_EQ(loopback.descriptor["id"], "loopback");

  // One error line per refusal, carrying the reason.
  const std::string text = log.text();
  for (const char *id : {"future", "text", "broken"}) {
    EXPECT_EQ(count(text, "error [host] " + record_of(registry, id).reason + "\n"), 1u) << text;
  }
  EXPECT_EQ(count(text, "error "), 3u) << text;

  // The good plugin works, configured with its settings.
  LoadedPlugin *plugin = registry.find("loopback");
  ASSERT_NE(plugin, nullptr);
  ASSERT_TRUE(
      plugin->connect("acc-1", {{"values", {{"account", "ann"}, {"password", "pw-1234"}}}}).ok());
  ASSERT_TRUE(plugin->send("acc-1", {{"to", "+5511987654321"}, {"text", "hi"}}).ok());
  auto echo = services.wait_for_event([](const FakePluginServices::Event &event) {
    return event.body.value("type", "") == "message";
  });
  ASSERT_TRUE(echo.has_value());
  EXPECT_EQ(echo->body["text"], "re: hi");
}

TEST(PluginRegistryTest, RecordsSerialiseForTheApi) {
  FakePluginServices services;
  const auto path = fixture("abi_v1_9");
  PluginRegistry registry({{"newer", path}, {"loopback", loopback_library()}}, services);
  EXPECT_EQ(registry.records()[0].to_json(),
            json({{"id", "newer"},
                  {"path", path.string()},
                  {"state", "refused"},
                  {"code", "incompatible"},
                  {"reason", "plugin " + path.string() +
                                 " was built for connector SDK 1.9 but this host speaks 1.1: "
                                 "rebuild the plugin against SDK 1.1 or upgrade to a host that "
                                 "supports 1.9"},
                  {"descriptor", nullptr}}));
  const json loaded = registry.records()[1].to_json();
  EXPECT_EQ(loaded["state"], "loaded");
  EXPECT_EQ(loaded["descriptor"]["version"], "1.0.0");
}

TEST(PluginRegistryTest, RefusesADescriptorIdOtherThanTheConfiguredOne) {
  FakePluginServices services;
  const auto path = fixture("id_mismatch");
  PluginRegistry registry({{"quiet", path}}, services);
  const PluginRecord &record = record_of(registry, "quiet");
  EXPECT_EQ(record.state, PluginState::kRefused);
  EXPECT_EQ(record.reason, "plugin quiet (" + path.string() +
                               ") declares the id \"impostor\": enable it under that id or fix "
                               "the library path");
  EXPECT_EQ(registry.find("quiet"), nullptr);
  EXPECT_EQ(registry.find("impostor"), nullptr);
}

TEST(PluginRegistryTest, RefusesUnknownSettingsListingTheValidKeys) {
  FakePluginServices services;
  PluginRegistry registry({{"loopback", loopback_library(), {{"colour", "red"}}}}, services);
  const PluginRecord &record = record_of(registry, "loopback");
  EXPECT_EQ(record.state, PluginState::kRefused);
  EXPECT_EQ(record.code, "invalid_config");
  EXPECT_EQ(record.reason, "plugin loopback (" + loopback_library().string() +
                               "): unknown setting \"colour\" for plugin loopback: valid keys are "
                               "qr_ttl_ms, qr_pairs_after_ms, echo_prefix, "
                               "delivered_before_send_returns");
  EXPECT_EQ(registry.find("loopback"), nullptr);
}

TEST(PluginRegistryTest, RefusesSettingsOfTheWrongType) {
  FakePluginServices services;
  PluginRegistry registry({{"loopback", loopback_library(), {{"qr_ttl_ms", "1 minute"}}}},
                          services);
  EXPECT_EQ(record_of(registry, "loopback").reason,
            "plugin loopback (" + loopback_library().string() +
                "): setting \"qr_ttl_ms\" of plugin loopback must be an integer, not a string");
}

TEST(PluginRegistryTest, RefusesAPluginThatRejectsItsSettingsAndShutsItDown) {
  connector::test::TempDir dir;
  const auto shutdown_marker = dir / "shutdown-ran";
  ::setenv("CONNECTOR_FIXTURE_SHUTDOWN_MARKER", shutdown_marker.string().c_str(), 1);
  ::setenv("CONNECTOR_FIXTURE_CONFIGURE_ERROR", "the moon is in the wrong phase", 1);
  FakePluginServices services;
  const auto path = fixture("handmade");
  PluginRegistry registry({{"handmade", path}}, services);
  ::unsetenv("CONNECTOR_FIXTURE_SHUTDOWN_MARKER");
  ::unsetenv("CONNECTOR_FIXTURE_CONFIGURE_ERROR");

  EXPECT_EQ(record_of(registry, "handmade").reason,
            "plugin handmade (" + path.string() +
                ") refused its settings: the moon is in the wrong phase");
  EXPECT_TRUE(std::filesystem::exists(shutdown_marker));
}

TEST(PluginRegistryTest, RefusesAnIdConfiguredTwice) {
  FakePluginServices services;
  PluginRegistry registry({{"loopback", loopback_library()}, {"loopback", loopback_library()}},
                          services);
  ASSERT_EQ(registry.records().size(), 2u);
  EXPECT_EQ(registry.records()[0].state, PluginState::kLoaded);
  EXPECT_EQ(registry.records()[1].state, PluginState::kRefused);
  EXPECT_EQ(registry.records()[1].reason, "plugin loopback (" + loopback_library().string() +
                                              ") is configured twice: keep one entry per id");
  EXPECT_NE(registry.find("loopback"), nullptr);
}

}  // namespace
}  // namespace connector::plugins::test

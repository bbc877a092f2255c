// load(): refusals after inspection, the proof that refused files never run, and the verbs of a
// real plugin (the loopback example) reaching the host's services.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>

#include "FakePluginServices.hpp"
#include "Paths.hpp"
#include "TempDir.hpp"
#include "plugins/PluginLoader.hpp"

namespace connector::plugins::test {
namespace {

using nlohmann::json;

bool contains(const std::vector<std::string> &calls, const std::string &call) {
  return std::find(calls.begin(), calls.end(), call) != calls.end();
}

// Sets an environment variable for the duration of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char *name, const std::string &value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char *name_;
};

// --- Files refused before loading: none of their code may run. ---

class PluginRefusedBeforeLoadingTest : public ::testing::TestWithParam<const char *> {};

TEST_P(PluginRefusedBeforeLoadingTest, NoStaticConstructorRuns) {
  // A fresh copy: a library loaded earlier in this process may stay mapped, and then its static
  // constructors would not run again for the control below.
  connector::test::TempDir dir;
  const auto library = dir / ("lib" + std::string(GetParam()) + ".so");
  std::filesystem::copy_file(fixture(GetParam()), library);
  const auto marker = dir / "static-constructor-ran";
  ScopedEnv env("CONNECTOR_FIXTURE_MARKER", marker.string());
  FakePluginServices services;

  auto plugin = load(library, "fixture", services);
  ASSERT_FALSE(plugin.ok());
  EXPECT_FALSE(std::filesystem::exists(marker)) << plugin.failure().message;

  // Control: loading the same file directly does run its static constructor, so the marker
  // would have shown it above.
  { boost::dll::shared_library loaded(library.string()); }
  EXPECT_TRUE(std::filesystem::exists(marker));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PluginRefusedBeforeLoadingTest,
                         ::testing::Values("abi_v2_0", "abi_v1_9", "no_marker", "no_entry"));

TEST(PluginLoaderTest, RefusesAnEntryPointThatFails) {
  FakePluginServices services;
  const auto path = fixture("init_fails");
  auto plugin = load(path, "fixture", services);
  ASSERT_FALSE(plugin.ok());
  EXPECT_EQ(plugin.failure().code, "init_failed");
  EXPECT_EQ(plugin.failure().message,
            "plugin " + path.string() + " failed to initialise: the fixture refuses to start");
}

TEST(PluginLoaderTest, RefusesAPluginWhoseConstructorThrows) {
  FakePluginServices services;
  const auto path = fixture("throws");
  auto plugin = load(path, "fixture", services);
  ASSERT_FALSE(plugin.ok());
  EXPECT_EQ(plugin.failure().code, "init_failed");
  EXPECT_EQ(
      plugin.failure().message,
      "plugin " + path.string() + " failed to initialise: plugin error: constructor exploded");
}

// --- A plugin that started but offers a broken table: refused and shut down. ---

class PluginBrokenTableTest : public ::testing::Test {
 protected:
  // Loads the hand-made fixture; it must be refused, and shut down before its library closed.
  std::string refusal() {
    auto plugin = load(path_, "handmade", services_);
    EXPECT_FALSE(plugin.ok());
    EXPECT_TRUE(std::filesystem::exists(shutdown_marker_)) << "refused plugin was not shut down";
    return plugin ? std::string() : plugin.failure().code + " | " + plugin.failure().message;
  }

  connector::test::TempDir dir_;
  const std::filesystem::path shutdown_marker_ = dir_ / "shutdown-ran";
  ScopedEnv shutdown_env_{"CONNECTOR_FIXTURE_SHUTDOWN_MARKER", shutdown_marker_.string()};
  const std::filesystem::path path_ = fixture("handmade");
  const std::string prefix_ = "plugin " + path_.string();
  FakePluginServices services_;
};

TEST_F(PluginBrokenTableTest, AcceptsTheUnbrokenTableAndShutsItDownWhenDropped) {
  auto plugin = load(path_, "handmade", services_);
  ASSERT_TRUE(plugin.ok()) << plugin.failure().message;
  EXPECT_EQ((*plugin)->id(), "handmade");
  EXPECT_FALSE(std::filesystem::exists(shutdown_marker_));
  plugin->reset();
  EXPECT_TRUE(std::filesystem::exists(shutdown_marker_));
}

TEST_F(PluginBrokenTableTest, RefusesADescriptorThatIsNotJson) {
  ScopedEnv env("CONNECTOR_FIXTURE_DESCRIPTOR", "{\"id\": \"handmade\", ");
  EXPECT_EQ(refusal(), "invalid_plugin | " + prefix_ +
                           " has an invalid descriptor: it is not JSON: fix the plugin's "
                           "descriptor()");
}

TEST_F(PluginBrokenTableTest, RefusesADescriptorWithMissingFields) {
  ScopedEnv env("CONNECTOR_FIXTURE_DESCRIPTOR",
                R"({"id":"handmade","name":{"fr":"Fait main"},"capabilities":"qr"})");
  EXPECT_EQ(refusal(), "invalid_plugin | " + prefix_ +
                           " has an invalid descriptor: \"name\" must hold an \"en\" text; "
                           "\"version\" must be a non-empty string; \"capabilities\" must be an "
                           "array; \"connect_fields\" must be an array; \"settings\" must be an "
                           "array: fix the plugin's descriptor()");
}

TEST_F(PluginBrokenTableTest, RefusesAMissingVerb) {
  ScopedEnv env("CONNECTOR_FIXTURE_NULL_MEMBER", "send");
  EXPECT_EQ(refusal(), "invalid_plugin | " + prefix_ +
                           " (connector SDK 1.1) left send empty in its cn_plugin_api: every "
                           "member must be set (return CN_ERR_UNSUPPORTED for verbs it lacks)");
}

TEST_F(PluginBrokenTableTest, RefusesATooSmallTable) {
  ScopedEnv env("CONNECTOR_FIXTURE_STRUCT_SIZE", "16");
  EXPECT_EQ(refusal(), "invalid_plugin | " + prefix_ +
                           " (connector SDK 1.1) filled in a cn_plugin_api of 16 bytes, expected "
                           "at least " +
                           std::to_string(offsetof(cn_plugin_api, oauth_start)) +
                           ": rebuild it against the SDK headers");
}

TEST_F(PluginBrokenTableTest, RefusesATableWithoutShutdown) {
  ScopedEnv env("CONNECTOR_FIXTURE_NULL_MEMBER", "shutdown");
  auto plugin = load(path_, "handmade", services_);
  ASSERT_FALSE(plugin.ok());
  EXPECT_EQ(plugin.failure().message,
            prefix_ +
                " (connector SDK 1.1) left shutdown empty in its cn_plugin_api: every "
                "member must be set (return CN_ERR_UNSUPPORTED for verbs it lacks)");
}

// --- The loopback example, end to end through the loader. ---

class PluginLoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = load(loopback_library(), "loopback", services_);
    ASSERT_TRUE(loaded.ok()) << loaded.failure().message;
    plugin_ = std::move(*loaded);
    ASSERT_TRUE(plugin_->configure({{"echo_prefix", "ping: "}}).ok());
  }

  Outcome connect_with_password(const std::string &password) {
    return plugin_->connect(
        "acc-1",
        {{"values", {{"method", "password"}, {"account", "alice"}, {"password", password}}}});
  }

  std::optional<FakePluginServices::Event> status_event(const std::string &state) {
    return services_.wait_for_event([&](const FakePluginServices::Event &event) {
      return event.body.value("type", "") == "status" && event.body.value("state", "") == state;
    });
  }

  FakePluginServices services_;
  std::unique_ptr<LoadedPlugin> plugin_;
};

TEST_F(PluginLoopbackTest, ExposesItsDescriptor) {
  EXPECT_EQ(plugin_->id(), "loopback");
  EXPECT_EQ(plugin_->descriptor()["name"]["en"], "Loopback (example)");
  EXPECT_EQ(plugin_->descriptor()["settings"].size(), 4u);
  EXPECT_EQ(plugin_->file().abi_version(), "1.1");
}

TEST_F(PluginLoopbackTest, ConnectEmitsStatusAndStoresCredentialsThroughTheServices) {
  ASSERT_TRUE(connect_with_password("s3cret-pw").ok());

  auto event = status_event("connected");
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->plugin, "loopback");
  EXPECT_EQ(event->account, "acc-1");
  EXPECT_EQ(event->body["account"], "alice");

  const auto calls = services_.calls();
  EXPECT_TRUE(contains(calls, "store_put loopback acc-1 account"));
  EXPECT_TRUE(contains(calls, "store_put loopback acc-1 password secret"));
  EXPECT_EQ(services_.stored("loopback", "acc-1", "password"), "s3cret-pw");

  auto status = plugin_->status("acc-1");
  ASSERT_TRUE(status.ok()) << status.failure().message;
  EXPECT_EQ((*status)["state"], "connected");
}

TEST_F(PluginLoopbackTest, ResumeReadsStoredCredentials) {
  ASSERT_TRUE(connect_with_password("s3cret-pw").ok());
  ASSERT_TRUE(plugin_->disconnect("acc-1", false).ok());
  ASSERT_TRUE(plugin_->connect("acc-1", {{"resume", true}}).ok());
  EXPECT_TRUE(contains(services_.calls(), "store_get loopback acc-1 password"));
  EXPECT_EQ((*plugin_->status("acc-1"))["state"], "connected");
}

TEST_F(PluginLoopbackTest, ForgettingDeletesStoredCredentials) {
  ASSERT_TRUE(connect_with_password("s3cret-pw").ok());
  ASSERT_TRUE(plugin_->disconnect("acc-1", true).ok());
  EXPECT_TRUE(contains(services_.calls(), "store_delete loopback acc-1 password"));
  EXPECT_FALSE(services_.stored("loopback", "acc-1", "password").has_value());
  EXPECT_FALSE(plugin_->connect("acc-1", {{"resume", true}}).ok());
}

TEST_F(PluginLoopbackTest, SendReportsDeliveryAndEchoesThroughEmit) {
  ASSERT_TRUE(connect_with_password("s3cret-pw").ok());

  auto sent = plugin_->send("acc-1", {{"to", "bob@example.org"}, {"text", "hello"}});
  ASSERT_TRUE(sent.ok()) << sent.failure().message;
  const std::string external_id = (*sent)["external_id"];
  EXPECT_EQ((*sent)["status"], "sent");

  auto delivery = services_.wait_for_event([&](const FakePluginServices::Event &event) {
    return event.body.value("type", "") == "delivery" &&
           event.body.value("external_id", "") == external_id;
  });
  ASSERT_TRUE(delivery.has_value());
  EXPECT_EQ(delivery->body["status"], "delivered");

  auto echo = services_.wait_for_event([](const FakePluginServices::Event &event) {
    return event.body.value("type", "") == "message";
  });
  ASSERT_TRUE(echo.has_value());
  EXPECT_EQ(echo->body["text"], "ping: hello");  // the configured prefix reached the plugin
  EXPECT_EQ(echo->body["from"], "bob@example.org");
  EXPECT_EQ(echo->account, "acc-1");

  auto keys = plugin_->link(echo->body);
  ASSERT_TRUE(keys.ok()) << keys.failure().message;
  EXPECT_EQ((*keys)["emails"], json::array({"bob@example.org"}));
}

TEST_F(PluginLoopbackTest, TurnsPluginErrorsIntoFailures) {
  auto refused = connect_with_password("wrong");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.failure().code, "auth");
  EXPECT_EQ(refused.failure().message, "wrong account name or password");

  auto not_connected = plugin_->send("acc-2", {{"to", "+5511987654321"}, {"text", "hi"}});
  ASSERT_FALSE(not_connected.ok());
  EXPECT_EQ(not_connected.failure().code, "state");
  EXPECT_EQ(not_connected.failure().message, "the account is not connected");
}

}  // namespace
}  // namespace connector::plugins::test

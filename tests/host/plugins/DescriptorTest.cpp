// validate_descriptor() and validate_settings(), on descriptors written out here.
#include <gtest/gtest.h>

#include "plugins/Descriptor.hpp"

namespace connector::plugins::test {
namespace {

using nlohmann::json;

json descriptor() {
  return {{"id", "demo"},
          {"name", {{"en", "Demo"}}},
          {"version", "1.0.0"},
          {"capabilities", {"send"}},
          {"connect_fields", {{{"name", "address"}, {"type", "email"}}}},
          {"settings",
           {{{"key", "limit_mb"}, {"type", "integer"}, {"default", 16}},
            {{"key", "ratio"}, {"type", "number"}, {"default", 0.5}},
            {{"key", "greeting"}, {"type", "string"}},
            {{"key", "verbose"}, {"type", "boolean"}, {"default", false}},
            {{"key", "folders"}, {"type", "list"}, {"default", {"INBOX"}}}}}};
}

std::string settings_refusal(const json &given) {
  auto settings = validate_settings(descriptor(), given);
  EXPECT_FALSE(settings.ok()) << given;
  return settings ? std::string() : settings.failure().message;
}

TEST(PluginDescriptorTest, AcceptsACompleteDescriptor) {
  auto valid = validate_descriptor(descriptor());
  EXPECT_TRUE(valid.ok()) << valid.failure().message;
}

TEST(PluginDescriptorTest, ListsEveryProblemOfTheDeclaredSettingsAndFields) {
  json broken = descriptor();
  broken["id"] = "";
  broken["connect_fields"].push_back({{"label", "no name"}});
  broken["settings"].push_back({{"key", "limit_mb"}, {"type", "integer"}});
  broken["settings"].push_back({{"key", "colour"}, {"type", "enum"}});
  broken["settings"].push_back({{"key", "size"}, {"type", "integer"}, {"default", "big"}});
  broken["settings"].push_back({{"type", "string"}});

  auto valid = validate_descriptor(broken);
  ASSERT_FALSE(valid.ok());
  EXPECT_EQ(valid.failure().code, "invalid_plugin");
  EXPECT_EQ(valid.failure().message,
            "\"id\" must be a non-empty string; connect_fields[1] needs a \"name\" and a "
            "\"type\"; settings[5] repeats the key \"limit_mb\"; settings[6] (\"colour\") needs "
            "a \"type\" among integer, number, string, boolean, list; settings[7] (\"size\") has "
            "a default that is not an integer; settings[8] needs a \"key\"");
}

TEST(PluginDescriptorTest, RefusesANonObject) {
  auto valid = validate_descriptor(json::array());
  ASSERT_FALSE(valid.ok());
  EXPECT_EQ(valid.failure().message, "the descriptor is not an object");
}

TEST(PluginSettingsTest, FillsInDefaultsForKeysNotGiven) {
  auto settings = validate_settings(descriptor(), {{"limit_mb", 4}, {"greeting", "hi"}});
  ASSERT_TRUE(settings.ok()) << settings.failure().message;
  EXPECT_EQ(*settings, json({{"limit_mb", 4},
                             {"ratio", 0.5},
                             {"greeting", "hi"},
                             {"verbose", false},
                             {"folders", {"INBOX"}}}));
}

TEST(PluginSettingsTest, NoSettingsMeansAllDefaults) {
  auto settings = validate_settings(descriptor(), json());
  ASSERT_TRUE(settings.ok()) << settings.failure().message;
  // "greeting" declares no default, so it stays absent.
  EXPECT_EQ(*settings,
            json({{"limit_mb", 16}, {"ratio", 0.5}, {"verbose", false}, {"folders", {"INBOX"}}}));
}

TEST(PluginSettingsTest, AcceptsAnIntegerWhereANumberIsDeclared) {
  auto settings = validate_settings(descriptor(), {{"ratio", 2}});
  ASSERT_TRUE(settings.ok()) << settings.failure().message;
  EXPECT_EQ((*settings)["ratio"], 2);
}

TEST(PluginSettingsTest, RefusesAnUnknownKeyListingTheValidOnes) {
  EXPECT_EQ(settings_refusal({{"colour", "red"}}),
            "unknown setting \"colour\" for plugin demo: valid keys are limit_mb, ratio, "
            "greeting, verbose, folders");
}

TEST(PluginSettingsTest, RefusesAnyKeyWhenNoneAreDeclared) {
  json bare = descriptor();
  bare["settings"] = json::array();
  auto settings = validate_settings(bare, {{"colour", "red"}});
  ASSERT_FALSE(settings.ok());
  EXPECT_EQ(settings.failure().message,
            "unknown setting \"colour\" for plugin demo: it declares no settings");
}

TEST(PluginSettingsTest, RefusesWrongTypesNamingKeyAndExpectedType) {
  EXPECT_EQ(settings_refusal({{"limit_mb", "16"}}),
            "setting \"limit_mb\" of plugin demo must be an integer, not a string");
  EXPECT_EQ(settings_refusal({{"limit_mb", 1.5}}),
            "setting \"limit_mb\" of plugin demo must be an integer, not a number");
  EXPECT_EQ(settings_refusal({{"verbose", "yes"}}),
            "setting \"verbose\" of plugin demo must be a boolean, not a string");
  EXPECT_EQ(settings_refusal({{"folders", "INBOX"}}),
            "setting \"folders\" of plugin demo must be a list, not a string");
  EXPECT_EQ(settings_refusal({{"greeting", json()}}),
            "setting \"greeting\" of plugin demo must be a string, not empty");
}

TEST(PluginSettingsTest, ReportsEveryProblemAtOnce) {
  EXPECT_EQ(settings_refusal({{"colour", "red"}, {"ratio", "half"}}),
            "unknown setting \"colour\" for plugin demo: valid keys are limit_mb, ratio, "
            "greeting, verbose, folders; setting \"ratio\" of plugin demo must be a number, not "
            "a string");
}

TEST(PluginSettingsTest, RefusesSettingsThatAreNotAMapping) {
  EXPECT_EQ(settings_refusal(json::array({1, 2})),
            "settings of plugin demo must be a mapping of keys to values");
}

}  // namespace
}  // namespace connector::plugins::test

#include <gtest/gtest.h>

#include "TempDir.hpp"
#include "config/Config.hpp"

namespace connector::config {
namespace {

namespace fs = std::filesystem;

// Parses `text` as if it were the file /base/test.yaml.
Expected<Config> parse(const std::string &text) { return parse_config(text, "test.yaml", "/base"); }

// The error message for `text`, or a note that it was accepted.
std::string error_of(const std::string &text) {
  auto config = parse(text);
  if (config) return "(accepted)";
  EXPECT_EQ(config.failure().code, "invalid_config");
  return config.failure().message;
}

TEST(Config, MissingKeysTakeTheirDefaults) {
  auto config = parse("plugins:\n");
  ASSERT_TRUE(config) << config.failure().message;

  EXPECT_EQ(config->listen.address, "127.0.0.1");
  EXPECT_EQ(config->listen.port, 8080);
  EXPECT_EQ(config->data_dir, "/base/data");
  EXPECT_EQ(config->plugin_dir, "/build/plugins");
  EXPECT_EQ(config->log.level, "info");
  EXPECT_FALSE(config->log.file);
  EXPECT_EQ(config->api.max_body_bytes, 1024u * 1024u);
  EXPECT_EQ(config->api.request_timeout_ms, 30000);
  EXPECT_EQ(config->api.max_header_bytes, 16384u);
  EXPECT_EQ(config->api.websocket_max_message_bytes, 64u * 1024u);
  EXPECT_EQ(config->api.websocket_queue_limit, 1024u);
  EXPECT_EQ(config->auth.login_link_ttl_minutes, 60);
  EXPECT_EQ(config->public_url, "http://127.0.0.1:8080");
  EXPECT_TRUE(config->plugins.empty());
}

TEST(Config, ReadsEveryKey) {
  auto config = parse(R"(
listen:
  address: 0.0.0.0
  port: 9000
data_dir: /srv/connector
plugin_dir: /opt/connector/plugins
log:
  level: debug
  file: logs/host.log
api:
  max_body_bytes: 2048
  request_timeout_ms: 5000
  max_header_bytes: 4096
  max_header_count: 40
  websocket_max_message_bytes: 1000
  websocket_queue_limit: 10
auth:
  login_link_ttl_minutes: 15
public_url: https://connector.example.com/
plugins:
  whatsapp:
    enabled: false
    library: /opt/wa/libwa.so
    settings:
      media_limit_mb: 16
  email-imap: {}
)");
  ASSERT_TRUE(config) << config.failure().message;

  EXPECT_EQ(config->listen.address, "0.0.0.0");
  EXPECT_EQ(config->listen.port, 9000);
  EXPECT_EQ(config->data_dir, "/srv/connector");
  EXPECT_EQ(config->plugin_dir, "/opt/connector/plugins");
  EXPECT_EQ(config->log.level, "debug");
  EXPECT_EQ(config->log.file, fs::path("/srv/connector/logs/host.log"));
  EXPECT_EQ(config->api.max_body_bytes, 2048u);
  EXPECT_EQ(config->api.request_timeout_ms, 5000);
  EXPECT_EQ(config->api.max_header_bytes, 4096u);
  EXPECT_EQ(config->api.max_header_count, 40u);
  EXPECT_EQ(config->api.websocket_max_message_bytes, 1000u);
  EXPECT_EQ(config->api.websocket_queue_limit, 10u);
  EXPECT_EQ(config->auth.login_link_ttl_minutes, 15);
  EXPECT_EQ(config->public_url, "https://connector.example.com");

  ASSERT_EQ(config->plugins.size(), 2u);
  const Plugin &whatsapp = config->plugins.at("whatsapp");
  EXPECT_FALSE(whatsapp.enabled);
  EXPECT_EQ(whatsapp.library, "/opt/wa/libwa.so");
  EXPECT_EQ(whatsapp.settings, nlohmann::json({{"media_limit_mb", 16}}));
  const Plugin &imap = config->plugins.at("email-imap");
  EXPECT_TRUE(imap.enabled);
  EXPECT_EQ(imap.library, "/opt/connector/plugins/libconnector_email_imap.so");
  EXPECT_EQ(imap.settings, nlohmann::json::object());
}

TEST(Config, ResolvesRelativePathsAgainstTheFilesFolder) {
  test::TempDir dir;
  fs::create_directories(dir / "etc");
  const fs::path file = dir.write("etc/host.yaml", R"(
data_dir: ../var/data/
plugin_dir: plugins
log:
  file: host.log
plugins:
  loopback:
  custom:
    library: lib/custom.so
)");

  auto config = load_config(file);
  ASSERT_TRUE(config) << config.failure().message;

  EXPECT_EQ(config->data_dir, dir.path() / "var/data");
  EXPECT_EQ(config->plugin_dir, dir.path() / "etc/plugins");
  EXPECT_EQ(config->log.file, dir.path() / "var/data/host.log");
  EXPECT_EQ(config->plugins.at("loopback").library,
            dir.path() / "etc/plugins/libconnector_loopback.so");
  EXPECT_EQ(config->plugins.at("custom").library, dir.path() / "etc/lib/custom.so");
}

TEST(Config, ResolvesAgainstTheWorkingDirectoryWithoutAFile) {
  auto config = parse_config("data_dir: here\n", "<text>");
  ASSERT_TRUE(config) << config.failure().message;
  EXPECT_EQ(config->data_dir, fs::current_path() / "here");
  EXPECT_EQ(config->plugin_dir, (fs::current_path() / "../build/plugins").lexically_normal());
}

TEST(Config, KeepsAnAbsoluteLogFile) {
  auto config = parse("log:\n  file: /var/log/connector.log\n");
  ASSERT_TRUE(config) << config.failure().message;
  EXPECT_EQ(config->log.file, fs::path("/var/log/connector.log"));
}

TEST(Config, DerivesThePublicUrlFromTheListenAddress) {
  auto v6 = parse("listen:\n  address: \"::1\"\n  port: 9443\n");
  ASSERT_TRUE(v6) << v6.failure().message;
  EXPECT_EQ(v6->public_url, "http://[::1]:9443");

  // Port 0 means "any free port": only the running host knows its URL.
  auto any_port = parse("listen:\n  port: 0\n");
  ASSERT_TRUE(any_port) << any_port.failure().message;
  EXPECT_EQ(any_port->listen.port, 0);
  EXPECT_EQ(any_port->public_url, "");
}

TEST(Config, TypesPluginSettings) {
  auto config = parse(R"(
plugins:
  loopback:
    settings:
      count: 42
      negative: -7
      ratio: 1.5
      exponent: 2e3
      on: true
      off: False
      quoted_number: "42"
      quoted_bool: "true"
      yes_is_text: yes
      zip: 01234
      huge: 123456789012345678901234
      empty:
      text: hello world
      list: [1, two, 3.5, false]
      nested: {a: 1}
)");
  ASSERT_TRUE(config) << config.failure().message;

  const nlohmann::json expected = {{"count", 42},
                                   {"negative", -7},
                                   {"ratio", 1.5},
                                   {"exponent", 2000.0},
                                   {"on", true},
                                   {"off", false},
                                   {"quoted_number", "42"},
                                   {"quoted_bool", "true"},
                                   {"yes_is_text", "yes"},
                                   {"zip", "01234"},
                                   {"huge", "123456789012345678901234"},
                                   {"empty", nullptr},
                                   {"text", "hello world"},
                                   {"list", {1, "two", 3.5, false}},
                                   {"nested", {{"a", 1}}}};
  const nlohmann::json &settings = config->plugins.at("loopback").settings;
  EXPECT_EQ(settings, expected) << settings.dump();
  EXPECT_TRUE(settings["count"].is_number_integer());
  EXPECT_TRUE(settings["ratio"].is_number_float());
}

TEST(Config, PluginSettingsEndingInFileAreRelativeToTheConfigFilesFolder) {
  auto config = parse(R"(
plugins:
  email-oauth:
    settings:
      google_client_secret_file: secrets/google
      microsoft_client_secret_file: /etc/connector/microsoft
      ca_file: ../ca.pem
      empty_file: ""
      profile: secrets/not-a-path
)");
  ASSERT_TRUE(config) << config.failure().message;
  const nlohmann::json &settings = config->plugins.at("email-oauth").settings;
  EXPECT_EQ(settings["google_client_secret_file"], "/base/secrets/google");
  EXPECT_EQ(settings["microsoft_client_secret_file"], "/etc/connector/microsoft");
  EXPECT_EQ(settings["ca_file"], "/ca.pem");
  EXPECT_EQ(settings["empty_file"], "");
  EXPECT_EQ(settings["profile"], "secrets/not-a-path");
}

TEST(Config, RefusesUnknownKeysListingTheValidOnes) {
  EXPECT_EQ(error_of("listen: {}\nlisen:\n  port: 1\n"),
            "test.yaml:2:1: lisen: unknown key; valid keys are: listen, data_dir, plugin_dir, ui_dir, log, "
            "api, auth, public_url, plugins, matching");
  EXPECT_EQ(error_of("listen:\n  adress: 127.0.0.1\n"),
            "test.yaml:2:3: listen.adress: unknown key; valid keys are: address, port");
  EXPECT_EQ(error_of("plugins:\n  loopback:\n    enable: true\n"),
            "test.yaml:3:5: plugins.loopback.enable: unknown key; valid keys are: enabled, "
            "library, settings");
  EXPECT_EQ(error_of("api:\n  max_body: 1\n"),
            "test.yaml:2:3: api.max_body: unknown key; valid keys are: max_body_bytes, "
            "request_timeout_ms, max_header_bytes, max_header_count, websocket_max_message_bytes, "
            "websocket_queue_limit, websocket_token_check_seconds");
  EXPECT_EQ(error_of("log:\n  levle: info\n"),
            "test.yaml:2:3: log.levle: unknown key; valid keys are: level, file");
  EXPECT_EQ(error_of("auth:\n  ttl: 5\n"),
            "test.yaml:2:3: auth.ttl: unknown key; valid keys are: login_link_ttl_minutes");
}

// The section itself is read by MatchingConfigTest.cpp.
TEST(Config, RefusesUnknownMatchingKeys) {
  EXPECT_EQ(error_of("matching:\n  enabled: true\n"),
            "test.yaml:2:3: matching.enabled: unknown key; valid keys are: default_region, "
            "fold_plus_addressing, email, whatsapp, no_match, closed_case, reopen_within_days");
}

TEST(Config, RefusesWrongTypes) {
  EXPECT_EQ(error_of("plugins:\n  whatsapp:\n    enabled: yes please\n"),
            "test.yaml:3:5: plugins.whatsapp.enabled: expected a boolean, got \"yes please\"");
  EXPECT_EQ(error_of("plugins:\n  whatsapp:\n    enabled: \"true\"\n"),
            "test.yaml:3:5: plugins.whatsapp.enabled: expected a boolean, got \"true\" (a quoted "
            "value is text: remove the quotes)");
  EXPECT_EQ(error_of("listen: 8080\n"), "test.yaml:1:1: listen: expected a map, got 8080");
  EXPECT_EQ(error_of("listen:\n  port: http\n"),
            "test.yaml:2:3: listen.port: expected a port number from 0 to 65535, got \"http\"");
  EXPECT_EQ(error_of("data_dir:\n"), "test.yaml:1:1: data_dir: expected a path, got nothing");
  EXPECT_EQ(error_of("data_dir: [a]\n"), "test.yaml:1:1: data_dir: expected a path, got a list");
  EXPECT_EQ(error_of("api:\n  request_timeout_ms: 1.5\n"),
            "test.yaml:2:3: api.request_timeout_ms: expected a number of milliseconds from 1 to "
            "2147483647, got \"1.5\"");
  EXPECT_EQ(error_of("plugins:\n  loopback:\n    settings: [1]\n"),
            "test.yaml:3:5: plugins.loopback.settings: expected a map, got a list");
  EXPECT_EQ(error_of("plugins: [loopback]\n"),
            "test.yaml:1:1: plugins: expected a map, got a list");
}

TEST(Config, RefusesValuesOutOfRange) {
  EXPECT_EQ(error_of("listen:\n  port: 70000\n"),
            "test.yaml:2:3: listen.port: expected a port number from 0 to 65535, got 70000");
  EXPECT_EQ(error_of("listen:\n  port: -1\n"),
            "test.yaml:2:3: listen.port: expected a port number from 0 to 65535, got -1");
  EXPECT_EQ(error_of("api:\n  max_body_bytes: 0\n"),
            "test.yaml:2:3: api.max_body_bytes: expected a number of bytes from 1 to 4294967296, "
            "got 0");
  EXPECT_EQ(error_of("api:\n  websocket_queue_limit: 0\n"),
            "test.yaml:2:3: api.websocket_queue_limit: expected a number of messages from 1 to "
            "2147483647, got 0");
  EXPECT_EQ(error_of("auth:\n  login_link_ttl_minutes: 0\n"),
            "test.yaml:2:3: auth.login_link_ttl_minutes: expected a number of minutes from 1 to "
            "2147483647, got 0");
}

TEST(Config, RefusesBadValues) {
  EXPECT_EQ(error_of("log:\n  level: verbose\n"),
            "test.yaml:2:3: log.level: expected one of trace, debug, info, warn, error, got "
            "\"verbose\"");
  EXPECT_EQ(error_of("listen:\n  address: localhost\n"),
            "test.yaml:2:3: listen.address: expected an IP address such as 127.0.0.1, 0.0.0.0 or "
            "::1, got \"localhost\"");
  EXPECT_EQ(error_of("public_url: connector.example.com\n"),
            "test.yaml:1:1: public_url: expected a URL starting with http:// or https://, got "
            "\"connector.example.com\"");
  EXPECT_EQ(error_of("plugins:\n  WhatsApp: {}\n"),
            "test.yaml:2:3: plugins.WhatsApp: a plugin id is made of lowercase letters, digits, "
            "'-' and '_'");
}

TEST(Config, RefusesDuplicates) {
  EXPECT_EQ(error_of("plugins:\n  loopback: {}\n  whatsapp: {}\n  loopback:\n    enabled: false\n"),
            "test.yaml:4:3: plugins.loopback: duplicate plugin id (first given at line 2)");
  EXPECT_EQ(error_of("listen:\n  port: 1\n  port: 2\n"),
            "test.yaml:3:3: listen.port: duplicate key (first given at line 2)");
}

TEST(Config, RefusesAnEmptyFile) {
  const std::string expected =
      "test.yaml:1:1: the configuration is empty; start from config/connector-host.yaml, where "
      "every key is explained";
  EXPECT_EQ(error_of(""), expected);
  EXPECT_EQ(error_of("# nothing but a comment\n"), expected);
  EXPECT_EQ(error_of("---\n"), expected);
}

TEST(Config, RefusesATopLevelThatIsNotAMap) {
  EXPECT_EQ(error_of("- listen\n- plugins\n"),
            "test.yaml:1:1: expected a map of keys at the top level, got a list");
  EXPECT_EQ(error_of("\nhello\n"),
            "test.yaml:2:1: expected a map of keys at the top level, got \"hello\"");
  EXPECT_EQ(error_of("listen: {}\n---\nplugins: {}\n"),
            "test.yaml:3:1: expected one YAML document, found a second one here");
}

// yaml-cpp 0.7 loops forever, allocating, when asked for every document of these texts (found by
// fuzz/ConfigFuzz.cpp): the configuration must be refused, not hang the host at start.
TEST(Config, RefusesTextsThatWouldHangTheYamlLibrary) {
  const std::string expected = "test.yaml:1:1: expected a map of keys at the top level, got nothing";
  EXPECT_EQ(error_of(",\n\n"), expected);
  EXPECT_EQ(error_of(",ive1, 2\nplu{x: *a=\n"), expected);
}

TEST(Config, ReportsYamlSyntaxErrorsWithTheirPosition) {
  EXPECT_EQ(error_of("listen:\n  port: [1, 2\n"),
            "test.yaml:3:1: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(error_of("listen:\n  port: 1\n\taddress: x\n"),
            "test.yaml:3:1: YAML syntax error: illegal tab when looking for indentation");
  EXPECT_EQ(error_of("log: level: info\n"), "test.yaml:1:11: YAML syntax error: illegal map value");
}

TEST(Config, NamesTheFileItCouldNotRead) {
  test::TempDir dir;
  auto missing = load_config(dir / "absent.yaml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.failure().code, "invalid_config");
  EXPECT_EQ(missing.failure().message,
            (dir / "absent.yaml").string() + ": no such configuration file");

  auto folder = load_config(dir.path());
  ASSERT_FALSE(folder);
  EXPECT_EQ(folder.failure().message,
            dir.path().string() + ": is a folder; expected a configuration file");
}

TEST(Config, ErrorsFromAFileNameItAsGiven) {
  test::TempDir dir;
  const fs::path file = dir.write("host.yaml", "plugins:\n  loopback:\n    enabled: maybe\n");
  auto config = load_config(file);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.failure().message,
            file.string() + ":3:5: plugins.loopback.enabled: expected a boolean, got \"maybe\"");
}

TEST(Config, TheShippedConfigurationParses) {
  const fs::path source = CONNECTOR_SOURCE_DIR;
  auto config = load_config(source / "config/connector-host.yaml");
  ASSERT_TRUE(config) << config.failure().message;

  EXPECT_EQ(config->listen.address, "127.0.0.1");
  EXPECT_EQ(config->listen.port, 8080);
  EXPECT_EQ(config->data_dir, (source / "data").lexically_normal());
  EXPECT_EQ(config->plugin_dir, (source / "build/plugins").lexically_normal());
  EXPECT_EQ(config->log.level, "info");
  EXPECT_FALSE(config->log.file);
  EXPECT_EQ(config->public_url, "http://127.0.0.1:8080");

  // The shipped values are the defaults: the file documents them without changing them.
  const Api defaults;
  EXPECT_EQ(config->api.max_body_bytes, defaults.max_body_bytes);
  EXPECT_EQ(config->api.request_timeout_ms, defaults.request_timeout_ms);
  EXPECT_EQ(config->api.max_header_bytes, defaults.max_header_bytes);
  EXPECT_EQ(config->api.max_header_count, defaults.max_header_count);
  EXPECT_EQ(config->api.websocket_max_message_bytes, defaults.websocket_max_message_bytes);
  EXPECT_EQ(config->api.websocket_queue_limit, defaults.websocket_queue_limit);
  EXPECT_EQ(config->auth.login_link_ttl_minutes, Auth{}.login_link_ttl_minutes);

  ASSERT_EQ(config->plugins.size(), 1u);
  const Plugin &loopback = config->plugins.at("loopback");
  EXPECT_TRUE(loopback.enabled);
  EXPECT_EQ(loopback.library, config->plugin_dir / "libconnector_loopback.so");
}

}  // namespace
}  // namespace connector::config

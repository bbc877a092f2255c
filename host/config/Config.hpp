// The host's configuration: one YAML file, read once at start-up.
//
// Every key is optional; a missing key takes the default written next to it below. Unknown keys
// are refused (with the list of valid ones), so a misspelt key never silently does nothing. Every
// error names the file, the 1-based line and column and the key path, for example
//   config/connector-host.yaml:12:5: plugins.whatsapp.enabled: expected a boolean, got "yes please"
//
// Paths: a relative data_dir, plugin_dir or plugins.<id>.library is taken relative to the folder
// holding the configuration file (so the file works from any working directory); a relative
// log.file is taken relative to data_dir. All paths in a Config are absolute and normalised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/Expected.hpp"

namespace connector::config {

struct Listen {
  std::string address = "127.0.0.1";  // an IPv4 or IPv6 address, not a host name
  std::uint16_t port = 8080;          // 0: any free port (the tests use it)
};

struct Logging {
  std::string level = "info";                 // trace, debug, info, warn or error
  std::optional<std::filesystem::path> file;  // none: the console only
};

// Limits of the HTTP and WebSocket API, applied to every session.
struct Api {
  std::size_t max_body_bytes = 1024 * 1024;
  std::int64_t request_timeout_ms = 30000;
  std::size_t max_header_bytes = 16384;
  std::size_t max_header_count = 100;
  std::size_t websocket_max_message_bytes = 64 * 1024;
  // Messages queued for one WebSocket client; a client that falls this far behind is dropped.
  std::size_t websocket_queue_limit = 1024;
  // How often an open WebSocket's token is checked again (revocations made outside the API).
  std::int64_t websocket_token_check_seconds = 5;
};

struct Auth {
  std::int64_t login_link_ttl_minutes = 60;
};

// One entry under `plugins:`, keyed by plugin id.
struct Plugin {
  bool enabled = true;
  // Default: <plugin_dir>/libconnector_<id, with '-' turned into '_'>.so
  std::filesystem::path library;
  // The plugin's own settings as a JSON object. Plain YAML scalars are typed: integers become
  // JSON integers, decimals numbers, true/false booleans, null (an empty value or ~) null;
  // sequences become arrays, maps objects, and everything else (quoted values included) strings.
  nlohmann::json settings = nlohmann::json::object();
};

// How messages find their case (the `matching:` section). The rules run in the order given;
// the first that finds a case wins. See config/connector-host.yaml for what each choice does.
struct Matching {
  std::string default_region = "BR";  // ISO 3166 region for phone numbers written without +
  bool fold_plus_addressing = true;   // ana+shop@x.com is ana@x.com
  std::vector<std::string> email_rules = {"thread", "subject", "contact"};
  std::vector<std::string> whatsapp_rules = {"contact"};
  // Case ids in subjects: "{id}" stands for the digits; the rest is matched ignoring case.
  std::vector<std::string> subject_patterns = {"[#{id}]"};
  // A case id in a subject counts only when the sender is one of the case's contact's
  // addresses: otherwise anyone could write into any case.
  bool subject_requires_case_contact = true;
  // Reply and forward prefixes, without the colon, compared ignoring case. They never hide a
  // case id (ids are found anywhere in the subject); they are stripped from new cases' titles.
  std::vector<std::string> reply_prefixes = {"re", "res", "fw", "fwd", "enc",  "aw", "wg",
                                             "tr", "rv",  "sv", "vs",  "antw", "rif"};
  std::string no_match = "new_case";  // new_case or unassigned
  // What a message matched to a closed case does: reopen, new_case, or reopen_within
  // (reopen when closed at most reopen_within_days ago, else a new case).
  std::string closed_case = "reopen_within";
  std::int64_t reopen_within_days = 7;
};

struct Config {
  Listen listen;
  std::filesystem::path data_dir;    // default ./data
  std::filesystem::path plugin_dir;  // default ../build/plugins
  std::filesystem::path ui_dir;      // the connection screen's files; default ../ui
  Logging log;
  Api api;
  Auth auth;
  // The address people use to reach the host, without a trailing '/'; login links start with it.
  // Default: http://<listen.address>:<listen.port>, or empty when the port is 0 (any free port),
  // in which case the host derives it once it knows the port it was given.
  std::string public_url;
  std::map<std::string, Plugin> plugins;  // by plugin id
  Matching matching;
};

// Reads and checks the configuration file at `path`. Failures have the code "invalid_config".
Expected<Config> load_config(const std::filesystem::path &path);

// Parses configuration text. `display_name` stands for the file in error messages; relative
// paths are taken relative to `base_dir`, or to the current working directory when it is empty.
Expected<Config> parse_config(std::string_view text, std::string_view display_name,
                              const std::filesystem::path &base_dir = {});

}  // namespace connector::config

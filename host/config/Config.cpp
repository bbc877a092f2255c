#include "config/Config.hpp"

#include <arpa/inet.h>
#include <phonenumbers/phonenumberutil.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

namespace connector::config {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kMaxBytes = std::int64_t{1} << 32;  // 4 GiB
constexpr std::int64_t kMaxInt = std::numeric_limits<std::int32_t>::max();
constexpr std::array kLogLevels = {"trace", "debug", "info", "warn", "error"};

// One value of the file together with where it sits: its key path ("plugins.loopback.enabled")
// and the position of the key (or list item) that holds it, which is where errors point.
struct Field {
  std::string path;
  std::string key;
  YAML::Mark mark;
  YAML::Node value;
};

// Thrown while reading and caught in parse_config, never outside this file: it keeps each
// reader a few lines long instead of threading an Expected through every one of them.
struct Refusal {
  YAML::Mark mark;
  std::string path;
  std::string message;
};

[[noreturn]] void refuse(const Field &field, std::string message) {
  throw Refusal{field.mark, field.path, std::move(message)};
}

std::string format_error(std::string_view file, const YAML::Mark &mark, std::string_view path,
                         std::string_view message) {
  // A null node (an empty document, say) has no position of its own: point at the start.
  const int line = mark.line < 0 ? 1 : mark.line + 1;
  const int column = mark.column < 0 ? 1 : mark.column + 1;
  std::ostringstream out;
  out << file << ':' << line << ':' << column << ": ";
  if (!path.empty()) out << path << ": ";
  out << message;
  return out.str();
}

// Plain (unquoted, untagged) scalars are the only ones YAML lets us read as numbers or booleans.
bool is_plain(const YAML::Node &node) { return node.IsScalar() && node.Tag() == "?"; }

std::optional<std::int64_t> parse_integer(std::string_view text) {
  if (text.starts_with("+-")) return {};
  if (text.starts_with('+')) text.remove_prefix(1);
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size()) return {};
  return value;
}

std::optional<bool> parse_boolean(std::string_view text) {
  // YAML 1.2's core schema: yes/no/on/off are text, as a reader of the file would hope.
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return {};
}

// How a value is shown after "got": integers bare, other scalars quoted, collections by kind.
std::string shown(const YAML::Node &node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  if (is_plain(node) && parse_integer(node.Scalar())) return node.Scalar();
  return '"' + node.Scalar() + '"';
}

std::string joined(std::initializer_list<std::string_view> words) {
  std::string out;
  for (std::string_view word : words) {
    if (!out.empty()) out += ", ";
    out += word;
  }
  return out;
}

// The entries of a map, checked: keys are plain text, given once, and (when `valid` is not
// empty) among the valid ones. An empty value (`log:` with nothing under it) is an empty map.
std::vector<Field> entries(const Field &map, std::initializer_list<std::string_view> valid = {}) {
  if (map.value.IsNull()) return {};
  if (!map.value.IsMap()) refuse(map, "expected a map, got " + shown(map.value));

  std::vector<Field> fields;
  for (const auto &entry : map.value) {
    const YAML::Node &key = entry.first;
    Field field{map.path.empty() ? key.Scalar() : map.path + '.' + key.Scalar(), key.Scalar(),
                key.Mark(), entry.second};
    if (!key.IsScalar()) refuse(field, "a key must be plain text, got " + shown(key));

    // yaml-cpp keeps both entries of a repeated key; the second would silently win elsewhere.
    for (const Field &earlier : fields) {
      if (earlier.key != field.key) continue;
      const std::string what = map.path == "plugins" ? "plugin id" : "key";
      refuse(field, "duplicate " + what + " (first given at line " +
                        std::to_string(earlier.mark.line + 1) + ")");
    }
    if (valid.size() != 0 && std::find(valid.begin(), valid.end(), field.key) == valid.end()) {
      refuse(field, "unknown key; valid keys are: " + joined(valid));
    }
    fields.push_back(std::move(field));
  }
  return fields;
}

// "port: \"80\"" is text to YAML; say so rather than leave the reader puzzled.
std::string quote_hint(const Field &field) {
  const YAML::Node &node = field.value;
  if (!node.IsScalar() || is_plain(node)) return {};
  const bool typed = parse_integer(node.Scalar()) || parse_boolean(node.Scalar());
  return typed ? " (a quoted value is text: remove the quotes)" : "";
}

bool read_boolean(const Field &field) {
  std::optional<bool> value;
  if (is_plain(field.value)) value = parse_boolean(field.value.Scalar());
  if (!value) refuse(field, "expected a boolean, got " + shown(field.value) + quote_hint(field));
  return *value;
}

std::int64_t read_integer(const Field &field, std::string_view noun, std::int64_t min,
                          std::int64_t max) {
  std::optional<std::int64_t> value;
  if (is_plain(field.value)) value = parse_integer(field.value.Scalar());
  if (!value || *value < min || *value > max) {
    refuse(field, "expected " + std::string(noun) + " from " + std::to_string(min) + " to " +
                      std::to_string(max) + ", got " + shown(field.value) + quote_hint(field));
  }
  return *value;
}

std::string read_text(const Field &field, std::string_view noun) {
  if (!field.value.IsScalar() || field.value.IsNull() || field.value.Scalar().empty()) {
    refuse(field, "expected " + std::string(noun) + ", got " + shown(field.value));
  }
  return field.value.Scalar();
}

fs::path resolved(const fs::path &base, const fs::path &path) {
  fs::path full = (path.is_absolute() ? path : base / path).lexically_normal();
  return full.has_filename() ? full : full.parent_path();  // "data/" → ".../data"
}

std::string read_address(const Field &field) {
  std::string address = read_text(field, "an IP address");
  std::array<unsigned char, 16> buffer{};
  if (inet_pton(AF_INET, address.c_str(), buffer.data()) != 1 &&
      inet_pton(AF_INET6, address.c_str(), buffer.data()) != 1) {
    refuse(field,
           "expected an IP address such as 127.0.0.1, 0.0.0.0 or ::1, got " + shown(field.value));
  }
  return address;
}

std::string read_level(const Field &field) {
  std::string level = read_text(field, "a log level");
  if (std::find(kLogLevels.begin(), kLogLevels.end(), level) == kLogLevels.end()) {
    refuse(field, "expected one of trace, debug, info, warn, error, got " + shown(field.value));
  }
  return level;
}

std::string read_public_url(const Field &field) {
  std::string url = read_text(field, "a URL");
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    refuse(field, "expected a URL starting with http:// or https://, got " + shown(field.value));
  }
  while (url.ends_with('/')) url.pop_back();
  return url;
}

// A settings value as JSON; see Plugin::settings for the typing rules.
nlohmann::json to_json(const Field &field) {
  const YAML::Node &node = field.value;
  if (node.IsNull()) return nullptr;

  if (node.IsSequence()) {
    nlohmann::json array = nlohmann::json::array();
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string path = field.path + '[' + std::to_string(i) + ']';
      array.push_back(to_json(Field{path, {}, node[i].Mark(), node[i]}));
    }
    return array;
  }

  if (node.IsMap()) {
    nlohmann::json object = nlohmann::json::object();
    for (const Field &entry : entries(field)) object[entry.key] = to_json(entry);
    return object;
  }

  const std::string &text = node.Scalar();
  if (!is_plain(node)) return text;
  if (auto boolean = parse_boolean(text)) return *boolean;

  // Leading zeros ("007", a postcode) keep the text as written rather than lose the zeros.
  static const std::regex kNumber(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  static const std::regex kLeadingZero(R"([-+]?0[0-9].*)");
  if (!std::regex_match(text, kNumber) || std::regex_match(text, kLeadingZero)) return text;
  if (auto integer = parse_integer(text)) return *integer;

  // Integers too large for 64 bits stay text rather than lose digits as a double.
  if (text.find_first_of(".eE") == std::string::npos) return text;
  const std::string_view digits = text.front() == '+' ? std::string_view(text).substr(1) : text;
  double number = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), number);
  return number;
}

Plugin read_plugin(const Field &section, const fs::path &base) {
  static const std::regex kPluginId("[a-z0-9][a-z0-9_-]*");
  if (!std::regex_match(section.key, kPluginId)) {
    refuse(section, "a plugin id is made of lowercase letters, digits, '-' and '_'");
  }

  Plugin plugin;
  for (const Field &field : entries(section, {"enabled", "library", "settings"})) {
    if (field.key == "enabled") {
      plugin.enabled = read_boolean(field);
    } else if (field.key == "library") {
      plugin.library = resolved(base, read_text(field, "a path"));
    } else {
      if (!field.value.IsMap() && !field.value.IsNull()) {
        refuse(field, "expected a map, got " + shown(field.value));
      }
      plugin.settings = field.value.IsNull() ? nlohmann::json::object() : to_json(field);
      // A setting named *_file is a path: relative to the configuration file's folder, as
      // every path in this file is, not to wherever the host was started.
      for (auto &[key, value] : plugin.settings.items()) {
        const bool path = key.size() > 5 && key.compare(key.size() - 5, 5, "_file") == 0;
        if (path && value.is_string() && !value.get<std::string>().empty()) {
          value = resolved(base, value.get<std::string>()).string();
        }
      }
    }
  }
  return plugin;
}

void read_listen(const Field &section, Listen &listen) {
  for (const Field &field : entries(section, {"address", "port"})) {
    if (field.key == "address") {
      listen.address = read_address(field);
    } else {
      listen.port = static_cast<std::uint16_t>(read_integer(field, "a port number", 0, 65535));
    }
  }
}

void read_log(const Field &section, Logging &log, fs::path &file) {
  for (const Field &field : entries(section, {"level", "file"})) {
    if (field.key == "level") {
      log.level = read_level(field);
    } else if (!field.value.IsNull()) {
      file = read_text(field, "a path");
    }
  }
}

void read_api(const Field &section, Api &api) {
  const auto bytes = [](const Field &field) {
    return static_cast<std::size_t>(read_integer(field, "a number of bytes", 1, kMaxBytes));
  };
  for (const Field &field :
       entries(section, {"max_body_bytes", "request_timeout_ms", "max_header_bytes",
                         "max_header_count", "websocket_max_message_bytes", "websocket_queue_limit",
                         "websocket_token_check_seconds"})) {
    if (field.key == "request_timeout_ms") {
      api.request_timeout_ms = read_integer(field, "a number of milliseconds", 1, kMaxInt);
    } else if (field.key == "websocket_token_check_seconds") {
      api.websocket_token_check_seconds = read_integer(field, "a number of seconds", 1, kMaxInt);
    } else if (field.key == "websocket_queue_limit") {
      api.websocket_queue_limit =
          static_cast<std::size_t>(read_integer(field, "a number of messages", 1, kMaxInt));
    } else if (field.key == "max_body_bytes") {
      api.max_body_bytes = bytes(field);
    } else if (field.key == "max_header_bytes") {
      api.max_header_bytes = bytes(field);
    } else if (field.key == "max_header_count") {
      api.max_header_count =
          static_cast<std::size_t>(read_integer(field, "a number of headers", 1, kMaxInt));
    } else {
      api.websocket_max_message_bytes = bytes(field);
    }
  }
}

void read_auth(const Field &section, Auth &auth) {
  for (const Field &field : entries(section, {"login_link_ttl_minutes"})) {
    auth.login_link_ttl_minutes = read_integer(field, "a number of minutes", 1, kMaxInt);
  }
}

// --- matching ---------------------------------------------------------------------------------

std::string read_choice(const Field &field, std::initializer_list<std::string_view> choices) {
  std::string value = read_text(field, "one of " + joined(choices));
  if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
    refuse(field, "expected one of " + joined(choices) + ", got " + shown(field.value));
  }
  return value;
}

// A list of non-empty texts; an empty list is allowed only when `may_be_empty`.
std::vector<std::string> read_texts(const Field &field, std::string_view noun, bool may_be_empty) {
  if (!field.value.IsSequence()) refuse(field, "expected a list, got " + shown(field.value));
  if (field.value.size() == 0 && !may_be_empty) refuse(field, "expected at least one entry");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < field.value.size(); ++i) {
    const YAML::Node &item = field.value[i];
    out.push_back(
        read_text(Field{field.path + '[' + std::to_string(i) + ']', {}, item.Mark(), item}, noun));
  }
  return out;
}

std::vector<std::string> read_rules(const Field &field,
                                    std::initializer_list<std::string_view> valid) {
  std::vector<std::string> rules = read_texts(field, "a rule name", true);
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const YAML::Node &item = field.value[i];
    const Field at{field.path + '[' + std::to_string(i) + ']', {}, item.Mark(), item};
    if (std::find(valid.begin(), valid.end(), rules[i]) == valid.end()) {
      refuse(at, "unknown rule " + shown(item) + "; valid rules are: " + joined(valid));
    }
    if (std::find(rules.begin(), rules.begin() + static_cast<std::ptrdiff_t>(i), rules[i]) !=
        rules.begin() + static_cast<std::ptrdiff_t>(i)) {
      refuse(at, "rule " + shown(item) + " is listed twice");
    }
  }
  return rules;
}

std::vector<std::string> read_subject_patterns(const Field &field) {
  std::vector<std::string> patterns = read_texts(field, "a pattern", true);
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    const std::string &p = patterns[i];
    const std::size_t at = p.find("{id}");
    if (at == std::string::npos || p.find("{id}", at + 1) != std::string::npos || p == "{id}") {
      const YAML::Node &item = field.value[i];
      refuse(Field{field.path + '[' + std::to_string(i) + ']', {}, item.Mark(), item},
             "a subject pattern holds \"{id}\" exactly once, with text around it, "
             "like \"[#{id}]\"; got " +
                 shown(item));
    }
  }
  return patterns;
}

std::string read_region(const Field &field) {
  std::string region = read_text(field, "a region code");
  const bool letters = region.size() == 2 && std::isupper(static_cast<unsigned char>(region[0])) &&
                       std::isupper(static_cast<unsigned char>(region[1]));
  if (!letters) {
    refuse(field, "expected a two-letter ISO 3166 region code such as BR or PT, got " +
                      shown(field.value));
  }
  std::set<std::string> known;
  i18n::phonenumbers::PhoneNumberUtil::GetInstance()->GetSupportedRegions(&known);
  if (known.count(region) == 0) {
    refuse(field, "\"" + region +
                      "\" is not a region whose phone numbers libphonenumber knows; expected a "
                      "region code such as BR or PT");
  }
  return region;
}

void read_matching_email(const Field &section, Matching &m) {
  for (const Field &field : entries(section, {"rules", "subject_patterns",
                                              "subject_requires_case_contact", "reply_prefixes"})) {
    if (field.key == "rules") m.email_rules = read_rules(field, {"thread", "subject", "contact"});
    if (field.key == "subject_patterns") m.subject_patterns = read_subject_patterns(field);
    if (field.key == "subject_requires_case_contact") {
      m.subject_requires_case_contact = read_boolean(field);
    }
    if (field.key == "reply_prefixes") m.reply_prefixes = read_texts(field, "a prefix", true);
  }
}

void read_matching(const Field &section, Matching &m) {
  for (const Field &field :
       entries(section, {"default_region", "fold_plus_addressing", "email", "whatsapp", "no_match",
                         "closed_case", "reopen_within_days"})) {
    if (field.key == "default_region") m.default_region = read_region(field);
    if (field.key == "fold_plus_addressing") m.fold_plus_addressing = read_boolean(field);
    if (field.key == "email") read_matching_email(field, m);
    if (field.key == "whatsapp") {
      for (const Field &rule : entries(field, {"rules"})) {
        m.whatsapp_rules = read_rules(rule, {"contact"});
      }
    }
    if (field.key == "no_match") m.no_match = read_choice(field, {"new_case", "unassigned"});
    if (field.key == "closed_case") {
      m.closed_case = read_choice(field, {"reopen", "new_case", "reopen_within"});
    }
    if (field.key == "reopen_within_days") {
      m.reopen_within_days = read_integer(field, "a number of days", 0, 36500);
    }
  }
}

std::string default_public_url(const Listen &listen) {
  if (listen.port == 0) return {};
  const bool v6 = listen.address.find(':') != std::string::npos;
  const std::string host = v6 ? '[' + listen.address + ']' : listen.address;
  return "http://" + host + ':' + std::to_string(listen.port);
}

std::string default_library_name(std::string id) {
  std::replace(id.begin(), id.end(), '-', '_');
  return "libconnector_" + id + ".so";
}

Config read_config(const Field &root, const fs::path &base) {
  Config config;
  fs::path data_dir = "./data", plugin_dir = "../build/plugins", ui_dir = "../ui", log_file;
  for (const Field &field : entries(root, {"listen", "data_dir", "plugin_dir", "ui_dir", "log",
                                           "api", "auth", "public_url", "plugins", "matching"})) {
    if (field.key == "listen") read_listen(field, config.listen);
    if (field.key == "data_dir") data_dir = read_text(field, "a path");
    if (field.key == "plugin_dir") plugin_dir = read_text(field, "a path");
    if (field.key == "ui_dir") ui_dir = read_text(field, "a path");
    if (field.key == "log") read_log(field, config.log, log_file);
    if (field.key == "api") read_api(field, config.api);
    if (field.key == "auth") read_auth(field, config.auth);
    if (field.key == "matching") read_matching(field, config.matching);
    if (field.key == "public_url" && !field.value.IsNull()) {
      config.public_url = read_public_url(field);
    }
    if (field.key == "plugins") {
      for (const Field &plugin : entries(field)) {
        config.plugins.emplace(plugin.key, read_plugin(plugin, base));
      }
    }
  }

  // Defaults that depend on other keys, which may come later in the file.
  config.data_dir = resolved(base, data_dir);
  config.plugin_dir = resolved(base, plugin_dir);
  config.ui_dir = resolved(base, ui_dir);
  if (!log_file.empty()) config.log.file = resolved(config.data_dir, log_file);
  if (config.public_url.empty()) config.public_url = default_public_url(config.listen);
  for (auto &[id, plugin] : config.plugins) {
    if (plugin.library.empty()) plugin.library = config.plugin_dir / default_library_name(id);
  }
  return config;
}

Failure invalid(std::string message) { return failure("invalid_config", std::move(message)); }

// Notes where a YAML document's first value (other than an empty one) sits, if it has any.
class DocumentProbe final : public YAML::EventHandler {
 public:
  std::optional<YAML::Mark> content;

  void OnDocumentStart(const YAML::Mark &) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark &, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark &mark, YAML::anchor_t) override { seen(mark); }
  void OnScalar(const YAML::Mark &mark, const std::string &, YAML::anchor_t,
                const std::string &) override {
    seen(mark);
  }
  void OnSequenceStart(const YAML::Mark &mark, const std::string &, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    seen(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark &mark, const std::string &, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    seen(mark);
  }
  void OnMapEnd() override {}

 private:
  void seen(const YAML::Mark &mark) {
    if (!content) content = mark;
  }
};

// Where a second document with content starts, if the text has one. yaml-cpp 0.7's LoadAll()
// loops forever, allocating as it goes, on some malformed texts (a stray comma at the start), so
// the documents are walked here, never more than two of them.
std::optional<YAML::Mark> second_document(const std::string &text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  for (int document = 0; document < 2; ++document) {
    DocumentProbe probe;
    if (!parser.HandleNextDocument(probe)) return std::nullopt;
    if (document == 1 && probe.content) return probe.content;
  }
  return std::nullopt;
}

// True when the text holds anything but blank lines, comments and document markers.
bool has_content(std::string_view text) {
  std::istringstream lines{std::string(text)};
  for (std::string line; std::getline(lines, line);) {
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const std::string_view rest = std::string_view(line).substr(first);
    const bool marker = (rest.starts_with("---") || rest.starts_with("...")) &&
                        (rest.size() == 3 || rest[3] == ' ' || rest[3] == '\t' || rest[3] == '\r');
    if (!marker) return true;
  }
  return false;
}

}  // namespace

Expected<Config> parse_config(std::string_view text, std::string_view display_name,
                              const fs::path &base_dir) {
  const fs::path base = fs::absolute(base_dir.empty() ? fs::current_path() : base_dir);
  try {
    const std::string yaml(text);
    if (auto second = second_document(yaml)) {
      return invalid(format_error(display_name, *second, {},
                                  "expected one YAML document, found a second one here"));
    }
    const YAML::Node root = YAML::Load(yaml);
    if (root.IsNull() && !has_content(text)) {
      return invalid(format_error(display_name, YAML::Mark::null_mark(), {},
                                  "the configuration is empty; start from "
                                  "config/connector-host.yaml, where every key is explained"));
    }
    if (!root.IsMap()) {
      return invalid(format_error(display_name, root.Mark(), {},
                                  "expected a map of keys at the top level, got " + shown(root)));
    }
    return read_config(Field{{}, {}, root.Mark(), root}, base);
  } catch (const Refusal &refusal) {
    return invalid(format_error(display_name, refusal.mark, refusal.path, refusal.message));
  } catch (const YAML::Exception &error) {
    return invalid(format_error(display_name, error.mark, {}, "YAML syntax error: " + error.msg));
  }
}

Expected<Config> load_config(const fs::path &path) {
  std::error_code error;
  if (fs::is_directory(path, error)) {
    return invalid(path.string() + ": is a folder; expected a configuration file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const bool exists = fs::exists(path, error);
    return invalid(path.string() + (exists ? ": cannot be read (check its permissions)"
                                           : ": no such configuration file"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path.string(), fs::absolute(path).parent_path());
}

}  // namespace connector::config

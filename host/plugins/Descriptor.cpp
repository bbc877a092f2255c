#include "plugins/Descriptor.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace connector::plugins {
namespace {

using nlohmann::json;

constexpr std::string_view kSettingTypes[] = {"integer", "number", "string", "boolean", "list"};

std::string join(const std::vector<std::string> &parts, std::string_view separator) {
  std::string out;
  for (const auto &part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

bool is_text(const json &value) { return value.is_string() && !value.get<std::string>().empty(); }

bool is_setting_type(const json &type) {
  if (!type.is_string()) return false;
  for (auto known : kSettingTypes) {
    if (type.get<std::string>() == known) return true;
  }
  return false;
}

// Whether `value` fits a declared setting type; an integer is also a valid "number".
bool fits(std::string_view type, const json &value) {
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  if (type == "string") return value.is_string();
  if (type == "boolean") return value.is_boolean();
  return type == "list" && value.is_array();
}

// "an integer", "a list"…: how a type reads in a refusal.
std::string with_article(std::string_view type) {
  return (type == "integer" ? "an " : "a ") + std::string(type);
}

std::string describe(const json &value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_array()) return "a list";
  if (value.is_object()) return "a mapping";
  return "empty";
}

void check_connect_fields(const json &fields, std::vector<std::string> &problems) {
  for (size_t i = 0; i < fields.size(); ++i) {
    const json &field = fields[i];
    if (!field.is_object() || !is_text(field.value("name", json())) ||
        !is_text(field.value("type", json()))) {
      problems.push_back("connect_fields[" + std::to_string(i) +
                         "] needs a \"name\" and a \"type\"");
    }
  }
}

void check_settings(const json &settings, std::vector<std::string> &problems) {
  std::set<std::string> keys;
  for (size_t i = 0; i < settings.size(); ++i) {
    const json &setting = settings[i];
    const std::string at = "settings[" + std::to_string(i) + "]";
    if (!setting.is_object() || !is_text(setting.value("key", json()))) {
      problems.push_back(at + " needs a \"key\"");
      continue;
    }
    const std::string key = setting["key"];
    if (!keys.insert(key).second) problems.push_back(at + " repeats the key \"" + key + "\"");
    const json type = setting.value("type", json());
    if (!is_setting_type(type)) {
      problems.push_back(at + " (\"" + key +
                         "\") needs a \"type\" among integer, number, string, boolean, list");
      continue;
    }
    const json fallback = setting.value("default", json());
    if (!fallback.is_null() && !fits(type.get<std::string>(), fallback)) {
      problems.push_back(at + " (\"" + key + "\") has a default that is not " +
                         with_article(type.get<std::string>()));
    }
  }
}

}  // namespace

Outcome validate_descriptor(const json &descriptor) {
  if (!descriptor.is_object()) return failure("invalid_plugin", "the descriptor is not an object");
  std::vector<std::string> problems;
  auto member = [&](const char *key) { return descriptor.value(key, json()); };

  if (!is_text(member("id"))) problems.push_back("\"id\" must be a non-empty string");
  if (!member("name").is_object() || !is_text(member("name").value("en", json()))) {
    problems.push_back("\"name\" must hold an \"en\" text");
  }
  if (!is_text(member("version"))) problems.push_back("\"version\" must be a non-empty string");
  for (const char *key : {"capabilities", "connect_fields", "settings"}) {
    if (!member(key).is_array())
      problems.push_back("\"" + std::string(key) + "\" must be an array");
  }
  if (member("capabilities").is_array()) {
    for (const auto &capability : member("capabilities")) {
      if (!is_text(capability)) {
        problems.push_back("\"capabilities\" must hold strings only");
        break;
      }
    }
  }
  if (member("connect_fields").is_array()) check_connect_fields(member("connect_fields"), problems);
  if (member("settings").is_array()) check_settings(member("settings"), problems);

  if (!problems.empty()) return failure("invalid_plugin", join(problems, "; "));
  return Ok{};
}

Expected<json> validate_settings(const json &descriptor, const json &given) {
  const std::string plugin = descriptor.value("id", std::string());
  if (!given.is_null() && !given.is_object()) {
    return failure("invalid_config",
                   "settings of plugin " + plugin + " must be a mapping of keys to values");
  }
  const json &declared = descriptor.at("settings");
  std::vector<std::string> valid_keys;
  for (const auto &setting : declared) valid_keys.push_back(setting.at("key"));

  std::vector<std::string> problems;
  json result = json::object();
  const json entries = given.is_null() ? json::object() : given;
  for (const auto &[key, value] : entries.items()) {
    // An init-capture: clang 14 cannot capture a structured binding directly.
    const auto it =
        std::find_if(declared.begin(), declared.end(),
                     [&, &key = key](const json &setting) { return setting["key"] == key; });
    if (it == declared.end()) {
      problems.push_back("unknown setting \"" + key + "\" for plugin " + plugin + ": " +
                         (valid_keys.empty() ? "it declares no settings"
                                             : "valid keys are " + join(valid_keys, ", ")));
      continue;
    }
    const std::string type = (*it)["type"];
    if (!fits(type, value)) {
      problems.push_back("setting \"" + key + "\" of plugin " + plugin + " must be " +
                         with_article(type) + ", not " + describe(value));
      continue;
    }
    result[key] = value;
  }
  if (!problems.empty()) return failure("invalid_config", join(problems, "; "));

  for (const auto &setting : declared) {
    const std::string key = setting["key"];
    if (!result.contains(key) && setting.contains("default") && !setting["default"].is_null()) {
      result[key] = setting["default"];
    }
  }
  return result;
}

}  // namespace connector::plugins

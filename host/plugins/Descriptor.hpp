// Checks on a plugin's self-description and on the settings an admin gives it.
#pragma once

#include <nlohmann/json.hpp>

#include "common/Expected.hpp"

namespace connector::plugins {

// Checks that a descriptor (see cn_plugin_api.descriptor_json) has every member the host relies
// on: a non-empty "id", "name" with an "en" text, "version", the arrays "capabilities",
// "connect_fields" (objects with "name" and "type") and "settings" (objects with a unique "key",
// a "type" among integer, number, string, boolean, list, and a "default" of that type if any).
// A failure ("invalid_plugin") lists every problem found, separated by "; ".
Outcome validate_descriptor(const nlohmann::json &descriptor);

// Checks the admin's settings for a plugin against the settings its (validated) descriptor
// declares, and returns them with the declared defaults filled in for keys not given. Unknown
// keys are refused with the list of valid keys, values of the wrong type with the key and the
// expected type; a failure ("invalid_config") lists every problem, separated by "; ".
// `given` is an object, or null for "no settings".
Expected<nlohmann::json> validate_settings(const nlohmann::json &descriptor,
                                           const nlohmann::json &given);

}  // namespace connector::plugins

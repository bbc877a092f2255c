// What the host offers its plugins, seen from the loader's side.
//
// The loader must not depend on the store or the account runtime, so it talks to them through
// this interface; the host implements it once and passes it to every plugin it loads. Each call
// names the plugin (the id the configuration enables it under) and the account it concerns.
//
// Threading: plugins call these from any thread they own, including from inside a verb, so every
// implementation must be thread-safe. Exceptions are allowed: the C trampolines in HostTable turn
// them into CN_ERR_INTERNAL (or CN_ERR_STORAGE for storage calls) and log them.
#pragma once

#include <connector/sdk.h>

#include <string>
#include <string_view>

namespace connector::plugins {

class PluginServices {
 public:
  virtual ~PluginServices() = default;

  // Writes one line from a plugin. The default writes through connector::log, tagged
  // "[plugin account]" (account may be empty for plugin-wide lines), with secrets masked.
  virtual void log(std::string_view plugin, std::string_view account, cn_log_level level,
                   std::string_view text);

  // Accepts one event of an account (JSON text, see cn_host_api.emit for the schema). Returns
  // CN_OK once the event is durable, CN_ERR_INVALID_ARGUMENT when it is malformed.
  virtual cn_result emit(std::string_view plugin, std::string_view account,
                         std::string_view event_json) = 0;

  // Durable per-account key/value storage; `secret` values are encrypted at rest.
  virtual cn_result store_put(std::string_view plugin, std::string_view account,
                              std::string_view key, std::string_view value, bool secret) = 0;

  // Sets `value` and returns CN_OK, or returns CN_ERR_NOT_FOUND when the key is absent.
  virtual cn_result store_get(std::string_view plugin, std::string_view account,
                              std::string_view key, std::string &value) = 0;
  virtual cn_result store_delete(std::string_view plugin, std::string_view account,
                                 std::string_view key) = 0;

  // Stores attachment bytes and sets `id` to their SHA-256 (64 lowercase hex characters).
  virtual cn_result attachment_put(std::string_view plugin, std::string_view account,
                                   std::string_view data, std::string &id) = 0;

  // Sets `path` to the absolute path of a stored attachment.
  virtual cn_result attachment_path(std::string_view plugin, std::string_view attachment_id,
                                    std::string &path) = 0;
};

}  // namespace connector::plugins

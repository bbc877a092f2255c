// Connector SDK, C++ layer: everything a plugin author needs, header-only, on top of sdk.h.
//
// A plugin derives from connector::sdk::Plugin, implements the verbs it supports and declares
// itself once with CONNECTOR_PLUGIN(MyPlugin). The macro exports the ABI marker and the entry
// point, and turns every C call into a virtual call wrapped so that no exception crosses the
// boundary: an exception thrown by a verb becomes CN_ERR_INTERNAL with its message.
//
// Threading and ownership are those of sdk.h: the host never runs two verbs of one account at
// once; Host's methods are thread-safe and may be called from any thread.
#pragma once

#include <connector/sdk.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <functional>
#include <new>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace connector::sdk {

using Json = nlohmann::json;

// An expected failure: a code from sdk.h and a message an attendant can read.
struct Error {
  cn_result code = CN_ERR_INTERNAL;
  std::string message;
};

// The result of a verb: a value or an Error (a small stand-in for C++23 std::expected).
template <typename T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Error error) : state_(std::move(error)) {}

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }
  const T &value() const { return std::get<T>(state_); }
  T &value() { return std::get<T>(state_); }
  const Error &error() const { return std::get<Error>(state_); }

 private:
  std::variant<T, Error> state_;
};

// Success without a value.
struct Done {};
using Status = Result<Done>;
inline Status ok() { return Done{}; }
inline Error fail(cn_result code, std::string message) { return Error{code, std::move(message)}; }

// The host's services, as seen by a plugin. Cheap to copy; valid until the plugin shuts down.
class Host {
 public:
  explicit Host(const cn_host_api *api) : api_(api) {}

  void log(cn_log_level level, const std::string &account_id, const std::string &message) const {
    api_->log(api_->host, account_id.empty() ? nullptr : account_id.c_str(), level,
              message.c_str());
  }
  void debug(const std::string &account_id, const std::string &m) const {
    log(CN_LOG_DEBUG, account_id, m);
  }
  void info(const std::string &account_id, const std::string &m) const {
    log(CN_LOG_INFO, account_id, m);
  }
  void warn(const std::string &account_id, const std::string &m) const {
    log(CN_LOG_WARN, account_id, m);
  }

  // Hands one event to the host (see cn_host_api.emit for the event types).
  cn_result emit(const std::string &account_id, const Json &event) const {
    const std::string text = event.dump();
    return api_->emit(api_->host, account_id.c_str(), text.c_str());
  }

  // Shorthands for the most common events.
  cn_result emit_status(const std::string &account_id, std::string_view state,
                        std::string_view account_name = {}, std::string_view detail = {}) const {
    Json event = {{"type", "status"}, {"state", state}};
    if (!account_name.empty()) event["account"] = account_name;
    if (!detail.empty()) event["detail"] = detail;
    return emit(account_id, event);
  }
  // The same with a machine-readable reason_code beside the detail (docs/sdk.md, "status").
  cn_result emit_status(const std::string &account_id, std::string_view state,
                        std::string_view account_name, std::string_view detail,
                        std::string_view reason_code) const {
    Json event = {{"type", "status"}, {"state", state}};
    if (!account_name.empty()) event["account"] = account_name;
    if (!detail.empty()) event["detail"] = detail;
    if (!reason_code.empty()) event["reason_code"] = reason_code;
    return emit(account_id, event);
  }
  cn_result emit_log(const std::string &account_id, std::string_view level,
                     std::string_view text) const {
    return emit(account_id, {{"type", "log"}, {"level", level}, {"text", text}});
  }

  // Durable per-account storage; `secret` values are encrypted at rest.
  cn_result put(const std::string &account_id, const std::string &key, std::string_view value,
                bool secret = false) const {
    return api_->store_put(api_->host, account_id.c_str(), key.c_str(), value.data(),
                           value.size(), secret ? 1 : 0);
  }
  std::optional<std::string> get(const std::string &account_id, const std::string &key) const {
    char *data = nullptr;
    size_t size = 0;
    if (api_->store_get(api_->host, account_id.c_str(), key.c_str(), &data, &size) != CN_OK) {
      return std::nullopt;
    }
    std::string value(data, size);
    api_->free(data);
    return value;
  }
  cn_result erase(const std::string &account_id, const std::string &key) const {
    return api_->store_delete(api_->host, account_id.c_str(), key.c_str());
  }

  // Stores attachment bytes; returns the attachment id (SHA-256 hex) or nullopt on failure.
  std::optional<std::string> put_attachment(const std::string &account_id,
                                            std::string_view bytes) const {
    char id[65] = {};
    if (api_->attachment_put(api_->host, account_id.c_str(), bytes.data(), bytes.size(), id) !=
        CN_OK) {
      return std::nullopt;
    }
    return std::string(id);
  }
  std::optional<std::string> attachment_path(const std::string &attachment_id) const {
    char *path = nullptr;
    if (api_->attachment_path(api_->host, attachment_id.c_str(), &path) != CN_OK) {
      return std::nullopt;
    }
    std::string result(path);
    api_->free(path);
    return result;
  }

  // Copies a string into memory the host may free (for the C layer's out parameters).
  char *copy_out(const std::string &text) const {
    auto *out = static_cast<char *>(api_->alloc(text.size() + 1));
    if (out != nullptr) std::memcpy(out, text.c_str(), text.size() + 1);
    return out;
  }

 private:
  const cn_host_api *api_;
};

// Link keys of one message: what the case matcher may use to find its case.
struct LinkKeys {
  std::vector<std::string> phones;            // E.164 or as the channel gives them
  std::vector<std::string> whatsapp_ids;      // phone JIDs and LIDs
  std::vector<std::string> emails;            // sender addresses
  std::vector<std::string> subject_case_ids;  // case ids read from a subject
  std::vector<std::string> thread_refs;       // In-Reply-To first, then References right-most first

  Json to_json() const {
    return {{"phones", phones},
            {"whatsapp_ids", whatsapp_ids},
            {"emails", emails},
            {"subject_case_ids", subject_case_ids},
            {"thread_refs", thread_refs}};
  }
};

// Base class of a plugin. One instance serves every account of its kind; the host creates it
// once through the entry point and destroys it at shutdown.
class Plugin {
 public:
  explicit Plugin(Host host) : host_(host) {}
  virtual ~Plugin() = default;
  Plugin(const Plugin &) = delete;
  Plugin &operator=(const Plugin &) = delete;

  // The self-description (see cn_plugin_api.descriptor_json). Called once, right after
  // construction.
  virtual Json descriptor() const = 0;

  virtual Status configure(const Json & /*settings*/) { return ok(); }
  virtual Status connect(const std::string &account_id, const Json &params) = 0;
  virtual Status disconnect(const std::string &account_id, bool forget) = 0;
  virtual Status refresh_qr(const std::string & /*account_id*/) {
    return fail(CN_ERR_UNSUPPORTED, "this channel does not pair with a QR code");
  }
  virtual Result<Json> status(const std::string &account_id) = 0;
  virtual Result<Json> send(const std::string & /*account_id*/, const Json & /*message*/) {
    return fail(CN_ERR_UNSUPPORTED, "this channel cannot send");
  }
  virtual Result<LinkKeys> link(const Json &message) = 0;
  // Since SDK 1.1 (capability "oauth"): request is {"values", "redirect_uri", "state"}; the
  // answer is {"authorization_url": "..."}. See cn_plugin_api.oauth_start.
  virtual Result<Json> oauth_start(const std::string & /*account_id*/, const Json & /*request*/) {
    return fail(CN_ERR_UNSUPPORTED, "this channel does not sign in with OAuth");
  }

 protected:
  const Host &host() const { return host_; }

 private:
  Host host_;
};

namespace detail {

// Runs a verb so that nothing escapes: exceptions become CN_ERR_INTERNAL.
template <typename Fn>
cn_result guarded(const Host &host, char **error, Fn &&fn) noexcept {
  auto set_error = [&](const std::string &message) {
    if (error != nullptr) *error = host.copy_out(message);
  };
  try {
    return fn(set_error);
  } catch (const std::exception &e) {
    set_error(std::string("plugin error: ") + e.what());
  } catch (...) {
    set_error("plugin error: unknown exception");
  }
  return CN_ERR_INTERNAL;
}

// Owns the plugin instance and its descriptor text for the C table.
struct Instance {
  Host host;
  Plugin *plugin = nullptr;
  std::string descriptor;
};

inline Instance *self(void *p) { return static_cast<Instance *>(p); }

template <typename T>
cn_result deliver(const Result<T> &result, const std::function<void(const std::string &)> &err) {
  if (result.ok()) return CN_OK;
  err(result.error().message);
  return result.error().code;
}

inline cn_result parse_json(const char *text, Json &out,
                            const std::function<void(const std::string &)> &err) {
  out = Json::parse(text == nullptr ? "{}" : text, nullptr, false);
  if (out.is_discarded()) {
    err("malformed JSON from the host");
    return CN_ERR_INVALID_ARGUMENT;
  }
  return CN_OK;
}

inline void fill_table(Instance *instance, cn_plugin_api *api) {
  using SetError = std::function<void(const std::string &)>;
  api->struct_size = sizeof(cn_plugin_api);
  api->plugin = instance;
  api->descriptor_json = instance->descriptor.c_str();

  api->configure = [](void *p, const char *settings, char **error) {
    auto *i = self(p);
    return guarded(i->host, error, [&](const SetError &err) {
      Json json;
      if (auto rc = parse_json(settings, json, err); rc != CN_OK) return rc;
      return deliver(i->plugin->configure(json), err);
    });
  };
  api->connect = [](void *p, const char *account, const char *params, char **error) {
    auto *i = self(p);
    return guarded(i->host, error, [&](const SetError &err) {
      Json json;
      if (auto rc = parse_json(params, json, err); rc != CN_OK) return rc;
      return deliver(i->plugin->connect(account, json), err);
    });
  };
  api->disconnect = [](void *p, const char *account, int forget, char **error) {
    auto *i = self(p);
    return guarded(i->host, error, [&](const SetError &err) {
      return deliver(i->plugin->disconnect(account, forget != 0), err);
    });
  };
  api->refresh_qr = [](void *p, const char *account, char **error) {
    auto *i = self(p);
    return guarded(i->host, error, [&](const SetError &err) {
      return deliver(i->plugin->refresh_qr(account), err);
    });
  };
  api->status = [](void *p, const char *account, char **out, char **error) {
    auto *i = self(p);
    return guarded(i->host, error, [&](const SetError &err) {
      auto result = i->plugin->status(account);
      if (result.ok()) *out = i->host.copy_out(result.value().dump());
      return deliver(result, err);
    });
  };
  api->send = [](void *p, const char *account, const char *message, char **out, char **error) {
    auto *i = self(p);
    return guarded(i->host, error, [&](const SetError &err) {
      Json json;
      if (auto rc = parse_json(message, json, err); rc != CN_OK) return rc;
      auto result = i->plugin->send(account, json);
      if (result.ok()) *out = i->host.copy_out(result.value().dump());
      return deliver(result, err);
    });
  };
  api->link = [](void *p, const char *message, char **out, char **error) {
    auto *i = self(p);
    return guarded(i->host, error, [&](const SetError &err) {
      Json json;
      if (auto rc = parse_json(message, json, err); rc != CN_OK) return rc;
      auto result = i->plugin->link(json);
      if (result.ok()) *out = i->host.copy_out(result.value().to_json().dump());
      return deliver(result, err);
    });
  };
  api->oauth_start = [](void *p, const char *account, const char *request, char **out,
                        char **error) {
    auto *i = self(p);
    return guarded(i->host, error, [&](const SetError &err) {
      Json json;
      if (auto rc = parse_json(request, json, err); rc != CN_OK) return rc;
      auto result = i->plugin->oauth_start(account, json);
      if (result.ok()) *out = i->host.copy_out(result.value().dump());
      return deliver(result, err);
    });
  };
  api->shutdown = [](void *p) {
    auto *i = self(p);
    try {
      delete i->plugin;
    } catch (...) {
      // A destructor that throws must not take the host down with it.
    }
    delete i;
  };
}

template <typename PluginClass>
cn_result enter(const cn_host_api *host_api, cn_plugin_api *api, char **error) noexcept {
  if (host_api == nullptr || api == nullptr) return CN_ERR_INVALID_ARGUMENT;
  Host host(host_api);
  auto *instance = new (std::nothrow) Instance{host, nullptr, {}};
  if (instance == nullptr) return CN_ERR_INTERNAL;
  cn_result rc = guarded(host, error, [&](const std::function<void(const std::string &)> &) {
    instance->plugin = new PluginClass(host);
    instance->descriptor = instance->plugin->descriptor().dump();
    return CN_OK;
  });
  if (rc != CN_OK) {
    delete instance->plugin;
    delete instance;
    return rc;
  }
  fill_table(instance, api);
  return CN_OK;
}

}  // namespace detail
}  // namespace connector::sdk

// Declares the plugin class of this shared library. Use once, at namespace scope.
#define CONNECTOR_PLUGIN(PluginClass)                                                            \
  CN_DECLARE_ABI_MARKER();                                                                       \
  extern "C" __attribute__((visibility("default"))) cn_result connector_plugin_entry(            \
      const cn_host_api *host, cn_plugin_api *api, char **error) {                               \
    return ::connector::sdk::detail::enter<PluginClass>(host, api, error);                       \
  }

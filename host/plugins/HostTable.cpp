#include "plugins/HostTable.hpp"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string_view>

#include "log/Log.hpp"

namespace connector::plugins {
namespace {

HostTable &table(void *host) { return *static_cast<HostTable *>(host); }

// The one allocator both sides share (std::malloc's address is not ours to take).
void *allocate(size_t size) { return std::malloc(size); }
void release(void *ptr) { std::free(ptr); }

std::string_view view(const char *text) { return text == nullptr ? std::string_view() : text; }

// Copies `bytes` into memory the plugin releases with cn_host_api.free.
char *copy_out(std::string_view bytes) {
  auto *out = static_cast<char *>(std::malloc(bytes.size() + 1));
  if (out == nullptr) return nullptr;
  std::memcpy(out, bytes.data(), bytes.size());
  out[bytes.size()] = '\0';
  return out;
}

// Runs one service call so that no exception reaches the plugin; a throw becomes `on_throw`.
template <typename Fn>
cn_result guarded(void *host, const char *call, cn_result on_throw, Fn &&fn) noexcept {
  try {
    return fn(table(host));
  } catch (const std::exception &e) {
    log::error({table(host).plugin_id()}, std::string("host service ") + call + ": " + e.what());
  } catch (...) {
    log::error({table(host).plugin_id()}, std::string("host service ") + call + " failed");
  }
  return on_throw;
}

void log_line(void *host, const char *account, cn_log_level level, const char *message) {
  guarded(host, "log", CN_OK, [&](HostTable &t) {
    t.services().log(t.plugin_id(), view(account), level, view(message));
    return CN_OK;
  });
}

cn_result emit(void *host, const char *account, const char *event_json) {
  if (account == nullptr || event_json == nullptr) return CN_ERR_INVALID_ARGUMENT;
  return guarded(host, "emit", CN_ERR_INTERNAL, [&](HostTable &t) {
    return t.services().emit(t.plugin_id(), account, event_json);
  });
}

cn_result store_put(void *host, const char *account, const char *key, const void *value,
                    size_t size, int secret) {
  if (account == nullptr || key == nullptr || (value == nullptr && size > 0)) {
    return CN_ERR_INVALID_ARGUMENT;
  }
  const std::string_view bytes(static_cast<const char *>(value), size);
  return guarded(host, "store_put", CN_ERR_STORAGE, [&](HostTable &t) {
    return t.services().store_put(t.plugin_id(), account, key, bytes, secret != 0);
  });
}

cn_result store_get(void *host, const char *account, const char *key, char **value, size_t *size) {
  if (account == nullptr || key == nullptr || value == nullptr || size == nullptr) {
    return CN_ERR_INVALID_ARGUMENT;
  }
  return guarded(host, "store_get", CN_ERR_STORAGE, [&](HostTable &t) {
    std::string stored;
    const cn_result rc = t.services().store_get(t.plugin_id(), account, key, stored);
    if (rc != CN_OK) return rc;
    *value = copy_out(stored);
    if (*value == nullptr) return CN_ERR_INTERNAL;
    *size = stored.size();
    return CN_OK;
  });
}

cn_result store_delete(void *host, const char *account, const char *key) {
  if (account == nullptr || key == nullptr) return CN_ERR_INVALID_ARGUMENT;
  return guarded(host, "store_delete", CN_ERR_STORAGE, [&](HostTable &t) {
    return t.services().store_delete(t.plugin_id(), account, key);
  });
}

cn_result attachment_put(void *host, const char *account, const void *data, size_t size,
                         char id_out[65]) {
  if (account == nullptr || id_out == nullptr || (data == nullptr && size > 0)) {
    return CN_ERR_INVALID_ARGUMENT;
  }
  const std::string_view bytes(static_cast<const char *>(data), size);
  return guarded(host, "attachment_put", CN_ERR_STORAGE, [&](HostTable &t) {
    std::string id;
    const cn_result rc = t.services().attachment_put(t.plugin_id(), account, bytes, id);
    if (rc != CN_OK) return rc;
    if (id.size() != 64) return CN_ERR_INTERNAL;
    std::memcpy(id_out, id.c_str(), 65);
    return CN_OK;
  });
}

cn_result attachment_path(void *host, const char *attachment_id, char **path) {
  if (attachment_id == nullptr || path == nullptr) return CN_ERR_INVALID_ARGUMENT;
  return guarded(host, "attachment_path", CN_ERR_STORAGE, [&](HostTable &t) {
    std::string found;
    const cn_result rc = t.services().attachment_path(t.plugin_id(), attachment_id, found);
    if (rc != CN_OK) return rc;
    *path = copy_out(found);
    return *path == nullptr ? CN_ERR_INTERNAL : CN_OK;
  });
}

}  // namespace

HostTable::HostTable(PluginServices &services, std::string plugin_id)
    : services_(services), plugin_id_(std::move(plugin_id)) {
  api_.struct_size = sizeof(cn_host_api);
  api_.host = this;
  api_.alloc = &allocate;
  api_.free = &release;
  api_.log = &log_line;
  api_.emit = &emit;
  api_.store_put = &store_put;
  api_.store_get = &store_get;
  api_.store_delete = &store_delete;
  api_.attachment_put = &attachment_put;
  api_.attachment_path = &attachment_path;
}

}  // namespace connector::plugins

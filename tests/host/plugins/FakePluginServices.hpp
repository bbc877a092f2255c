// A PluginServices that keeps everything in memory and records every call, for the loader tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "plugins/PluginServices.hpp"

namespace connector::plugins::test {

class FakePluginServices : public PluginServices {
 public:
  struct Event {
    std::string plugin;
    std::string account;
    nlohmann::json body;
  };

  void log(std::string_view plugin, std::string_view account, cn_log_level level,
           std::string_view text) override {
    record("log " + std::string(plugin) + " " + std::string(account) + " " + std::to_string(level) +
           " " + std::string(text));
  }

  cn_result emit(std::string_view plugin, std::string_view account,
                 std::string_view event_json) override {
    auto body = nlohmann::json::parse(event_json, nullptr, false);
    if (body.is_discarded()) return CN_ERR_INVALID_ARGUMENT;
    std::lock_guard lock(mutex_);
    events_.push_back({std::string(plugin), std::string(account), std::move(body)});
    changed_.notify_all();
    return CN_OK;
  }

  cn_result store_put(std::string_view plugin, std::string_view account, std::string_view key,
                      std::string_view value, bool secret) override {
    check_storage();
    record("store_put " + std::string(plugin) + " " + std::string(account) + " " +
           std::string(key) + (secret ? " secret" : ""));
    std::lock_guard lock(mutex_);
    store_[slot(plugin, account, key)] = std::string(value);
    return CN_OK;
  }

  cn_result store_get(std::string_view plugin, std::string_view account, std::string_view key,
                      std::string &value) override {
    check_storage();
    record("store_get " + std::string(plugin) + " " + std::string(account) + " " +
           std::string(key));
    std::lock_guard lock(mutex_);
    auto it = store_.find(slot(plugin, account, key));
    if (it == store_.end()) return CN_ERR_NOT_FOUND;
    value = it->second;
    return CN_OK;
  }

  cn_result store_delete(std::string_view plugin, std::string_view account,
                         std::string_view key) override {
    check_storage();
    record("store_delete " + std::string(plugin) + " " + std::string(account) + " " +
           std::string(key));
    std::lock_guard lock(mutex_);
    return store_.erase(slot(plugin, account, key)) > 0 ? CN_OK : CN_ERR_NOT_FOUND;
  }

  cn_result attachment_put(std::string_view plugin, std::string_view account, std::string_view data,
                           std::string &id) override {
    check_storage();
    record("attachment_put " + std::string(plugin) + " " + std::string(account) + " " +
           std::string(data));
    id = std::string(64, 'a');
    return CN_OK;
  }

  cn_result attachment_path(std::string_view plugin, std::string_view attachment_id,
                            std::string &path) override {
    check_storage();
    record("attachment_path " + std::string(plugin) + " " + std::string(attachment_id));
    path = "/attachments/" + std::string(attachment_id);
    return CN_OK;
  }

  // Waits (at most `timeout`) for an event that `match` accepts and returns it.
  std::optional<Event> wait_for_event(const std::function<bool(const Event &)> &match,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock lock(mutex_);
    std::optional<Event> found;
    changed_.wait_for(lock, timeout, [&] {
      for (const auto &event : events_) {
        if (match(event)) found = event;
      }
      return found.has_value();
    });
    return found;
  }

  std::vector<std::string> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }

  std::optional<std::string> stored(const std::string &plugin, const std::string &account,
                                    const std::string &key) const {
    std::lock_guard lock(mutex_);
    auto it = store_.find(slot(plugin, account, key));
    if (it == store_.end()) return std::nullopt;
    return it->second;
  }

  // When set, every storage call throws, as a broken database would.
  bool storage_throws = false;

 private:
  static std::string slot(std::string_view plugin, std::string_view account, std::string_view key) {
    return std::string(plugin) + "/" + std::string(account) + "/" + std::string(key);
  }
  void check_storage() const {
    if (storage_throws) throw std::runtime_error("disk on fire");
  }
  void record(std::string call) {
    std::lock_guard lock(mutex_);
    calls_.push_back(std::move(call));
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Event> events_;
  std::vector<std::string> calls_;
  std::map<std::string, std::string> store_;
};

}  // namespace connector::plugins::test

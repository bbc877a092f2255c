// PluginServices for the e-mail tests: storage that outlives a plugin (so a "restart" is a new
// PluginRegistry over the same services), a real content-addressed attachment folder, and every
// event recorded. Messages are deduplicated on external_id as the host does, and every emit of
// one is counted, so a test can tell a replay from a duplicate.
#pragma once

#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "plugins/PluginServices.hpp"

namespace connector::test {

class RecordingServices : public plugins::PluginServices {
 public:
  explicit RecordingServices(std::filesystem::path attachment_dir)
      : attachment_dir_(std::move(attachment_dir)) {
    std::filesystem::create_directories(attachment_dir_);
  }

  void log(std::string_view, std::string_view, cn_log_level, std::string_view text) override {
    std::lock_guard lock(mutex_);
    log_lines_.emplace_back(text);
  }

  cn_result emit(std::string_view, std::string_view account, std::string_view text) override {
    auto body = nlohmann::json::parse(text, nullptr, false);
    if (body.is_discarded()) return CN_ERR_INVALID_ARGUMENT;
    std::lock_guard lock(mutex_);
    if (body.value("type", "") == "messages") {
      // Several messages in one event: kept as the messages they carry, as the host does.
      if (refuse_batches_ || !body.contains("messages") || !body["messages"].is_array()) {
        return CN_ERR_INVALID_ARGUMENT;
      }
      batch_sizes_.push_back(body["messages"].size());
      for (auto &message : body["messages"]) {
        if (!message.value("external_id", "").empty()) record_message(std::move(message));
      }
      changed_.notify_all();
      return CN_OK;
    }
    if (body.value("type", "") == "message" && body.value("external_id", "").empty()) {
      return CN_ERR_INVALID_ARGUMENT;
    }
    record_message(std::move(body));
    changed_.notify_all();
    return CN_OK;
  }

  // Answers "messages" events as a host that does not know them does.
  void refuse_batches() {
    std::lock_guard lock(mutex_);
    refuse_batches_ = true;
  }
  // How many messages each "messages" event carried, in order.
  std::vector<size_t> batch_sizes() const {
    std::lock_guard lock(mutex_);
    return batch_sizes_;
  }

  cn_result store_put(std::string_view, std::string_view account, std::string_view key,
                      std::string_view value, bool secret) override {
    std::lock_guard lock(mutex_);
    store_[std::string(account) + "/" + std::string(key)] = std::string(value);
    if (secret) secret_keys_.push_back(std::string(key));
    return CN_OK;
  }

  cn_result store_get(std::string_view, std::string_view account, std::string_view key,
                      std::string &value) override {
    std::lock_guard lock(mutex_);
    auto it = store_.find(std::string(account) + "/" + std::string(key));
    if (it == store_.end()) return CN_ERR_NOT_FOUND;
    value = it->second;
    return CN_OK;
  }

  cn_result store_delete(std::string_view, std::string_view account,
                         std::string_view key) override {
    std::lock_guard lock(mutex_);
    return store_.erase(std::string(account) + "/" + std::string(key)) ? CN_OK : CN_ERR_NOT_FOUND;
  }

  cn_result attachment_put(std::string_view, std::string_view, std::string_view data,
                           std::string &id) override {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char *>(data.data()), data.size(), digest);
    static const char *kHex = "0123456789abcdef";
    id.clear();
    for (unsigned char c : digest) {
      id += kHex[c >> 4];
      id += kHex[c & 15];
    }
    std::ofstream(attachment_dir_ / id, std::ios::binary).write(data.data(), data.size());
    return CN_OK;
  }

  cn_result attachment_path(std::string_view, std::string_view id, std::string &path) override {
    const auto file = attachment_dir_ / std::string(id);
    if (!std::filesystem::exists(file)) return CN_ERR_NOT_FOUND;
    path = file.string();
    return CN_OK;
  }

  // The bytes of a stored attachment.
  std::string attachment(const std::string &id) const {
    std::ifstream file(attachment_dir_ / id, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(file), {});
  }

  // Waits (at most `timeout`) until `ready` holds. `ready` runs under the lock: it may read the
  // members directly but must not call the public accessors.
  bool wait_until(const std::function<bool()> &ready,
                  std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, ready);
  }

  // The first event matching `match`, waiting for it at most `timeout`.
  std::optional<nlohmann::json> wait_for(
      const std::function<bool(const nlohmann::json &)> &match,
      std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    std::optional<nlohmann::json> found;
    wait_until(
        [&] {
          for (const auto &e : events_) {
            if (match(e)) {
              found = e;
              return true;
            }
          }
          return false;
        },
        timeout);
    return found;
  }

  // Waits until `count` events match (the predicate runs under the lock: it must not call back).
  bool wait_for_count(const std::function<bool(const nlohmann::json &)> &match, size_t count,
                      std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    return wait_until(
        [&] {
          return static_cast<size_t>(std::count_if(events_.begin(), events_.end(), match)) >=
                 count;
        },
        timeout);
  }

  std::optional<nlohmann::json> wait_for_status(
      const std::string &state, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    return wait_for(
        [&](const nlohmann::json &e) {
          return e.value("type", "") == "status" && e.value("state", "") == state;
        },
        timeout);
  }

  std::optional<nlohmann::json> wait_for_subject(
      const std::string &subject, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    return wait_for(
        [&](const nlohmann::json &e) {
          return e.value("type", "") == "message" && e.value("subject", "") == subject;
        },
        timeout);
  }

  // Unique stored messages (as the host would keep them) and emits per external_id.
  std::vector<nlohmann::json> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  int emits_of(const std::string &external_id) const {
    std::lock_guard lock(mutex_);
    auto it = emits_of_.find(external_id);
    return it == emits_of_.end() ? 0 : it->second;
  }
  std::vector<nlohmann::json> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  void clear_events() {
    std::lock_guard lock(mutex_);
    events_.clear();
  }
  std::vector<std::string> log_lines() const {
    std::lock_guard lock(mutex_);
    return log_lines_;
  }
  std::optional<std::string> stored(const std::string &account, const std::string &key) const {
    std::lock_guard lock(mutex_);
    auto it = store_.find(account + "/" + key);
    if (it == store_.end()) return std::nullopt;
    return it->second;
  }

 private:
  void record_message(nlohmann::json body) {
    if (body.value("type", "") == "message") {
      if (emits_of_[body.value("external_id", "")]++ == 0) messages_.push_back(body);
    }
    events_.push_back(std::move(body));
  }

  std::filesystem::path attachment_dir_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<nlohmann::json> events_;
  std::vector<nlohmann::json> messages_;
  std::map<std::string, int> emits_of_;
  bool refuse_batches_ = false;
  std::vector<size_t> batch_sizes_;
  std::map<std::string, std::string> store_;
  std::vector<std::string> secret_keys_;
  std::vector<std::string> log_lines_;
};

}  // namespace connector::test

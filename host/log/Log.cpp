#include "log/Log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <set>
#include <vector>

namespace connector::log {
namespace {

// Shorter values are too likely to be ordinary words ("admin", "wrong") to mask safely.
constexpr size_t kMinSecretBytes = 6;
// Longer values are stored blobs (a WhatsApp session state is 140 KB and is written again after
// nearly every message), not passwords or tokens: kept, they would grow this list without bound,
// and no log line carries one whole.
constexpr size_t kMaxSecretBytes = 16 * 1024;

std::mutex secrets_mutex;
// Longest first, so a secret that contains another is masked whole.
struct LongestFirst {
  bool operator()(const std::string &a, const std::string &b) const {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  }
};
std::set<std::string, LongestFirst> secrets;

}  // namespace

void init(std::string_view level, const std::string &file) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (!file.empty()) {
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
  }
  auto logger = std::make_shared<spdlog::logger>("connector-host", sinks.begin(), sinks.end());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void write(spdlog::level::level_enum level, const Tag &tag, std::string_view message) {
  auto logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  const std::string text = mask(message);
  if (tag.account.empty()) {
    logger->log(level, "[{}] {}", tag.plugin, text);
  } else {
    logger->log(level, "[{} {}] {}", tag.plugin, tag.account, text);
  }
}

void add_secret(std::string_view value) {
  if (value.size() < kMinSecretBytes || value.size() > kMaxSecretBytes) return;
  std::lock_guard lock(secrets_mutex);
  secrets.emplace(value);
}

std::string mask(std::string_view text) {
  std::string out(text);
  std::lock_guard lock(secrets_mutex);
  for (const auto &secret : secrets) {
    for (size_t at = out.find(secret); at != std::string::npos; at = out.find(secret, at + 3)) {
      out.replace(at, secret.size(), "***");
    }
  }
  return out;
}

}  // namespace connector::log

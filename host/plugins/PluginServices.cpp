#include "plugins/PluginServices.hpp"

#include "log/Log.hpp"

namespace connector::plugins {
namespace {

spdlog::level::level_enum to_spdlog(cn_log_level level) {
  switch (level) {
    case CN_LOG_DEBUG:
      return spdlog::level::debug;
    case CN_LOG_WARN:
      return spdlog::level::warn;
    case CN_LOG_ERROR:
      return spdlog::level::err;
    case CN_LOG_INFO:
      break;
  }
  return spdlog::level::info;
}

}  // namespace

void PluginServices::log(std::string_view plugin, std::string_view account, cn_log_level level,
                         std::string_view text) {
  log::write(to_spdlog(level), log::Tag{plugin, account}, text);
}

}  // namespace connector::plugins

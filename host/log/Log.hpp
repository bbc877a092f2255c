// Logging for the host and its plugins, through spdlog.
//
// Every line names where it comes from — the host itself, or a plugin and an account — and any
// secret the host knows of is masked before the line is written anywhere.
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace connector::log {

// Where a line comes from: "host", or a plugin id and (optionally) an account id.
struct Tag {
  std::string_view plugin = "host";
  std::string_view account = {};
};

// Sets up the logger: console (stderr) and, when `file` is not empty, a file as well.
// `level` is one of trace, debug, info, warn, error. Safe to call again (tests do).
void init(std::string_view level, const std::string &file = {});

// Writes one line at `level`, tagged and with known secrets masked.
void write(spdlog::level::level_enum level, const Tag &tag, std::string_view message);

inline void debug(const Tag &tag, std::string_view m) { write(spdlog::level::debug, tag, m); }
inline void info(const Tag &tag, std::string_view m) { write(spdlog::level::info, tag, m); }
inline void warn(const Tag &tag, std::string_view m) { write(spdlog::level::warn, tag, m); }
inline void error(const Tag &tag, std::string_view m) { write(spdlog::level::err, tag, m); }

// Registers a secret value (a password, token or key) so that it is masked as "***" in every
// later line. Values shorter than 6 bytes are ignored: masking them would garble ordinary text
// (a plugin must never log secrets in the first place; masking is the second line of defence).
// Values longer than 16 KiB (stored blobs such as a session state, rewritten often) are not kept.
void add_secret(std::string_view value);

// Returns `text` with every registered secret masked. Used for log lines and for any text from a
// plugin that the host stores or shows (integration log, error details).
std::string mask(std::string_view text);

}  // namespace connector::log

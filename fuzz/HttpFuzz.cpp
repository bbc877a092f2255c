// The control API's gate for request bodies and targets, before any route sees them: the depth
// check must pass exactly the JSON texts that nest no deeper than the limit (brackets inside
// strings do not count), so hostile bodies cannot exhaust the parser's stack and honest ones are
// never refused; a request target splits into a path and query without NUL bytes.
//
// An input is "<target>\n<body>".
#include "FuzzCheck.hpp"
#include "api/Http.hpp"

#include <string>
#include <string_view>

namespace {

constexpr int kMaxDepth = 32;  // the control API's default

int depth_of(const nlohmann::json &value) {
  int deepest = 0;
  if (value.is_structured()) {
    for (const auto &item : value) deepest = std::max(deepest, depth_of(item));
    return deepest + 1;
  }
  return 0;
}

bool has_nul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string_view input(reinterpret_cast<const char *>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view target = input.substr(0, newline);
  const std::string_view body =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

  if (auto split = connector::api::split_target(target)) {
    FUZZ_CHECK(!has_nul(split->first), "a NUL byte in the path");
    FUZZ_CHECK(!split->first.empty() && split->first.front() == '/', "a path that is not absolute");
    for (const auto &[key, value] : split->second) {
      FUZZ_CHECK(!has_nul(key) && !has_nul(value), "a NUL byte in the query");
    }
  }

  // The API refuses a body with a NUL byte before this gate: JSON text has none, and the parser
  // would stop reading there and accept what came before.
  if (body.find('\0') != std::string_view::npos) return 0;

  if (!connector::api::json_depth_within(body, kMaxDepth)) {
    // Refused: then it must not be a JSON text within the limit. (The API never parses a refused
    // body; here it is parsed to check the refusal, only while depth_of's recursion stays small.)
    if (body.size() > 4096) return 0;
    const auto parsed = nlohmann::json::parse(body, nullptr, false);
    FUZZ_CHECK(parsed.is_discarded() || depth_of(parsed) > kMaxDepth,
               "a JSON body within the depth limit was refused");
    return 0;
  }
  const auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (!parsed.is_discarded()) {
    FUZZ_CHECK(depth_of(parsed) <= kMaxDepth, "a body nesting too deeply was let through");
  }
  return 0;
}

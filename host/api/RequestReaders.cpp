#include "api/RequestReaders.hpp"

#include "api/ControlApi.hpp"

#include <algorithm>
#include <charconv>

namespace connector::api {

Response not_found() { return Response::error(404, "not_found", "no such resource"); }

Response method_not_allowed() {
  return Response::error(405, "method_not_allowed", "this resource does not take that method");
}

Response fail(const Failure &failure) {
  return Response::error(status_for(failure), failure.code, failure.message);
}

std::optional<Response> only_fields(const Json &body, std::initializer_list<const char *> allowed) {
  for (const auto &item : body.items()) {
    const std::string &key = item.key();
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char *a) { return key == a; })) {
      std::string valid;
      for (const char *a : allowed) valid += (valid.empty() ? "" : ", ") + std::string(a);
      return Response::error(400, "unknown_field",
                             "unknown field \"" + key + "\"; valid fields: " + valid);
    }
  }
  return std::nullopt;
}

std::optional<Response> string_field(const Json &body, const char *name, bool required,
                                     size_t max_size) {
  if (!body.contains(name)) {
    if (!required) return std::nullopt;
    return Response::error(400, "missing_field", std::string("\"") + name + "\" is required");
  }
  if (!body[name].is_string() || body[name].get<std::string>().size() > max_size) {
    return Response::error(400, "invalid_request",
                           std::string("\"") + name + "\" must be a string of at most " +
                               std::to_string(max_size) + " bytes");
  }
  return std::nullopt;
}

std::optional<int64_t> parse_int(const std::string &text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<store::Page> page_of(const Request &request) {
  store::Page page;
  if (auto it = request.query.find("limit"); it != request.query.end()) {
    auto limit = parse_int(it->second);
    if (!limit || *limit < 1 || *limit > 200) return std::nullopt;
    page.limit = static_cast<int>(*limit);
  }
  if (auto it = request.query.find("before"); it != request.query.end()) {
    page.before = parse_int(it->second);
    if (!page.before) return std::nullopt;
  }
  return page;
}

Response bad_page() {
  return Response::error(400, "invalid_request",
                         "\"limit\" must be 1 to 200 and \"before\" a message or case id");
}

Json page_json(std::vector<Json> items, const store::Page &page) {
  Json next = nullptr;
  if (static_cast<int>(items.size()) == page.limit && !items.empty()) next = items.back()["id"];
  return {{"items", std::move(items)}, {"next_before", next}};
}

}  // namespace connector::api

// Plain request and response values for the control API, free of any network library, so the
// routes can be read and tested without Beast.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace connector::api {

using Json = nlohmann::json;

struct Request {
  std::string method;  // GET, POST, DELETE, …
  std::string path;    // without the query string, percent-decoded
  std::map<std::string, std::string> query;
  std::string bearer_token;  // from "Authorization: Bearer …"; empty when absent
  std::string content_type;
  std::string accept_language;  // the browser's languages, for pages a browser shows directly
  std::string cookie;           // the Cookie header (the language choice, OAuth sign-in binding)
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Response json(int status, const Json &body);
  // An error body: {"error": {"code": "...", "message": "..."}}.
  static Response error(int status, const std::string &code, const std::string &message);
};

// Splits a request target into a decoded path and its query parameters. Returns nullopt for a
// target that is not a plain absolute path (bad percent-encoding, NUL bytes).
std::optional<std::pair<std::string, std::map<std::string, std::string>>> split_target(
    std::string_view target);

// True when the JSON text nests arrays and objects no deeper than `max_depth`. Checked before
// parsing, so a hostile body cannot exhaust the parser's stack.
bool json_depth_within(std::string_view text, int max_depth);

}  // namespace connector::api

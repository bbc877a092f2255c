#include "api/server/StaticFiles.hpp"

#include <fstream>
#include <map>
#include <sstream>

namespace connector::api {
namespace {

std::string content_type_of(const std::filesystem::path &file) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},  {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},    {".svg", "image/svg+xml"},
      {".png", "image/png"},                  {".json", "application/json"},
      {".ico", "image/x-icon"},               {".txt", "text/plain; charset=utf-8"}};
  auto it = kTypes.find(file.extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

Response not_found() { return Response::error(404, "not_found", "no such file"); }

}  // namespace

Response serve_static(const std::filesystem::path &root, std::string_view method,
                      const std::string &path) {
  if (method != "GET" && method != "HEAD") {
    return Response::error(405, "method_not_allowed", "only GET and HEAD are served here");
  }
  if (root.empty()) return not_found();
  const std::string relative = path == "/" ? "index.html" : path.substr(1);
  for (const auto &part : std::filesystem::path(relative)) {
    const std::string name = part.string();
    if (name.empty() || name[0] == '.' || name.find('\\') != std::string::npos) return not_found();
  }

  std::error_code ec;
  const auto base = std::filesystem::canonical(root, ec);
  if (ec) return not_found();
  const auto file = std::filesystem::canonical(base / relative, ec);
  if (ec || !std::filesystem::is_regular_file(file, ec)) return not_found();
  const auto [end, _] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
  if (end != base.end()) return not_found();

  std::ifstream in(file, std::ios::binary);
  std::ostringstream body;
  body << in.rdbuf();
  Response response;
  response.content_type = content_type_of(file);
  response.body = method == "HEAD" ? std::string() : body.str();
  response.headers.emplace_back("Cache-Control", "no-cache");
  response.headers.emplace_back("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data: blob:; "
                                "connect-src 'self'; style-src 'self'; frame-ancestors 'none'");
  response.headers.emplace_back("X-Frame-Options", "DENY");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
  return response;
}

}  // namespace connector::api

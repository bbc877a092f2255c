// Serves the connection screen's files from one folder: GET and HEAD only, no listing, nothing
// outside the folder (no "..", no hidden files, links resolved and checked).
#pragma once

#include "api/Http.hpp"

#include <filesystem>
#include <string_view>

namespace connector::api {

Response serve_static(const std::filesystem::path &root, std::string_view method,
                      const std::string &path);

}  // namespace connector::api

// A database as an older host left it, for the tests of the migrations that bring it up to date.
#pragma once

#include <filesystem>
#include <string>

#include "TempDir.hpp"

namespace connector::test {

// The file `dir`/old.db at schema `version`: the host's first `version` migrations applied by
// hand (as that host did), then the SQL `rows`. Fails the test when a statement fails.
std::filesystem::path old_store(const TempDir &dir, int version, const std::string &rows = "");

}  // namespace connector::test

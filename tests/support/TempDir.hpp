// A fresh folder under the system's temporary directory, removed with everything in it when the
// object goes away.
#pragma once

#include <filesystem>
#include <string>

namespace connector::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  const std::filesystem::path &path() const { return path_; }
  std::filesystem::path operator/(const std::string &name) const { return path_ / name; }

  // Writes `content` to `name` inside the folder and returns the file's path.
  std::filesystem::path write(const std::string &name, const std::string &content) const;

 private:
  std::filesystem::path path_;
};

// Reads a whole file; empty when it cannot be read.
std::string read_file(const std::filesystem::path &path);

}  // namespace connector::test

// A small disk for the tests of what happens when the disk fills up: a tmpfs mounted over a
// folder (mounting needs root), and a ballast file that fills it to the last byte.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "TestHost.hpp"

namespace connector::test {

class SmallDisk {
 public:
  // Mounts a tmpfs of `size` (e.g. "4m") over `folder`, made first when missing. Whether that
  // worked is mounted(); the disk is unmounted (lazily) when this goes.
  SmallDisk(std::filesystem::path folder, const std::string &size);
  ~SmallDisk();
  SmallDisk(const SmallDisk &) = delete;
  SmallDisk &operator=(const SmallDisk &) = delete;

  bool mounted() const { return mounted_; }
  const std::string &error() const { return error_; }
  const std::filesystem::path &folder() const { return folder_; }

  // Writes a ballast file until not one more byte fits; empty() removes it.
  void fill() const;
  void empty() const;

 private:
  std::filesystem::path folder_;
  bool mounted_ = false;
  std::string error_;
};

// Moves the host's data folder onto a fresh small disk of `size`: the host is stopped, its data
// copied away, the disk mounted over the folder, the data copied back, and the host started
// again. Throws when the disk cannot be mounted.
std::unique_ptr<SmallDisk> move_data_to_small_disk(TestHost &host, const std::string &size);

}  // namespace connector::test

#include "SmallDisk.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace connector::test {

namespace fs = std::filesystem;

SmallDisk::SmallDisk(fs::path folder, const std::string &size) : folder_(std::move(folder)) {
  fs::create_directories(folder_);
  const std::string options = "size=" + size + ",mode=0700";
  mounted_ = ::mount("tmpfs", folder_.c_str(), "tmpfs", 0, options.c_str()) == 0;
  if (!mounted_) error_ = std::strerror(errno);
}

SmallDisk::~SmallDisk() {
  if (mounted_) ::umount2(folder_.c_str(), MNT_DETACH);
}

void SmallDisk::fill() const {
  std::FILE *file = std::fopen((folder_ / "ballast").c_str(), "wb");
  ASSERT_NE(file, nullptr);
  std::setvbuf(file, nullptr, _IONBF, 0);
  for (size_t chunk : {size_t{1} << 20, size_t{4096}, size_t{1}}) {
    const std::string zeros(chunk, '\0');
    while (std::fwrite(zeros.data(), 1, zeros.size(), file) == zeros.size()) {
    }
    std::clearerr(file);
  }
  std::fclose(file);
}

void SmallDisk::empty() const { fs::remove(folder_ / "ballast"); }

std::unique_ptr<SmallDisk> move_data_to_small_disk(TestHost &host, const std::string &size) {
  host.stop();
  const fs::path data = host.data_dir();
  const fs::path saved = host.dir() / "data-saved";
  fs::copy(data, saved, fs::copy_options::recursive);
  fs::remove_all(data);
  auto disk = std::make_unique<SmallDisk>(data, size);
  if (!disk->mounted()) {
    throw std::runtime_error("cannot mount a tmpfs on " + data.string() + ": " + disk->error());
  }
  fs::copy(saved, data, fs::copy_options::recursive);
  fs::remove_all(saved);
  host.start();
  return disk;
}

}  // namespace connector::test

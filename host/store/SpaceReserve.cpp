#include "store/SpaceReserve.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace connector::store {

SpaceReserve::SpaceReserve(std::filesystem::path folder, uint64_t reserve_bytes,
                           uint64_t resume_margin_bytes)
    : folder_(std::move(folder)),
      file_(folder_ / "space.reserve"),
      reserve_bytes_(reserve_bytes),
      resume_margin_bytes_(resume_margin_bytes) {}

bool SpaceReserve::hold() {
  const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  // Allocated blocks, not a sparse file: deleting it must give real space back.
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(reserve_bytes_));
  if (rc == EOPNOTSUPP || rc == EINVAL) {
    const std::string zeros(64 * 1024, '\0');
    rc = 0;
    for (uint64_t done = 0; done < reserve_bytes_ && rc == 0;) {
      const ssize_t n = ::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(done));
      if (n <= 0) rc = errno;
      else done += static_cast<uint64_t>(n);
    }
  }
  const bool held = rc == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!held) ::unlink(file_.c_str());
  return held;
}

void SpaceReserve::release() { ::unlink(file_.c_str()); }

uint64_t SpaceReserve::free_bytes() const {
  struct statvfs info {};
  if (::statvfs(folder_.c_str(), &info) != 0) return 0;
  return static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
}

bool SpaceReserve::room_to_resume(uint64_t extra_bytes) const {
  return free_bytes() >= reserve_bytes_ + resume_margin_bytes_ + extra_bytes;
}

}  // namespace connector::store

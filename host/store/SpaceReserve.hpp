// Room kept back on the data folder's disk for the writes that must still happen when it fills
// up: the account's status and integration log entry that say the disk is full. The host holds a
// small file of allocated blocks while there is space, releases it the moment a write fails for
// want of space, and takes it again before it resumes what it paused.
#pragma once

#include <cstdint>
#include <filesystem>

namespace connector::store {

class SpaceReserve {
 public:
  // `reserve_bytes` are held in <folder>/space.reserve; writing resumes once the disk has
  // `reserve_bytes + resume_margin_bytes` free.
  SpaceReserve(std::filesystem::path folder, uint64_t reserve_bytes,
               uint64_t resume_margin_bytes);

  // (Re)creates the reserve with its blocks allocated; false when the disk has no room for it.
  bool hold();

  // Deletes the reserve, giving its blocks to the writes that follow.
  void release();

  // Whether there is room again to write and to hold the reserve besides, with `extra_bytes`
  // more than the usual margin free.
  bool room_to_resume(uint64_t extra_bytes = 0) const;

  // Bytes an unprivileged writer may still use on the folder's disk (0 when unknown).
  uint64_t free_bytes() const;

 private:
  std::filesystem::path folder_;
  std::filesystem::path file_;
  uint64_t reserve_bytes_;
  uint64_t resume_margin_bytes_;
};

}  // namespace connector::store

#include "filesystem.h"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdint>

#include "fd.h"
#include "sys_error.h"

namespace bv::core {

namespace {

// BTRFS_IOC_SUBVOL_SYNC_WAIT is 6.13+, newer than Debian 12's uapi headers.
struct SubvolSyncWaitArgs {
  uint64_t subvolid;
  uint32_t mode;
  uint32_t count;
};
constexpr unsigned long kIocSubvolSyncWait = _IOW(BTRFS_IOCTL_MAGIC, 65, SubvolSyncWaitArgs);
constexpr uint32_t kSyncCount = 2;

Fd open_anything(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw_errno("open", path);
  return Fd(fd);
}

}  // namespace

void filesystem_sync_fd(int fd, const std::string& path) {
  if (::ioctl(fd, BTRFS_IOC_SYNC) < 0) throw_errno("BTRFS_IOC_SYNC", path);
}

void filesystem_sync(const std::string& path) {
  Fd fd = open_anything(path);
  filesystem_sync_fd(fd.get(), path);
}

void filesystem_wait_cleaner_fd(int fd, const std::string& path) {
  // Each commit wakes the cleaner thread; waiting on the kernel's queue alone
  // can sleep until the next periodic commit (30 s), so commit and poll.
  for (;;) {
    filesystem_sync_fd(fd, path);
    SubvolSyncWaitArgs count{0, kSyncCount, 0};
    if (::ioctl(fd, kIocSubvolSyncWait, &count) < 0) {
      if (errno == ENOTTY || errno == EINVAL) return;  // kernel before 6.13: the commit is all we can do
      throw_errno("BTRFS_IOC_SUBVOL_SYNC_WAIT", path);
    }
    if (count.count == 0) return;
    ::usleep(20 * 1000);
  }
}

void filesystem_wait_cleaner(const std::string& path) {
  Fd fd = open_anything(path);
  filesystem_wait_cleaner_fd(fd.get(), path);
}

}  // namespace bv::core

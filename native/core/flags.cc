#include "flags.h"

#include <linux/btrfs.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>

#include <vector>

#include "path.h"
#include "sys_error.h"

namespace bv::core {

namespace {

constexpr const char* kCompressionXattr = "btrfs.compression";

// FS_IOC_*FLAGS are declared with `long` but the kernel moves a 32-bit int.
int inode_flags(int fd, const std::string& path) {
  int flags = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) throw_errno("FS_IOC_GETFLAGS", path);
  return flags;
}

uint64_t subvol_flags(int fd, const std::string& path) {
  uint64_t flags = 0;
  if (::ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, &flags) < 0) throw_errno("BTRFS_IOC_SUBVOL_GETFLAGS", path);
  return flags;
}

}  // namespace

bool subvolume_get_readonly_fd(int fd, const std::string& path) {
  return (subvol_flags(fd, path) & BTRFS_SUBVOL_RDONLY) != 0;
}

bool subvolume_get_readonly(const std::string& path) {
  Fd fd = dir_open_entry(path);
  return subvolume_get_readonly_fd(fd.get(), path);
}

void subvolume_set_readonly_fd(int fd, bool readonly, const std::string& path) {
  uint64_t flags = subvol_flags(fd, path);
  uint64_t wanted = readonly ? (flags | BTRFS_SUBVOL_RDONLY) : (flags & ~uint64_t(BTRFS_SUBVOL_RDONLY));
  if (wanted == flags) return;  // the ioctl would commit a transaction for nothing
  if (::ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, &wanted) < 0) throw_errno("BTRFS_IOC_SUBVOL_SETFLAGS", path);
}

void subvolume_set_readonly(const std::string& path, bool readonly) {
  Fd fd = dir_open_entry(path);
  subvolume_set_readonly_fd(fd.get(), readonly, path);
}

bool subvolume_unprotect_fd(int fd, const std::string& path) {
  subvolume_require_root_fd(fd, "FS_IOC_SETFLAGS", path);
  const int protect = FS_IMMUTABLE_FL | FS_APPEND_FL;
  int flags = inode_flags(fd, path);
  if ((flags & protect) == 0) return false;
  subvolume_set_readonly_fd(fd, false, path);
  flags &= ~protect;
  if (::ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) throw_errno("FS_IOC_SETFLAGS", path);
  return true;
}

bool subvolume_unprotect(const std::string& path) {
  Fd fd = dir_open_entry(path);
  return subvolume_unprotect_fd(fd.get(), path);
}

bool inode_get_nocow_fd(int fd, const std::string& path) { return (inode_flags(fd, path) & FS_NOCOW_FL) != 0; }

bool inode_get_nocow(const std::string& path) {
  Fd fd = entry_open(path);
  return inode_get_nocow_fd(fd.get(), path);
}

void inode_set_nocow_fd(int fd, bool nocow, const std::string& path) {
  int flags = inode_flags(fd, path);
  int wanted = nocow ? (flags | FS_NOCOW_FL) : (flags & ~FS_NOCOW_FL);
  if (wanted == flags) return;
  if (::ioctl(fd, FS_IOC_SETFLAGS, &wanted) < 0) throw_errno("FS_IOC_SETFLAGS", path);
  if ((inode_flags(fd, path) & FS_NOCOW_FL) != (wanted & FS_NOCOW_FL)) {
    throw_error(EINVAL, "FS_IOC_SETFLAGS", path);  // non-empty file: ignored by the kernel
  }
}

void inode_set_nocow(const std::string& path, bool nocow) {
  Fd fd = entry_open(path);
  inode_set_nocow_fd(fd.get(), nocow, path);
}

std::optional<std::string> inode_get_compression_fd(int fd, const std::string& path) {
  std::vector<char> buf(64);
  ssize_t len = ::fgetxattr(fd, kCompressionXattr, buf.data(), buf.size());
  if (len < 0) {
    if (errno == ENODATA) return std::nullopt;
    throw_errno("fgetxattr", path);
  }
  return std::string(buf.data(), static_cast<size_t>(len));
}

std::optional<std::string> inode_get_compression(const std::string& path) {
  Fd fd = entry_open(path);
  return inode_get_compression_fd(fd.get(), path);
}

void inode_set_compression_fd(int fd, const std::optional<std::string>& value, const std::string& path) {
  if (!value) {
    if (::fremovexattr(fd, kCompressionXattr) < 0 && errno != ENODATA) throw_errno("fremovexattr", path);
    return;
  }
  if (::fsetxattr(fd, kCompressionXattr, value->data(), value->size(), 0) < 0) throw_errno("fsetxattr", path);
}

void inode_set_compression(const std::string& path, const std::optional<std::string>& value) {
  Fd fd = entry_open(path);
  inode_set_compression_fd(fd.get(), value, path);
}

}  // namespace bv::core

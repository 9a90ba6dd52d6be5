#include "open.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "sys_error.h"

namespace bv::core {

namespace {

constexpr size_t kNameMax = 255;

// O_NOATIME is refused (EPERM) on files we do not own without CAP_FOWNER:
// retry without it rather than fail.
int open_noatime(int dirfd, const char* path, int flags) {
  int fd = ::openat(dirfd, path, flags | O_NOATIME | O_CLOEXEC);
  if (fd < 0 && errno == EPERM) fd = ::openat(dirfd, path, flags | O_CLOEXEC);
  return fd;
}

}  // namespace

ParentAndName split_parent(const std::string& path) {
  size_t end = path.find_last_not_of('/');
  if (path.empty() || end == std::string::npos) throw_error(EINVAL, "open", path);
  size_t slash = path.rfind('/', end);
  std::string name = path.substr(slash == std::string::npos ? 0 : slash + 1,
                                 end - (slash == std::string::npos ? 0 : slash + 1) + 1);
  std::string parent;
  if (slash == std::string::npos) {
    parent = ".";
  } else {
    size_t parent_end = path.find_last_not_of('/', slash);
    parent = parent_end == std::string::npos ? "/" : path.substr(0, parent_end + 1);
  }
  if (name == "." || name == "..") throw_error(EINVAL, "open", path);
  if (name.size() > kNameMax) throw_error(ENAMETOOLONG, "open", path);
  return {parent, name};
}

Fd open_dir(const std::string& path) {
  int fd = open_noatime(AT_FDCWD, path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw_errno("open", path);
  return Fd(fd);
}

Fd open_dir_at(int dirfd, const std::string& name, const std::string& path_for_errors) {
  int fd = open_noatime(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (fd < 0) throw_errno("open", path_for_errors);
  return Fd(fd);
}

Fd open_any(const std::string& path) {
  int fd = open_noatime(AT_FDCWD, path.c_str(), O_RDONLY | O_NONBLOCK);
  if (fd < 0) throw_errno("open", path);
  return Fd(fd);
}

bool is_btrfs_fd(int fd, const std::string& path_for_errors) {
  struct statfs sfs;
  if (::fstatfs(fd, &sfs) < 0) throw_errno("fstatfs", path_for_errors);
  return static_cast<unsigned long>(sfs.f_type) == BTRFS_SUPER_MAGIC;
}

void require_subvolume_root(int fd, const char* syscall, const std::string& path) {
  if (!is_btrfs_fd(fd, path)) throw_error(ENOTTY, syscall, path);
  struct stat st;
  if (::fstat(fd, &st) < 0) throw_errno("fstat", path);
  if (!S_ISDIR(st.st_mode) || st.st_ino != 256) throw_error(EINVAL, syscall, path);
}

}  // namespace bv::core

#include "path.h"

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

ParentAndName path_open_parent(const std::string& path) {
  size_t end = path.find_last_not_of('/');
  if (path.empty()) throw_error(EINVAL, "open", path);
  if (end == std::string::npos) return {dir_open("/"), "."};  // "/" (or "//")
  size_t slash = path.rfind('/', end);
  size_t start = slash == std::string::npos ? 0 : slash + 1;
  std::string name = path.substr(start, end - start + 1);
  if (name == "." || name == "..") throw_error(EINVAL, "open", path);
  if (name.size() > kNameMax) throw_error(ENAMETOOLONG, "open", path);
  std::string parent;
  if (slash == std::string::npos) {
    parent = ".";
  } else {
    size_t parent_end = path.find_last_not_of('/', slash);
    parent = parent_end == std::string::npos ? "/" : path.substr(0, parent_end + 1);
  }
  return {dir_open(parent), std::move(name)};
}

Fd dir_open(const std::string& path) {
  int fd = open_noatime(AT_FDCWD, path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw_errno("open", path);
  return Fd(fd);
}

Fd dir_open_at(int dirfd, const std::string& name, const std::string& path_for_errors) {
  int fd = open_noatime(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (fd < 0) throw_errno("open", path_for_errors);
  return Fd(fd);
}

Fd entry_open_at(int dirfd, const std::string& name, const std::string& path_for_errors) {
  int fd = open_noatime(dirfd, name.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) throw_errno("open", path_for_errors);
  return Fd(fd);
}

Fd dir_open_entry(const std::string& path) {
  ParentAndName pn = path_open_parent(path);
  return dir_open_at(pn.parent.get(), pn.name, path);
}

Fd entry_open(const std::string& path) {
  ParentAndName pn = path_open_parent(path);
  return entry_open_at(pn.parent.get(), pn.name, path);
}

bool fs_is_btrfs_fd(int fd, const std::string& path_for_errors) {
  struct statfs sfs;
  if (::fstatfs(fd, &sfs) < 0) throw_errno("fstatfs", path_for_errors);
  return static_cast<unsigned long>(sfs.f_type) == BTRFS_SUPER_MAGIC;
}

void subvolume_require_root_fd(int fd, const char* syscall, const std::string& path) {
  if (!fs_is_btrfs_fd(fd, path)) throw_error(ENOTTY, syscall, path);
  struct stat st;
  if (::fstat(fd, &st) < 0) throw_errno("fstat", path);
  if (!S_ISDIR(st.st_mode) || st.st_ino != 256) throw_error(EINVAL, syscall, path);
}

Fd fd_dup(int fd, const std::string& path_for_errors) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) throw_errno("fcntl", path_for_errors);
  return Fd(copy);
}

std::string path_join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace bv::core

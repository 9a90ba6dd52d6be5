#include "beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "path.h"
#include "sys_error.h"

namespace bv::core {

namespace {

constexpr int kEagainRetries = 8;

// openat2 beneath @dirfd; EAGAIN (a rename raced a ".." check) is retried, and
// O_NOATIME is dropped when refused (EPERM: not our file and no CAP_FOWNER).
int openat2_beneath(int dirfd, const std::string& path, uint64_t flags, mode_t mode) {
  const char* p = path.empty() ? "." : path.c_str();
  for (int attempt = 0;; attempt++) {
    open_how how{};
    how.flags = flags | O_CLOEXEC;
    how.mode = (flags & O_CREAT) ? (mode & 07777) : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    int fd = static_cast<int>(::syscall(SYS_openat2, dirfd, p, &how, sizeof(how)));
    if (fd >= 0) return fd;
    if (errno == EPERM && (flags & O_NOATIME)) {
      flags &= ~static_cast<uint64_t>(O_NOATIME);
      continue;
    }
    if (errno == EAGAIN && attempt < kEagainRetries) continue;
    return -1;
  }
}

int reopen_noatime(int fd, int flags) {
  char proc[64];
  std::snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
  int out = ::open(proc, flags | O_NOATIME | O_CLOEXEC);
  if (out < 0 && errno == EPERM) out = ::open(proc, flags | O_CLOEXEC);
  return out;
}

struct timespec to_timespec(std::optional<TimeNs> ns) {
  struct timespec ts{};
  if (!ns) {
    ts.tv_nsec = UTIME_OMIT;
    return ts;
  }
  TimeNs sec = *ns / 1000000000;
  TimeNs rem = *ns % 1000000000;
  if (rem < 0) {
    rem += 1000000000;
    sec -= 1;
  }
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = static_cast<long>(rem);
  return ts;
}

}  // namespace

Fd entry_open_beneath_at(int dirfd, const std::string& path, BeneathOpen how, mode_t mode, const std::string& shown) {
  switch (how) {
    case BeneathOpen::directory: {
      int fd = openat2_beneath(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NOATIME, 0);
      if (fd < 0) throw_errno("openat2", shown);
      return Fd(fd);
    }
    case BeneathOpen::create: {
      int fd = openat2_beneath(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
      if (fd < 0) throw_errno("openat2", shown);
      return Fd(fd);
    }
    case BeneathOpen::read:
      break;
  }
  // O_PATH opens nothing (no FIFO wait, no device side effect) and gives the
  // symlink itself at the end of the path: look at what it is first.
  int pfd = openat2_beneath(dirfd, path, O_PATH | O_NOFOLLOW, 0);
  if (pfd < 0) throw_errno("openat2", shown);
  Fd entry(pfd);
  struct stat st;
  if (::fstat(entry.get(), &st) < 0) throw_errno("fstat", shown);
  if (S_ISDIR(st.st_mode)) throw_error(EISDIR, "openat2", shown);
  if (S_ISLNK(st.st_mode)) throw_error(ELOOP, "openat2", shown);
  if (!S_ISREG(st.st_mode)) throw_error(EINVAL, "openat2", shown);
  // The same inode, opened for reading (the magic link of an fd we hold).
  int fd = reopen_noatime(entry.get(), O_RDONLY);
  if (fd < 0) throw_errno("open", shown);
  return Fd(fd);
}

Fd entry_open_beneath(const std::string& dir, const std::string& path, BeneathOpen how, mode_t mode) {
  Fd root = dir_open(dir);
  std::string shown = path.empty() || path == "." ? dir : path_join(dir, path);
  return entry_open_beneath_at(root.get(), path, how, mode, shown);
}

std::string fd_describe(int fd, const std::string& path) {
  char proc[64];
  std::snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
  char buf[4096];
  ssize_t n = ::readlink(proc, buf, sizeof(buf));
  std::string dir = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "fd " + std::to_string(fd);
  return path.empty() || path == "." ? dir : path_join(dir, path);
}

void entry_set_times_at(int dirfd, const std::string& name, std::optional<TimeNs> atime,
                        std::optional<TimeNs> mtime, const std::string& shown) {
  struct timespec times[2] = {to_timespec(atime), to_timespec(mtime)};
  if (name.empty()) {
    if (::futimens(dirfd, times) < 0) throw_errno("utimensat", shown);
    return;
  }
  // One component only: nothing but @dirfd itself is resolved.
  if (name.find('/') != std::string::npos || name == "." || name == "..") throw_error(EINVAL, "utimensat", shown);
  if (::utimensat(dirfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("utimensat", shown);
}

void fd_set_times(int fd, std::optional<TimeNs> atime, std::optional<TimeNs> mtime, const std::string& shown) {
  entry_set_times_at(fd, "", atime, mtime, shown);
}

}  // namespace bv::core

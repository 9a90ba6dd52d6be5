#include "beneath.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>  // RENAME_NOREPLACE
#include <linux/openat2.h>
#include <stdio.h>  // renameat2
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "path.h"
#include "sys_error.h"

namespace bv::core {

namespace {

constexpr int kEagainRetries = 8;

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

Fd openat2_beneath(int dirfd, const std::string& path, uint64_t flags, mode_t mode) {
  const char* p = path.empty() ? "." : path.c_str();
  for (int attempt = 0;; attempt++) {
    open_how how{};
    how.flags = flags | O_CLOEXEC;
    how.mode = (flags & O_CREAT) ? (mode & 07777) : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    int fd = static_cast<int>(::syscall(SYS_openat2, dirfd, p, &how, sizeof(how)));
    if (fd >= 0) return Fd(fd);
    if (errno == EPERM && (flags & O_NOATIME)) {
      flags &= ~static_cast<uint64_t>(O_NOATIME);
      continue;
    }
    if (errno == EAGAIN && attempt < kEagainRetries) continue;
    return Fd();
  }
}

namespace {

// A regular file opened for reading beneath @dirfd, and its stat: looked at
// through O_PATH first (opens nothing: no FIFO wait, no device side effect,
// the symlink itself at the end of the path), then the same inode opened for
// reading through the magic link of the fd we hold.
Fd open_regular_beneath(int dirfd, const std::string& path, const std::string& shown, struct stat& st) {
  Fd entry = openat2_beneath(dirfd, path, O_PATH | O_NOFOLLOW);
  if (!entry) throw_errno("openat2", shown);
  if (::fstat(entry.get(), &st) < 0) throw_errno("fstat", shown);
  if (S_ISDIR(st.st_mode)) throw_error(EISDIR, "openat2", shown);
  if (S_ISLNK(st.st_mode)) throw_error(ELOOP, "openat2", shown);
  if (!S_ISREG(st.st_mode)) throw_error(EINVAL, "openat2", shown);
  int fd = reopen_noatime(entry.get(), O_RDONLY);
  if (fd < 0) throw_errno("open", shown);
  return Fd(fd);
}

}  // namespace

Fd entry_open_beneath_at(int dirfd, const std::string& path, BeneathOpen how, mode_t mode, const std::string& shown) {
  switch (how) {
    case BeneathOpen::directory: {
      Fd fd = openat2_beneath(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NOATIME);
      if (!fd) throw_errno("openat2", shown);
      return fd;
    }
    case BeneathOpen::create: {
      Fd fd = openat2_beneath(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
      if (!fd) throw_errno("openat2", shown);
      return fd;
    }
    case BeneathOpen::read:
      break;
  }
  struct stat st;
  return open_regular_beneath(dirfd, path, shown, st);
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

namespace {

bool one_component(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

// 8 random bytes, from a per-thread reserve refilled 64 names at a time (a
// batch of small files asked the kernel for randomness once per file).
void random_bytes(unsigned char (&bytes)[8]) {
  thread_local unsigned char reserve[512];
  thread_local size_t used = sizeof(reserve);
  if (used == sizeof(reserve)) {
    if (::getrandom(reserve, sizeof(reserve), GRND_NONBLOCK) == static_cast<ssize_t>(sizeof(reserve))) {
      used = 0;
    } else {
      static unsigned long counter = 0;
      unsigned long v = (static_cast<unsigned long>(::getpid()) << 32) ^ __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
      std::memcpy(bytes, &v, sizeof(bytes));
      return;
    }
  }
  std::memcpy(bytes, reserve + used, sizeof(bytes));
  used += sizeof(bytes);
}

std::string random_suffix() {
  unsigned char bytes[8];
  random_bytes(bytes);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

}  // namespace

namespace {

// @data written into @fd, then its owner, mode (after the owner: chown
// clears setuid) and mtime; nullptr, or the syscall that failed (errno set).
const char* write_file(int fd, std::string_view data, const FileMeta& meta) {
  for (size_t at = 0; at < data.size();) {
    ssize_t n = ::write(fd, data.data() + at, data.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return "write";
    at += static_cast<size_t>(n);
  }
  if (::fchown(fd, meta.uid, meta.gid) < 0) return "fchown";
  if (::fchmod(fd, meta.mode & 07777) < 0) return "fchmod";
  struct timespec times[2] = {to_timespec(std::nullopt), to_timespec(meta.mtime)};
  if (::futimens(fd, times) < 0) return "utimensat";
  return nullptr;
}

// An O_TMPFILE is given its name through its /proc/self/fd link (linkat
// with AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH): without /proc, the
// temporary name and rename of file_write_at().
bool proc_fd_available() {
  static const bool available = ::access("/proc/self/fd", X_OK) == 0;
  return available;
}

}  // namespace

std::optional<ino_t> file_create_at(int dirfd, const std::string& name, std::string_view data, const FileMeta& meta,
                                    const std::string& temp_prefix, const std::string& shown, bool want_ino) {
  if (!one_component(name) || temp_prefix.find('/') != std::string::npos) throw_error(EINVAL, "openat", shown);
  int fd = proc_fd_available() ? ::openat(dirfd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600) : -1;
  if (fd < 0) {
    // A filesystem or kernel without O_TMPFILE (or no /proc): the named way.
    if (!proc_fd_available() || errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
      return file_write_at(dirfd, name, data, meta, false, temp_prefix, shown, std::nullopt, false, want_ino);
    }
    throw_errno("openat", shown);
  }
  Fd file(fd);  // until linked, the inode has no name: closing it (on any failure) frees it
  if (const char* failed = write_file(fd, data, meta)) throw_errno(failed, shown);
  struct stat st{};
  if (want_ino && ::fstat(fd, &st) < 0) throw_errno("fstat", shown);
  char proc[64];
  std::snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
  // Only where nothing is (EEXIST otherwise), as renameat2(RENAME_NOREPLACE).
  if (::linkat(AT_FDCWD, proc, dirfd, name.c_str(), AT_SYMLINK_FOLLOW) < 0) throw_errno("linkat", shown);
  if (::close(file.release()) < 0) throw_errno("close", shown);
  return st.st_ino;
}

std::optional<ino_t> file_write_at(int dirfd, const std::string& name, std::string_view data, const FileMeta& meta,
                                   bool replace, const std::string& temp_prefix, const std::string& shown,
                                   const std::optional<Expected>& expect, bool durable, bool want_ino) {
  if (!one_component(name) || temp_prefix.find('/') != std::string::npos) throw_error(EINVAL, "openat", shown);
  std::string temp;
  int fd = -1;
  for (int attempt = 0; fd < 0; attempt++) {
    temp = temp_prefix + random_suffix();
    fd = ::openat(dirfd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && (errno != EEXIST || attempt >= 8)) throw_errno("openat", shown);
  }
  Fd file(fd);
  auto fail = [&](const char* syscall) {
    int err = errno;
    file.reset();
    ::unlinkat(dirfd, temp.c_str(), 0);
    throw_error(err, syscall, shown);
  };
  if (const char* failed = write_file(fd, data, meta)) fail(failed);
  struct stat st{};
  if (want_ino && ::fstat(fd, &st) < 0) fail("fstat");
  if (durable && ::fsync(fd) < 0) fail("fsync");
  if (::close(file.release()) < 0) {
    int err = errno;
    ::unlinkat(dirfd, temp.c_str(), 0);
    throw_error(err, "close", shown);
  }
  if (replace && expect) {
    // Last look before replacing: a write since the caller's look wins over ours.
    struct stat now;
    bool same = false;
    if (::fstatat(dirfd, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0) {
      TimeNs mtime = static_cast<TimeNs>(now.st_mtim.tv_sec) * 1000000000 + now.st_mtim.tv_nsec;
      same = static_cast<uint64_t>(now.st_ino) == expect->ino && static_cast<uint64_t>(now.st_size) == expect->size &&
             mtime == expect->mtime;
    } else if (errno != ENOENT) {
      int err = errno;
      ::unlinkat(dirfd, temp.c_str(), 0);
      throw_error(err, "fstatat", shown);
    }
    if (!same) {
      ::unlinkat(dirfd, temp.c_str(), 0);
      return std::nullopt;
    }
  }
  if (::renameat2(dirfd, temp.c_str(), dirfd, name.c_str(), replace ? 0 : RENAME_NOREPLACE) < 0) {
    int err = errno;
    ::unlinkat(dirfd, temp.c_str(), 0);
    throw_error(err, "renameat2", shown);
  }
  if (durable && ::fsync(dirfd) < 0 && errno != EINVAL) throw_errno("fsync", shown);
  return st.st_ino;
}

namespace {

EntryStat stat_of(const struct stat& st) {
  EntryStat e;
  e.mode = st.st_mode;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.size = static_cast<uint64_t>(st.st_size);
  e.dev = st.st_dev;
  e.ino = st.st_ino;
  e.nlink = st.st_nlink;
  e.mtime = static_cast<TimeNs>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  e.ctime = static_cast<TimeNs>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return e;
}

// Errors of an entry that went away or changed between getdents and fstatat/readlinkat.
bool entry_gone(int err) { return err == ENOENT || err == ENOTDIR || err == EINVAL; }

}  // namespace

DirListing dir_list_beneath_at(int dirfd, const std::string& path, const std::string& shown) {
  Fd dir = entry_open_beneath_at(dirfd, path, BeneathOpen::directory, 0, shown);
  DirListing out;
  struct stat st;
  if (::fstat(dir.get(), &st) < 0) throw_errno("fstat", shown);
  out.self = stat_of(st);
  // fdopendir owns the fd it is given: a duplicate, so that `dir` stays ours for fstatat.
  int copy = ::fcntl(dir.get(), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) throw_errno("fcntl", shown);
  DIR* stream = ::fdopendir(copy);
  if (stream == nullptr) {
    int err = errno;
    ::close(copy);
    throw_error(err, "getdents", shown);
  }
  struct Closer {
    DIR* d;
    ~Closer() { ::closedir(d); }
  } closer{stream};
  for (;;) {
    errno = 0;
    struct dirent* ent = ::readdir(stream);
    if (ent == nullptr) {
      if (errno != 0) throw_errno("getdents", shown);
      break;
    }
    std::string name(ent->d_name);
    if (name == "." || name == "..") continue;
    ListedEntry e;
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (entry_gone(errno)) continue;
      throw_errno("fstatat", path_join(shown, name));
    }
    e.stat = stat_of(st);
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = ::readlinkat(dir.get(), name.c_str(), target, sizeof(target));
      if (n < 0) {
        if (entry_gone(errno)) continue;
        throw_errno("readlinkat", path_join(shown, name));
      }
      e.target.assign(target, static_cast<size_t>(n));
    }
    e.name = std::move(name);
    out.entries.push_back(std::move(e));
  }
  return out;
}

FileRead file_read_beneath_at(int dirfd, const std::string& path, size_t max, const std::string& shown) {
  struct stat st;
  Fd file = open_regular_beneath(dirfd, path, shown, st);  // st: the inode opened, before reading
  FileRead out;
  out.stat = stat_of(st);
  // One byte more than its size, so that a file read whole is seen to end.
  const bool whole = st.st_size >= 0 && static_cast<uint64_t>(st.st_size) < max;
  size_t want = whole ? static_cast<size_t>(st.st_size) + 1 : max;
  out.data.resize(want);
  size_t got = 0;
  bool end = false;
  while (got < want) {
    ssize_t n = ::read(file.get(), &out.data[got], want - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read", shown);
    if (n == 0) {
      end = true;
      break;
    }
    got += static_cast<size_t>(n);
    // A regular file reads short only at its end: no second read to be told so (had it
    // grown meanwhile, its size after differs from what was read: not complete).
    if (whole && got < want) {
      end = true;
      break;
    }
  }
  out.data.resize(got);
  if (!end) {
    out.fd = file.release();
    return out;
  }
  struct stat after;
  if (::fstat(file.get(), &after) < 0) throw_errno("fstat", shown);
  EntryStat a = stat_of(after);
  out.eof = true;
  out.complete = a.mtime == out.stat.mtime && a.ctime == out.stat.ctime && a.size == got;
  return out;
}

}  // namespace bv::core

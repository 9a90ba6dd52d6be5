#include "extent_usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <memory>
#include <unordered_set>
#include <vector>

#include "fd.h"
#include "path.h"
#include "sys_error.h"

namespace bv::core {

namespace {

// Extents per FIEMAP call: 256 x 56 bytes.
constexpr uint32_t kExtentsPerCall = 256;

using Dir = std::unique_ptr<DIR, int (*)(DIR*)>;

// An entry gone or replaced meanwhile (a writable subvolume) is skipped, not an error.
bool vanished(int err) { return err == ENOENT || err == ELOOP || err == ENOTDIR || err == EXDEV; }

void add_file(int fd, const std::string& shown, ExtentUsage& usage) {
  std::unique_ptr<uint8_t[]> raw(new uint8_t[sizeof(fiemap) + kExtentsPerCall * sizeof(fiemap_extent)]);
  auto* map = reinterpret_cast<fiemap*>(raw.get());
  uint64_t start = 0;
  for (;;) {
    *map = fiemap{};
    map->fm_start = start;
    map->fm_length = FIEMAP_MAX_OFFSET - start;
    map->fm_extent_count = kExtentsPerCall;
    if (::ioctl(fd, FS_IOC_FIEMAP, map) < 0) throw_errno("FS_IOC_FIEMAP", shown);
    if (map->fm_mapped_extents == 0) return;
    for (uint32_t i = 0; i < map->fm_mapped_extents; i++) {
      const fiemap_extent& e = map->fm_extents[i];
      // Inline data lives in the metadata; delalloc has no extent yet.
      bool data = (e.fe_flags & (FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DELALLOC)) == 0;
      if (data) {
        usage.referenced += e.fe_length;
        if ((e.fe_flags & FIEMAP_EXTENT_SHARED) == 0) usage.exclusive += e.fe_length;
      }
      if (e.fe_flags & FIEMAP_EXTENT_LAST) return;
      start = e.fe_logical + e.fe_length;
    }
  }
}

struct Walk {
  dev_t dev;
  std::unordered_set<ino_t> linked;  // hard-linked files already counted
  ExtentUsage usage;
};

// A directory being walked: its fd (to open its subdirectories from) and
// the names of the subdirectories not walked yet.
struct Frame {
  Fd fd;
  std::string shown;
  std::vector<std::string> subdirs;
};

// Opens entry @name of @dfd; an invalid Fd when it is gone or not of this subvolume.
Fd open_entry(int dfd, const std::string& name, bool dir, const std::string& shown, const Walk& walk, struct stat& st) {
  int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (dir ? O_DIRECTORY : 0);
  Fd fd(::openat(dfd, name.c_str(), flags));
  if (!fd) {
    if (vanished(errno)) return Fd();
    throw_errno("openat", shown);
  }
  if (::fstat(fd.get(), &st) < 0) throw_errno("fstat", shown);
  if (st.st_dev != walk.dev) return Fd();  // another subvolume or a mount: not this one's
  return fd;
}

// Counts the regular files of @frame's directory and lists its subdirectories.
void scan(Frame& frame, Walk& walk) {
  Fd copy = fd_dup(frame.fd.get(), frame.shown);  // the DIR owns the fd it is given
  Dir dir(::fdopendir(copy.get()), ::closedir);
  if (!dir) throw_errno("fdopendir", frame.shown);
  copy.release();
  for (;;) {
    errno = 0;
    dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) {
      if (errno != 0) throw_errno("getdents", frame.shown);
      return;
    }
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    unsigned char type = entry->d_type;
    if (type == DT_DIR) {
      frame.subdirs.push_back(std::move(name));
      continue;
    }
    if (type != DT_REG && type != DT_UNKNOWN) continue;  // symlinks, devices, FIFOs: no extents
    std::string shown = frame.shown + "/" + name;
    struct stat st;
    Fd fd = open_entry(frame.fd.get(), name, false, shown, walk, st);
    if (!fd) continue;
    if (S_ISDIR(st.st_mode)) {
      frame.subdirs.push_back(std::move(name));
    } else if (S_ISREG(st.st_mode)) {
      if (st.st_nlink > 1 && !walk.linked.insert(st.st_ino).second) continue;
      walk.usage.files++;
      add_file(fd.get(), shown, walk.usage);
    }
  }
}

}  // namespace

ExtentUsage subvolume_extent_usage(const std::string& path) {
  Fd root = dir_open_entry(path);
  subvolume_require_root_fd(root.get(), "FS_IOC_FIEMAP", path);
  struct stat st;
  if (::fstat(root.get(), &st) < 0) throw_errno("fstat", path);
  Walk walk{st.st_dev, {}, {}};
  // Depth first: one open directory per level, whatever the tree's width.
  std::vector<Frame> stack;
  stack.push_back(Frame{std::move(root), path, {}});
  scan(stack.back(), walk);
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (top.subdirs.empty()) {
      stack.pop_back();
      continue;
    }
    std::string name = std::move(top.subdirs.back());
    top.subdirs.pop_back();
    std::string shown = top.shown + "/" + name;
    Fd fd = open_entry(top.fd.get(), name, true, shown, walk, st);
    if (!fd) continue;
    stack.push_back(Frame{std::move(fd), std::move(shown), {}});
    scan(stack.back(), walk);
  }
  return walk.usage;
}

}  // namespace bv::core

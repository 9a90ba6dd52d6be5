#include "subvolume.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "flags.h"
#include "open.h"
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

template <typename Args>
void copy_name(Args& args, const std::string& name) {
  // split_parent() already bounded the name to 255 bytes; the buffers are larger.
  std::memcpy(args.name, name.data(), name.size());
  args.name[name.size()] = '\0';
}

std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

SubvolInfo info_fd(int fd, const std::string& path) {
  btrfs_ioctl_get_subvol_info_args args{};
  // Returns 1, not 0, on success for everything but the top level.
  if (::ioctl(fd, BTRFS_IOC_GET_SUBVOL_INFO, &args) < 0) {
    throw_errno("BTRFS_IOC_GET_SUBVOL_INFO", path);
  }
  SubvolInfo info;
  info.id = args.treeid;
  info.parent_id = args.parent_id;
  info.dir_id = args.dirid;
  info.generation = args.generation;
  info.flags = args.flags;
  std::memcpy(info.uuid, args.uuid, 16);
  std::memcpy(info.parent_uuid, args.parent_uuid, 16);
  std::memcpy(info.received_uuid, args.received_uuid, 16);
  info.ctransid = args.ctransid;
  info.otransid = args.otransid;
  info.stransid = args.stransid;
  info.rtransid = args.rtransid;
  info.ctime = {args.ctime.sec, args.ctime.nsec};
  info.otime = {args.otime.sec, args.otime.nsec};
  info.stime = {args.stime.sec, args.stime.nsec};
  info.rtime = {args.rtime.sec, args.rtime.nsec};
  return info;
}

void destroy_at(int parent_fd, const std::string& name, const std::string& path) {
  btrfs_ioctl_vol_args args{};
  copy_name(args, name);
  if (::ioctl(parent_fd, BTRFS_IOC_SNAP_DESTROY, &args) < 0) {
    throw_errno("BTRFS_IOC_SNAP_DESTROY", path);
  }
}

struct ChildRef {
  uint64_t treeid;
  uint64_t dirid;
};

// The subvolumes whose parent is the subvolume of @fd (unprivileged, 4.18+).
std::vector<ChildRef> child_refs(int fd, const std::string& path) {
  std::vector<ChildRef> refs;
  auto args = std::make_unique<btrfs_ioctl_get_subvol_rootref_args>();
  std::memset(args.get(), 0, sizeof(*args));
  for (;;) {
    int ret = ::ioctl(fd, BTRFS_IOC_GET_SUBVOL_ROOTREF, args.get());
    bool more = ret < 0 && errno == EOVERFLOW;  // buffer full: call again
    if (ret < 0 && !more) throw_errno("BTRFS_IOC_GET_SUBVOL_ROOTREF", path);
    for (int i = 0; i < args->num_items; i++) {
      refs.push_back({args->rootref[i].treeid, args->rootref[i].dirid});
    }
    if (!more) break;
    args->min_treeid = refs.back().treeid + 1;  // the kernel resumes from here
  }
  return refs;
}

// Post-order: every nested subvolume of the subvolume at @fd, deepest first.
void delete_children(int fd, const std::string& path) {
  for (const ChildRef& ref : child_refs(fd, path)) {
    btrfs_ioctl_ino_lookup_user_args lookup{};
    lookup.dirid = ref.dirid;
    lookup.treeid = ref.treeid;
    if (::ioctl(fd, BTRFS_IOC_INO_LOOKUP_USER, &lookup) < 0) {
      throw_errno("BTRFS_IOC_INO_LOOKUP_USER", path);
    }
    std::string rel(lookup.path);  // relative to fd, ends with '/' unless empty
    std::string name(lookup.name);
    std::string child_path = join(path, rel + name);
    Fd parent = rel.empty() ? Fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)) : open_dir_at(fd, rel, join(path, rel));
    if (!parent) throw_errno("fcntl", path);
    {
      Fd child = open_dir_at(parent.get(), name, child_path);
      delete_children(child.get(), child_path);
    }
    destroy_at(parent.get(), name, child_path);
  }
}

}  // namespace

bool is_subvolume(const std::string& path) {
  struct statfs sfs;
  if (::statfs(path.c_str(), &sfs) < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw_errno("statfs", path);
  }
  if (static_cast<unsigned long>(sfs.f_type) != BTRFS_SUPER_MAGIC) return false;
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw_errno("stat", path);
  }
  return S_ISDIR(st.st_mode) && st.st_ino == 256;
}

void subvolume_create(const std::string& path, bool nocow) {
  ParentAndName pn = split_parent(path);
  Fd parent = open_dir(pn.parent);
  btrfs_ioctl_vol_args_v2 args{};
  copy_name(args, pn.name);
  if (::ioctl(parent.get(), BTRFS_IOC_SUBVOL_CREATE_V2, &args) < 0) {
    throw_errno("BTRFS_IOC_SUBVOL_CREATE_V2", path);
  }
  if (!nocow) return;
  try {
    Fd root = open_dir_at(parent.get(), pn.name, path);
    set_nocow_fd(root.get(), true, path);
  } catch (...) {
    // Never leave a COW volume behind when NOCOW was asked for. The subvolume
    // is empty, so rmdir removes it without CAP_SYS_ADMIN.
    int saved = errno;
    ::unlinkat(parent.get(), pn.name.c_str(), AT_REMOVEDIR);
    errno = saved;
    throw;
  }
}

void snapshot_create(const std::string& source, const std::string& dest, bool readonly) {
  Fd src = open_dir(source);
  ParentAndName pn = split_parent(dest);
  Fd parent = open_dir(pn.parent);
  btrfs_ioctl_vol_args_v2 args{};
  args.fd = src.get();
  args.flags = readonly ? BTRFS_SUBVOL_RDONLY : 0;
  copy_name(args, pn.name);
  if (::ioctl(parent.get(), BTRFS_IOC_SNAP_CREATE_V2, &args) < 0) {
    throw_errno("BTRFS_IOC_SNAP_CREATE_V2", source, dest);
  }
}

void subvolume_delete(const std::string& path, bool recursive) {
  ParentAndName pn = split_parent(path);
  Fd parent = open_dir(pn.parent);
  if (recursive) {
    Fd victim = open_dir_at(parent.get(), pn.name, path);
    require_subvolume_root(victim.get(), "BTRFS_IOC_SNAP_DESTROY", path);
    delete_children(victim.get(), path);
  }
  destroy_at(parent.get(), pn.name, path);
}

SubvolInfo subvolume_info(const std::string& path) {
  Fd fd = open_dir(path);
  require_subvolume_root(fd.get(), "BTRFS_IOC_GET_SUBVOL_INFO", path);
  return info_fd(fd.get(), path);
}

std::vector<ListedSubvol> subvolume_list(const std::string& dir) {
  Fd dfd = open_dir(dir);
  if (!is_btrfs_fd(dfd.get(), dir)) throw_error(ENOTTY, "BTRFS_IOC_GET_SUBVOL_INFO", dir);
  struct stat dst;
  if (::fstat(dfd.get(), &dst) < 0) throw_errno("fstat", dir);
  const uint64_t dir_tree = info_fd(dfd.get(), dir).id;

  int scan_fd = ::fcntl(dfd.get(), F_DUPFD_CLOEXEC, 0);
  if (scan_fd < 0) throw_errno("fcntl", dir);
  std::unique_ptr<DIR, int (*)(DIR*)> scan(::fdopendir(scan_fd), ::closedir);
  if (!scan) {
    int saved = errno;
    ::close(scan_fd);
    throw_error(saved, "fdopendir", dir);
  }

  std::vector<ListedSubvol> out;
  for (;;) {
    errno = 0;
    struct dirent* entry = ::readdir(scan.get());
    if (entry == nullptr) {
      if (errno != 0) throw_errno("readdir", dir);
      break;
    }
    if (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN) continue;
    std::string name(entry->d_name);
    if (name == "." || name == "..") continue;
    int cfd = ::openat(dfd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cfd < 0) {
      // Gone since readdir, or not a directory after all: not ours to report.
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) continue;
      throw_errno("open", join(dir, name));
    }
    Fd child(cfd);
    SubvolInfo info = info_fd(child.get(), join(dir, name));
    // A plain directory reports the subvolume that holds it, i.e. dir's own;
    // a subvolume root reports itself with dir as its place in the parent.
    if (info.id == dir_tree || info.parent_id != dir_tree || info.dir_id != dst.st_ino) continue;
    out.push_back({std::move(name), info});
  }
  std::sort(out.begin(), out.end(),
            [](const ListedSubvol& a, const ListedSubvol& b) { return a.name < b.name; });
  return out;
}

void wait_for_cleaner(const std::string& path) {
  Fd fd = open_dir(path);
  // Each commit wakes the cleaner thread; waiting on the kernel's queue alone
  // can sleep until the next periodic commit (30 s), so commit and poll.
  for (;;) {
    if (::ioctl(fd.get(), BTRFS_IOC_SYNC) < 0) throw_errno("BTRFS_IOC_SYNC", path);
    SubvolSyncWaitArgs count{0, kSyncCount, 0};
    if (::ioctl(fd.get(), kIocSubvolSyncWait, &count) < 0) {
      if (errno == ENOTTY || errno == EINVAL) return;  // kernel before 6.13: the commit is all we can do
      throw_errno("BTRFS_IOC_SUBVOL_SYNC_WAIT", path);
    }
    if (count.count == 0) return;
    ::usleep(20 * 1000);
  }
}

}  // namespace bv::core

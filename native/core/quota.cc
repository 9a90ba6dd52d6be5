#include "quota.h"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <functional>
#include <map>

#include "fd.h"
#include "path.h"
#include "subvolume.h"
#include "sys_error.h"
#include "tree_search.h"

namespace bv::core {

namespace {

// Linux 6.7+ (simple quotas), newer than Debian 12's uapi headers.
constexpr uint64_t kQuotaCtlEnableSimple = 4;
constexpr uint64_t kStatusFlagSimpleMode = 1ULL << 3;
// QGROUP_LIMIT: this max_rfer clears the limit (the kernel's CLEAR_VALUE).
constexpr uint64_t kClearLimit = UINT64_MAX;

// Quota tree items (btrfs_tree.h), every one with objectid 0. The status:
// version, generation, flags, rescan, and enable_gen with SIMPLE_MODE only.
constexpr uint32_t kStatusLen = 32, kStatusSimpleLen = 40;
constexpr uint32_t kInfoLen = 40;   // generation, rfer, rfer_cmpr, excl, excl_cmpr
constexpr uint32_t kLimitLen = 40;  // flags, max_rfer, max_excl, rsv_rfer, rsv_excl

Fd open_anything(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw_errno("open", path);
  return Fd(fd);
}

// Searches the quota tree; a filesystem without one (quotas off) is ENOTCONN,
// as the kernel's own qgroup ioctls say it.
void quota_search(int fd, uint32_t type, uint64_t min_offset, uint64_t max_offset, const std::string& path,
                  const std::function<bool(const TreeItem&)>& visit) {
  TreeKeyRange range{BTRFS_QUOTA_TREE_OBJECTID, 0, 0, type, type, min_offset, max_offset};
  try {
    tree_search(fd, range, path, visit);
  } catch (const SysError& e) {
    if (e.err == ENOENT && e.syscall == "BTRFS_IOC_TREE_SEARCH_V2") throw_error(ENOTCONN, "BTRFS_IOC_TREE_SEARCH_V2", path);
    throw;
  }
}

void read_info(const TreeItem& item, Qgroup& q) {
  if (item.len < kInfoLen) return;
  q.generation = le64(item.data);
  q.referenced = le64(item.data + 8);
  q.referenced_compressed = le64(item.data + 16);
  q.exclusive = le64(item.data + 24);
  q.exclusive_compressed = le64(item.data + 32);
}

void read_limit(const TreeItem& item, Qgroup& q) {
  if (item.len < kLimitLen) return;
  q.limit_flags = le64(item.data);
  q.max_referenced = le64(item.data + 8);
  q.max_exclusive = le64(item.data + 16);
}

// The qgroups in [min_id, max_id], by id: their INFO items, then their LIMIT items.
std::map<uint64_t, Qgroup> qgroups_between(int fd, uint64_t min_id, uint64_t max_id, const std::string& path) {
  std::map<uint64_t, Qgroup> found;
  quota_search(fd, BTRFS_QGROUP_INFO_KEY, min_id, max_id, path, [&](const TreeItem& item) {
    Qgroup& q = found[item.offset];
    q.id = item.offset;
    read_info(item, q);
    return true;
  });
  quota_search(fd, BTRFS_QGROUP_LIMIT_KEY, min_id, max_id, path, [&](const TreeItem& item) {
    auto it = found.find(item.offset);
    if (it != found.end()) read_limit(item, it->second);
    return true;
  });
  return found;
}

}  // namespace

QuotaStatus quota_status_fd(int fd, const std::string& path) {
  QuotaStatus status;
  TreeKeyRange range{BTRFS_QUOTA_TREE_OBJECTID, 0, 0, BTRFS_QGROUP_STATUS_KEY, BTRFS_QGROUP_STATUS_KEY, 0, 0};
  try {
    tree_search(fd, range, path, [&](const TreeItem& item) {
      if (item.len < kStatusLen) return false;
      status.generation = le64(item.data + 8);
      status.flags = le64(item.data + 16);
      if ((status.flags & BTRFS_QGROUP_STATUS_FLAG_ON) == 0) return false;
      bool simple = (status.flags & kStatusFlagSimpleMode) != 0;
      status.mode = simple ? QuotaMode::Simple : QuotaMode::Qgroup;
      if (simple && item.len >= kStatusSimpleLen) status.enable_gen = le64(item.data + 32);
      status.inconsistent = (status.flags & BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT) != 0;
      status.rescanning = (status.flags & BTRFS_QGROUP_STATUS_FLAG_RESCAN) != 0;
      return false;
    });
  } catch (const SysError& e) {
    // No quota tree: quotas were never on, or were turned off.
    if (e.err == ENOENT && e.syscall == "BTRFS_IOC_TREE_SEARCH_V2") return QuotaStatus{};
    throw;
  }
  return status;
}

QuotaStatus quota_status(const std::string& path) {
  Fd fd = open_anything(path);
  if (!fs_is_btrfs_fd(fd.get(), path)) throw_error(ENOTTY, "BTRFS_IOC_TREE_SEARCH_V2", path);
  return quota_status_fd(fd.get(), path);
}

QuotaStatus quota_enable(const std::string& path, QuotaMode mode) {
  if (mode == QuotaMode::Off) throw_error(EINVAL, "BTRFS_IOC_QUOTA_CTL", path);
  Fd fd = open_anything(path);
  if (!fs_is_btrfs_fd(fd.get(), path)) throw_error(ENOTTY, "BTRFS_IOC_QUOTA_CTL", path);
  QuotaStatus before = quota_status_fd(fd.get(), path);
  if (before.mode != QuotaMode::Off) return before;
  btrfs_ioctl_quota_ctl_args args{};
  args.cmd = mode == QuotaMode::Simple ? kQuotaCtlEnableSimple : BTRFS_QUOTA_CTL_ENABLE;
  if (::ioctl(fd.get(), BTRFS_IOC_QUOTA_CTL, &args) < 0) throw_errno("BTRFS_IOC_QUOTA_CTL", path);
  return quota_status_fd(fd.get(), path);
}

std::optional<Qgroup> qgroup_of_id(int fd, uint64_t id, const std::string& path) {
  auto found = qgroups_between(fd, id, id, path);
  auto it = found.find(id);
  if (it == found.end()) return std::nullopt;
  return it->second;
}

std::optional<Qgroup> qgroup_of(const std::string& path) {
  Fd fd = dir_open_entry(path);
  subvolume_require_root_fd(fd.get(), "BTRFS_IOC_TREE_SEARCH_V2", path);
  return qgroup_of_id(fd.get(), subvolume_id_fd(fd.get(), path), path);
}

std::vector<std::optional<Qgroup>> qgroups_by_id(const std::string& path, const std::vector<uint64_t>& ids) {
  std::vector<std::optional<Qgroup>> out(ids.size());
  if (ids.empty()) return out;
  Fd fd = open_anything(path);
  if (!fs_is_btrfs_fd(fd.get(), path)) throw_error(ENOTTY, "BTRFS_IOC_TREE_SEARCH_V2", path);
  auto [lo, hi] = std::minmax_element(ids.begin(), ids.end());
  // One range: the quota tree holds two items per qgroup, and the ids of one
  // volume's snapshots are close together (a few thousand items at most).
  auto found = qgroups_between(fd.get(), *lo, *hi, path);
  for (size_t i = 0; i < ids.size(); i++) {
    auto it = found.find(ids[i]);
    if (it != found.end()) out[i] = it->second;
  }
  return out;
}

void qgroup_set_limit_by_id(int fd, uint64_t id, std::optional<uint64_t> max_referenced, const std::string& path) {
  btrfs_ioctl_qgroup_limit_args args{};
  args.qgroupid = id;  // level 0: the subvolume id
  args.lim.flags = BTRFS_QGROUP_LIMIT_MAX_RFER;
  args.lim.max_rfer = max_referenced ? *max_referenced : kClearLimit;
  if (::ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, &args) < 0) throw_errno("BTRFS_IOC_QGROUP_LIMIT", path);
}

void qgroup_set_limit(const std::string& path, std::optional<uint64_t> max_referenced) {
  ParentAndName pn = path_open_parent(path);
  Fd fd = dir_open_at(pn.parent.get(), pn.name, path);
  subvolume_require_root_fd(fd.get(), "BTRFS_IOC_QGROUP_LIMIT", path);
  // By the id of the subvolume opened, on its parent directory (see qgroup_set_limit_by_id).
  qgroup_set_limit_by_id(pn.parent.get(), subvolume_id_fd(fd.get(), path), max_referenced, path);
}

}  // namespace bv::core

#include "subvolume.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "flags.h"
#include "path.h"
#include "quota.h"
#include "sys_error.h"
#include "tree_search.h"

namespace bv::core {

namespace {

// A recursive delete walks again when a subvolume appeared meanwhile; a
// content that keeps creating them must not keep us busy forever.
constexpr int kDeleteAttempts = 8;

template <typename Args>
void copy_name(Args& args, const std::string& name) {
  // path_open_parent() bounded the name to 255 bytes; the buffers are larger.
  std::memcpy(args.name, name.data(), name.size());
  args.name[name.size()] = '\0';
}

void destroy_by_name(int parent_fd, const std::string& name, const std::string& path) {
  btrfs_ioctl_vol_args args{};
  copy_name(args, name);
  if (::ioctl(parent_fd, BTRFS_IOC_SNAP_DESTROY, &args) < 0) throw_errno("BTRFS_IOC_SNAP_DESTROY", path);
}

// By id, the kernel finds the subvolume itself: no name or path is involved.
// Returns false when it is already gone.
bool destroy_by_id(int any_fd, uint64_t id, const std::string& path) {
  btrfs_ioctl_vol_args_v2 args{};
  args.flags = BTRFS_SUBVOL_SPEC_BY_ID;
  args.subvolid = id;
  if (::ioctl(any_fd, BTRFS_IOC_SNAP_DESTROY_V2, &args) < 0) {
    if (errno == ENOENT) return false;
    throw_errno("BTRFS_IOC_SNAP_DESTROY_V2", path);
  }
  return true;
}

// Asks for @limit in the create/snapshot ioctl itself (ignored by the kernel when quotas are off).
void with_limit(btrfs_ioctl_vol_args_v2& args, btrfs_qgroup_inherit& inherit, NewLimit limit) {
  if (limit.kind != NewLimit::Kind::Bytes) return;
  inherit.flags = BTRFS_QGROUP_INHERIT_SET_LIMITS;
  inherit.lim.flags = BTRFS_QGROUP_LIMIT_MAX_RFER;
  inherit.lim.max_rfer = limit.bytes;
  args.flags |= BTRFS_SUBVOL_QGROUP_INHERIT;
  args.size = sizeof(inherit);
  args.qgroup_inherit = &inherit;
}

// The limit given in the create ioctl is in force at once, but its item in
// the quota tree is written at the next commit (a create does not commit):
// written now, so that it reads back at once. Nothing to do with quotas off.
void write_limit_item(int parent_fd, uint64_t id, uint64_t bytes, const std::string& path) {
  try {
    qgroup_set_limit_by_id(parent_fd, id, bytes, path);
  } catch (const SysError& e) {
    if (e.err != ENOTCONN) throw;
  }
}

// Under full qgroups a snapshot gets its source's limit over the one asked:
// set the one asked (none included). Nothing to do with quotas off.
void settle_limit(int parent_fd, const std::string& name, NewLimit limit, const std::string& path) {
  Fd made = dir_open_at(parent_fd, name, path);
  uint64_t id = subvolume_id_fd(made.get(), path);
  std::optional<Qgroup> q;
  try {
    q = qgroup_of_id(parent_fd, id, path);
  } catch (const SysError& e) {
    if (e.err == ENOTCONN) return;  // quotas off
    throw;
  }
  if (!q) return;
  bool has = (q->limit_flags & BTRFS_QGROUP_LIMIT_MAX_RFER) != 0;
  std::optional<uint64_t> wanted;
  if (limit.kind == NewLimit::Kind::Bytes) wanted = limit.bytes;
  if (has == wanted.has_value() && (!has || q->max_referenced == *wanted)) return;
  qgroup_set_limit_by_id(parent_fd, id, wanted, path);
}

struct Tree {
  std::map<uint64_t, std::vector<uint64_t>> children;  // parent id -> child ids
  std::vector<uint64_t> preorder;                      // every descendant, parents first
};

// Every subvolume below @root_id, from the root tree's ROOT_REF items.
Tree descendants(int fd, uint64_t root_id, const std::string& path) {
  Tree tree;
  std::vector<uint64_t> stack{root_id};
  while (!stack.empty()) {
    uint64_t id = stack.back();
    stack.pop_back();
    for (const RootRef& ref : root_refs_of(fd, id, path)) {
      // A ROOT_REF can outlive its subvolume briefly; only live ones count.
      auto item = root_item_of(fd, ref.child_id, path);
      if (!item || item->refs == 0) continue;
      tree.children[id].push_back(ref.child_id);
      tree.preorder.push_back(ref.child_id);
      stack.push_back(ref.child_id);
    }
  }
  return tree;
}

bool is_readonly_id(int fd, uint64_t id, const std::string& path) {
  auto item = root_item_of(fd, id, path);
  return item && (item->flags & BTRFS_ROOT_SUBVOL_RDONLY) != 0;
}

// The path of directory @dir_id inside subvolume @tree_id (INO_LOOKUP, root only), for messages.
std::string dir_path_in(int fd, uint64_t tree_id, uint64_t dir_id) {
  btrfs_ioctl_ino_lookup_args args{};
  args.treeid = tree_id;
  args.objectid = dir_id;
  if (::ioctl(fd, BTRFS_IOC_INO_LOOKUP, &args) < 0) return "?/";
  return std::string(args.name);  // "" for the root, else ends with '/'
}

// Deletes everything below @victim_id; @victim_fd is its root (to clear its
// own read-only flag), @fs_fd a directory outside it to issue ioctls on.
void delete_descendants(int fs_fd, int victim_fd, uint64_t victim_id, const std::string& path) {
  Tree tree = descendants(fs_fd, victim_id, path);
  if (tree.preorder.empty()) return;
  // A child's directory entry lives in its parent's tree: a read-only parent
  // (EROFS) must become writable before its children can go.
  for (const auto& [parent, kids] : tree.children) {
    if (kids.empty() || !is_readonly_id(fs_fd, parent, path)) continue;
    if (parent == victim_id) {
      subvolume_set_readonly_fd(victim_fd, false, path);
    } else {
      Fd nested = subvolume_open_by_id(fs_fd, parent, path);
      subvolume_set_readonly_fd(nested.get(), false, path);
    }
  }
  for (auto it = tree.preorder.rbegin(); it != tree.preorder.rend(); ++it) {
    // Deepest first. A subvolume that moved since the walk is still below the
    // victim (content can only rename within its own mount), but check
    // anyway that it is where the walk saw it before destroying it.
    uint64_t id = *it;
    auto backref = root_backref_of(fs_fd, id, path);
    if (!backref) continue;  // gone already
    bool under_victim = false;
    for (uint64_t up = backref->parent_id, hops = 0; hops < 4096; hops++) {
      if (up == victim_id) {
        under_victim = true;
        break;
      }
      auto next = root_backref_of(fs_fd, up, path);
      if (!next) break;
      up = next->parent_id;
    }
    if (!under_victim) throw_error(EXDEV, "BTRFS_IOC_SNAP_DESTROY_V2", path);
    destroy_by_id(fs_fd, id, path);
  }
}

SubvolInfo info_from_args(const btrfs_ioctl_get_subvol_info_args& args) {
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

// The generation of inode 256 of subvolume @id (its INODE_ITEM), for file handles.
uint32_t root_dir_generation(int fd, uint64_t id, const std::string& path) {
  uint32_t gen = 0;
  TreeKeyRange range{id, BTRFS_FIRST_FREE_OBJECTID, BTRFS_FIRST_FREE_OBJECTID, BTRFS_INODE_ITEM_KEY,
                     BTRFS_INODE_ITEM_KEY, 0, 0};
  tree_search(fd, range, path, [&](const TreeItem& item) {
    if (item.len >= 8) {
      uint64_t g = 0;
      for (int i = 7; i >= 0; i--) g = (g << 8) | item.data[i];
      gen = static_cast<uint32_t>(g);
    }
    return false;
  });
  return gen;
}

bool has_prefix(const std::string& name, const std::string& prefix) {
  return name.compare(0, prefix.size(), prefix) == 0;
}

// The directory being listed: the subvolume holding it and its inode.
struct ListedDir {
  uint64_t tree;
  uint64_t ino;
};

SubvolInfo info_from_root(const RootRef& ref, const RootItemInfo& item) {
  SubvolInfo info;
  info.id = ref.child_id;
  info.parent_id = ref.parent_id;
  info.dir_id = ref.dir_id;
  info.generation = item.generation;
  info.flags = item.flags;
  std::memcpy(info.uuid, item.uuid.data(), 16);
  std::memcpy(info.parent_uuid, item.parent_uuid.data(), 16);
  std::memcpy(info.received_uuid, item.received_uuid.data(), 16);
  info.ctransid = item.ctransid;
  info.otransid = item.otransid;
  info.stransid = item.stransid;
  info.rtransid = item.rtransid;
  info.ctime = {item.ctime_sec, item.ctime_nsec};
  info.otime = {item.otime_sec, item.otime_nsec};
  info.stime = {item.stime_sec, item.stime_nsec};
  info.rtime = {item.rtime_sec, item.rtime_nsec};
  return info;
}

// From the root tree (CAP_SYS_ADMIN): where the subvolumes of @where.tree
// sit (ROOT_REF: directory and name, the name being the entry's in that
// directory, renames included), then what they are (ROOT_ITEM), in batches.
// Sorted by name on the way: each entry is written once, at its place.
std::vector<ListedSubvol> list_privileged(int dirfd, const ListedDir& where, const ListQuery& query,
                                         const std::string& dir) {
  std::vector<RootRef> refs = root_refs_of(dirfd, where.tree, dir);
  refs.erase(std::remove_if(refs.begin(), refs.end(),
                            [&](const RootRef& r) { return r.dir_id != where.ino || !has_prefix(r.name, query.prefix); }),
             refs.end());
  std::vector<uint64_t> ids;  // ROOT_REFs come sorted by child id
  ids.reserve(refs.size());
  for (const RootRef& r : refs) ids.push_back(r.child_id);
  std::vector<uint32_t> by_name(refs.size());
  for (uint32_t i = 0; i < by_name.size(); i++) by_name[i] = i;
  std::sort(by_name.begin(), by_name.end(), [&](uint32_t a, uint32_t b) { return refs[a].name < refs[b].name; });
  std::vector<uint32_t> place(refs.size());
  for (uint32_t rank = 0; rank < by_name.size(); rank++) place[by_name[rank]] = rank;

  std::vector<ListedSubvol> out(refs.size());  // id 0 marks a place left empty
  if (query.names_only) {
    for (size_t i = 0; i < refs.size(); i++) {
      ListedSubvol& e = out[place[i]];
      e.name = std::move(refs[i].name);
      e.info.id = refs[i].child_id;
      e.info.parent_id = refs[i].parent_id;
      e.info.dir_id = refs[i].dir_id;
    }
    return out;
  }
  root_items_each(dirfd, ids, dir, [&](size_t i, const RootItemInfo& item) {
    // refs == 0: deleted, the cleaner has not removed it yet (its ROOT_REF
    // goes with the delete, but was read before).
    if (item.refs == 0) return;
    out[place[i]] = {std::move(refs[i].name), info_from_root(refs[i], item)};
  });
  out.erase(std::remove_if(out.begin(), out.end(), [](const ListedSubvol& e) { return e.info.id == 0; }), out.end());
  return out;
}

// Entry by entry (no privilege): open each directory entry and ask
// GET_SUBVOL_INFO; an entry counts when the subvolume it opens says it sits
// in this directory under this very name (so neither a plain directory, nor
// a subvolume reached through a mount point on another entry).
std::vector<ListedSubvol> list_unprivileged(int dirfd, const ListedDir& where, const ListQuery& query,
                                           const std::string& dir) {
  Fd scan_fd = fd_dup(dirfd, dir);
  std::unique_ptr<DIR, int (*)(DIR*)> scan(::fdopendir(scan_fd.get()), ::closedir);
  if (!scan) throw_errno("fdopendir", dir);
  scan_fd.release();  // owned by the DIR now

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
    if (name == "." || name == ".." || !has_prefix(name, query.prefix)) continue;
    int cfd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cfd < 0) {
      // Gone since readdir, or not a directory after all: not ours to report.
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) continue;
      throw_errno("open", path_join(dir, name));
    }
    Fd child(cfd);
    btrfs_ioctl_get_subvol_info_args args{};
    if (::ioctl(child.get(), BTRFS_IOC_GET_SUBVOL_INFO, &args) < 0) {
      // ENOENT: deleted between open and ioctl. ENOTTY: another filesystem
      // is mounted on the entry. Either way no subvolume of ours is there.
      if (errno == ENOENT || errno == ENOTTY) continue;
      throw_errno("BTRFS_IOC_GET_SUBVOL_INFO", path_join(dir, name));
    }
    SubvolInfo info = info_from_args(args);
    // A plain directory reports the subvolume that holds it, i.e. dir's own;
    // a subvolume root reports itself with dir as its place in the parent.
    if (info.id == where.tree || info.parent_id != where.tree || info.dir_id != where.ino) continue;
    args.name[sizeof(args.name) - 1] = '\0';
    if (name != args.name) continue;
    out.push_back({std::move(name), info});
  }
  std::sort(out.begin(), out.end(), [](const ListedSubvol& a, const ListedSubvol& b) { return a.name < b.name; });
  return out;
}

}  // namespace

bool subvolume_is_root_at(int dirfd, const std::string& name, const std::string& path) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw_errno("stat", path);
  }
  if (!S_ISDIR(st.st_mode) || st.st_ino != BTRFS_FIRST_FREE_OBJECTID) return false;
  int raw = ::openat(dirfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw_errno("open", path);
  }
  Fd fd(raw);
  return fs_is_btrfs_fd(fd.get(), path);
}

bool subvolume_is_root(const std::string& path) {
  ParentAndName pn = [&] {
    try {
      return path_open_parent(path);
    } catch (const SysError& e) {
      if (e.err == ENOENT || e.err == ENOTDIR) return ParentAndName{};
      throw;
    }
  }();
  if (!pn.parent) return false;
  return subvolume_is_root_at(pn.parent.get(), pn.name, path);
}

uint64_t subvolume_id_fd(int fd, const std::string& path) {
  btrfs_ioctl_ino_lookup_args args{};
  args.treeid = 0;
  args.objectid = BTRFS_FIRST_FREE_OBJECTID;
  if (::ioctl(fd, BTRFS_IOC_INO_LOOKUP, &args) < 0) throw_errno("BTRFS_IOC_INO_LOOKUP", path);
  return args.treeid;
}

void subvolume_create_at(int parent_fd, const std::string& name, bool nocow, const std::string& path, NewLimit limit) {
  btrfs_ioctl_vol_args_v2 args{};
  copy_name(args, name);
  btrfs_qgroup_inherit inherit{};
  with_limit(args, inherit, limit);
  if (::ioctl(parent_fd, BTRFS_IOC_SUBVOL_CREATE_V2, &args) < 0) throw_errno("BTRFS_IOC_SUBVOL_CREATE_V2", path);
  if (!nocow && limit.kind != NewLimit::Kind::Bytes) return;
  try {
    Fd root = dir_open_at(parent_fd, name, path);
    if (nocow) inode_set_nocow_fd(root.get(), true, path);
    if (limit.kind == NewLimit::Kind::Bytes) write_limit_item(parent_fd, subvolume_id_fd(root.get(), path), limit.bytes, path);
  } catch (...) {
    // Never leave a COW volume behind when NOCOW was asked for (nor one
    // whose limit cannot be read back). The subvolume is empty, so rmdir
    // removes it without CAP_SYS_ADMIN.
    int saved = errno;
    ::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR);
    errno = saved;
    throw;
  }
}

void subvolume_create(const std::string& path, bool nocow, NewLimit limit) {
  ParentAndName pn = path_open_parent(path);
  subvolume_create_at(pn.parent.get(), pn.name, nocow, path, limit);
}

void subvolume_snapshot_at(int source_fd, int parent_fd, const std::string& name, bool readonly,
                           const std::string& source_path, const std::string& dest_path, NewLimit limit) {
  btrfs_ioctl_vol_args_v2 args{};
  args.fd = source_fd;
  args.flags = readonly ? BTRFS_SUBVOL_RDONLY : 0;
  copy_name(args, name);
  btrfs_qgroup_inherit inherit{};
  with_limit(args, inherit, limit);
  if (::ioctl(parent_fd, BTRFS_IOC_SNAP_CREATE_V2, &args) < 0) {
    throw_errno("BTRFS_IOC_SNAP_CREATE_V2", source_path, dest_path);
  }
  if (limit.kind != NewLimit::Kind::Default) settle_limit(parent_fd, name, limit, dest_path);
}

void subvolume_snapshot(const std::string& source, const std::string& dest, bool readonly, NewLimit limit) {
  Fd src = dir_open_entry(source);
  ParentAndName pn = path_open_parent(dest);
  subvolume_snapshot_at(src.get(), pn.parent.get(), pn.name, readonly, source, dest, limit);
}

void subvolume_delete_at(int parent_fd, const std::string& name, bool recursive, const std::string& path) {
  if (!recursive) {
    destroy_by_name(parent_fd, name, path);
    return;
  }
  Fd victim = dir_open_at(parent_fd, name, path);
  subvolume_require_root_fd(victim.get(), "BTRFS_IOC_SNAP_DESTROY", path);
  uint64_t victim_id = subvolume_id_fd(victim.get(), path);
  for (int attempt = 1;; attempt++) {
    delete_descendants(parent_fd, victim.get(), victim_id, path);
    try {
      // By id: the entry we opened, whatever its name is by now.
      if (!destroy_by_id(parent_fd, victim_id, path)) throw_error(ENOENT, "BTRFS_IOC_SNAP_DESTROY_V2", path);
      return;
    } catch (const SysError& e) {
      if (e.err != ENOTEMPTY || attempt >= kDeleteAttempts) throw;  // ENOTEMPTY: one appeared meanwhile
    }
  }
}

void subvolume_delete(const std::string& path, bool recursive) {
  ParentAndName pn = path_open_parent(path);
  subvolume_delete_at(pn.parent.get(), pn.name, recursive, path);
}

SubvolInfo subvolume_info_fd(int fd, const std::string& path) {
  btrfs_ioctl_get_subvol_info_args args{};
  // Returns 1, not 0, on success for everything but the top level.
  if (::ioctl(fd, BTRFS_IOC_GET_SUBVOL_INFO, &args) < 0) throw_errno("BTRFS_IOC_GET_SUBVOL_INFO", path);
  return info_from_args(args);
}

SubvolInfo subvolume_info(const std::string& path) {
  Fd fd = dir_open_entry(path);
  subvolume_require_root_fd(fd.get(), "BTRFS_IOC_GET_SUBVOL_INFO", path);
  return subvolume_info_fd(fd.get(), path);
}

std::vector<ListedSubvol> subvolume_list_fd(int dirfd, const std::string& dir, const ListQuery& query) {
  if (!fs_is_btrfs_fd(dirfd, dir)) throw_error(ENOTTY, "BTRFS_IOC_GET_SUBVOL_INFO", dir);
  struct stat dst;
  if (::fstat(dirfd, &dst) < 0) throw_errno("fstat", dir);
  const ListedDir where{subvolume_id_fd(dirfd, dir), dst.st_ino};
  if (query.mode == ListMode::Unprivileged) return list_unprivileged(dirfd, where, query, dir);
  try {
    return list_privileged(dirfd, where, query, dir);
  } catch (const SysError& e) {
    // The one place the way is chosen: the root tree needs CAP_SYS_ADMIN.
    if (query.mode == ListMode::Privileged || e.err != EPERM || e.syscall != "BTRFS_IOC_TREE_SEARCH_V2") throw;
  }
  return list_unprivileged(dirfd, where, query, dir);
}

std::vector<ListedSubvol> subvolume_list(const std::string& dir, const ListQuery& query) {
  Fd fd = dir_open(dir);
  return subvolume_list_fd(fd.get(), dir, query);
}

std::vector<NestedSubvol> subvolume_nested_fd(int fd, const std::string& path) {
  subvolume_require_root_fd(fd, "BTRFS_IOC_TREE_SEARCH_V2", path);
  uint64_t root_id = subvolume_id_fd(fd, path);
  Tree tree = descendants(fd, root_id, path);
  std::map<uint64_t, std::string> paths{{root_id, ""}};
  std::vector<NestedSubvol> out;
  for (uint64_t id : tree.preorder) {
    auto ref = root_backref_of(fd, id, path);
    if (!ref) continue;
    auto parent = paths.find(ref->parent_id);
    std::string prefix = parent == paths.end() ? "?/" : parent->second;
    std::string rel = prefix + dir_path_in(fd, ref->parent_id, ref->dir_id) + ref->name;
    paths[id] = rel + "/";
    out.push_back({id, ref->parent_id, rel, is_readonly_id(fd, id, path)});
  }
  return out;
}

std::vector<NestedSubvol> subvolume_nested(const std::string& path) {
  Fd fd = dir_open_entry(path);
  return subvolume_nested_fd(fd.get(), path);
}

Fd subvolume_open_by_id(int any_fd, uint64_t id, const std::string& path) {
  // struct btrfs_fid without parent (FILEID_BTRFS_WITHOUT_PARENT): objectid,
  // root objectid, generation of the inode.
  constexpr int kFileidBtrfsWithoutParent = 0x4d;
  constexpr unsigned kFidBytes = 20;
  alignas(file_handle) unsigned char buf[sizeof(file_handle) + kFidBytes] = {};
  auto* handle = reinterpret_cast<file_handle*>(buf);
  handle->handle_bytes = kFidBytes;
  handle->handle_type = kFileidBtrfsWithoutParent;
  const uint64_t objectid = BTRFS_FIRST_FREE_OBJECTID;
  uint32_t gen = root_dir_generation(any_fd, id, path);
  std::memcpy(handle->f_handle, &objectid, 8);
  std::memcpy(handle->f_handle + 8, &id, 8);
  std::memcpy(handle->f_handle + 16, &gen, 4);
  int raw = ::open_by_handle_at(any_fd, handle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) throw_errno("open_by_handle_at", path);
  Fd fd(raw);
  subvolume_require_root_fd(fd.get(), "open_by_handle_at", path);
  if (subvolume_id_fd(fd.get(), path) != id) throw_error(ESTALE, "open_by_handle_at", path);
  return fd;
}

}  // namespace bv::core

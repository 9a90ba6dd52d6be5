// Subvolume lifecycle and metadata through BTRFS ioctls (no btrfs-progs).
// Naming: object_verb; `_fd` acts on an open fd, `_at` on a parent fd + one
// name component; the path form opens and delegates (see path.h: a symlink
// as the last component is never followed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fd.h"

namespace bv::core {

struct Timespec {
  uint64_t sec = 0;
  uint32_t nsec = 0;
};

/** What BTRFS_IOC_GET_SUBVOL_INFO tells about one subvolume. */
struct SubvolInfo {
  uint64_t id = 0;
  uint64_t parent_id = 0;  // containing subvolume; 0 for the top level
  uint64_t dir_id = 0;     // inode of the directory holding it in the parent
  uint64_t generation = 0;
  uint64_t flags = 0;      // root-item flags: bit 0 = read-only
  uint8_t uuid[16] = {};
  uint8_t parent_uuid[16] = {};
  uint8_t received_uuid[16] = {};
  uint64_t ctransid = 0, otransid = 0, stransid = 0, rtransid = 0;
  Timespec ctime, otime, stime, rtime;
};

/** One entry of subvolume_list(): the subvolume's name in the listed directory. */
struct ListedSubvol {
  std::string name;
  SubvolInfo info;
};

/** A subvolume somewhere below another one (see subvolume_nested_fd()). */
struct NestedSubvol {
  uint64_t id;
  uint64_t parent_id;
  std::string path;  // relative to the outer subvolume's root, for messages only
  bool readonly;
};

/**
 * subvolume_is_root_at() - whether entry @name of @dirfd is the root of a
 * subvolume: a directory (not a symlink to one) with inode 256 on btrfs.
 * False when it does not exist; throws SysError for other failures. Unprivileged.
 */
bool subvolume_is_root_at(int dirfd, const std::string& name, const std::string& path);
bool subvolume_is_root(const std::string& path);

/** subvolume_id_fd() - the id of the subvolume holding @fd (INO_LOOKUP, unprivileged). */
uint64_t subvolume_id_fd(int fd, const std::string& path);

/**
 * The quota limit a new subvolume gets (its qgroup's referenced bytes, see
 * quota.h). Default: what the kernel gives (none; a snapshot under full
 * qgroups: its source's). With quotas off, nothing either way.
 */
struct NewLimit {
  enum class Kind : uint8_t { Default, None, Bytes } kind = Kind::Default;
  uint64_t bytes = 0;
};

/**
 * subvolume_create_at() - BTRFS_IOC_SUBVOL_CREATE_V2 of @name in @parent_fd.
 * @nocow: set FS_NOCOW_FL on the new, empty root directory (inherited by
 * files created later); if that fails the new subvolume is removed again.
 * @limit: set in the same ioctl (BTRFS_QGROUP_INHERIT_SET_LIMITS): no
 * moment without it.
 */
void subvolume_create_at(int parent_fd, const std::string& name, bool nocow, const std::string& path,
                         NewLimit limit = {});
void subvolume_create(const std::string& path, bool nocow, NewLimit limit = {});

/**
 * subvolume_snapshot_at() - BTRFS_IOC_SNAP_CREATE_V2 of the subvolume whose
 * root is @source_fd as @name in @parent_fd. Commits a transaction: call it
 * off the JS thread. Not recursive: nested subvolumes show up as empty
 * directories in the snapshot. @limit: set in the same ioctl; under full
 * qgroups the kernel gives a snapshot its source's limit instead, which is
 * then changed (BTRFS_IOC_QGROUP_LIMIT) when it is not the one asked.
 */
void subvolume_snapshot_at(int source_fd, int parent_fd, const std::string& name, bool readonly,
                           const std::string& source_path, const std::string& dest_path, NewLimit limit = {});
void subvolume_snapshot(const std::string& source, const std::string& dest, bool readonly, NewLimit limit = {});

/**
 * subvolume_delete_at() - delete subvolume @name of @parent_fd.
 * Without @recursive: BTRFS_IOC_SNAP_DESTROY by name; ENOTEMPTY when it
 * holds other subvolumes. With @recursive: every nested subvolume first,
 * deepest first, each found and destroyed BY ID (root tree search +
 * SNAP_DESTROY_V2 by subvolume id), never through a path inside the
 * subvolume: renames, symlinks or swaps made by its content meanwhile
 * cannot steer the deletion outside it. Read-only subvolumes holding others
 * are made writable first (a child's entry lives in its parent's tree).
 * Needs CAP_SYS_ADMIN (also CAP_DAC_READ_SEARCH to open nested subvolumes
 * by id). A subvolume created inside while deleting is deleted too.
 */
void subvolume_delete_at(int parent_fd, const std::string& name, bool recursive, const std::string& path);
void subvolume_delete(const std::string& path, bool recursive);

/** subvolume_info_fd() - BTRFS_IOC_GET_SUBVOL_INFO of the subvolume holding @fd. */
SubvolInfo subvolume_info_fd(int fd, const std::string& path);
/** subvolume_info() - the same for entry @path; EINVAL unless it is a subvolume root. */
SubvolInfo subvolume_info(const std::string& path);

/** How subvolume_list_fd() reads: the root tree when allowed, else entry by entry; or one of them only. */
enum class ListMode : uint8_t {
  Auto,          // Privileged; Unprivileged when TREE_SEARCH is refused (EPERM)
  Privileged,    // tree search only (tests): EPERM without CAP_SYS_ADMIN
  Unprivileged,  // open + GET_SUBVOL_INFO of each entry only (tests)
};

/** What subvolume_list_fd() lists. */
struct ListQuery {
  ListMode mode = ListMode::Auto;
  /** Only the entries whose name starts with this (the others are not even opened or read). */
  std::string prefix;
  /** Names, id, parent_id and dir_id only: from the tree, no ROOT_ITEM is read (the other fields stay 0). */
  bool names_only = false;
};

/**
 * subvolume_list_fd() - the subvolumes directly inside directory @dirfd,
 * sorted by name, each under its name in @dirfd; symlinks and plain
 * directories are not listed, nor subvolumes deeper down.
 *
 * With CAP_SYS_ADMIN (ListMode::Auto as root), from the root tree in a few
 * batched TREE_SEARCH_V2 calls: the ROOT_REFs of @dirfd's subvolume whose
 * directory is @dirfd (names), then the ROOT_ITEMs of those subvolumes; no
 * entry is opened. Otherwise (EPERM), one open + GET_SUBVOL_INFO per entry,
 * an entry listed only when it is a subvolume whose place (parent, directory,
 * name) is that entry. Both give the same facts, except: ctransid and ctime
 * of a subvolume changed since the last transaction commit are the committed
 * ones from the tree, the newer in-memory ones from GET_SUBVOL_INFO; and a
 * subvolume hidden under a mount point is listed from the tree only.
 * Subvolumes deleted meanwhile are skipped (also deleted ones the cleaner
 * has not removed yet).
 */
std::vector<ListedSubvol> subvolume_list_fd(int dirfd, const std::string& dir, const ListQuery& query = {});
std::vector<ListedSubvol> subvolume_list(const std::string& dir, const ListQuery& query = {});

/**
 * subvolume_nested_fd() - every subvolume below the subvolume whose root is
 * @fd, at any depth, parents before children (root tree search; needs
 * CAP_SYS_ADMIN). Paths are resolved for messages only.
 */
std::vector<NestedSubvol> subvolume_nested_fd(int fd, const std::string& path);
std::vector<NestedSubvol> subvolume_nested(const std::string& path);

/**
 * subvolume_open_by_id() - open the root of subvolume @id on the filesystem
 * of @any_fd by file handle (open_by_handle_at; needs CAP_DAC_READ_SEARCH):
 * no path, so nothing a volume's content does can redirect it. Checks that
 * the fd opened is that subvolume's root.
 */
Fd subvolume_open_by_id(int any_fd, uint64_t id, const std::string& path);

}  // namespace bv::core

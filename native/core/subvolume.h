// Subvolume lifecycle and metadata through BTRFS ioctls (no btrfs-progs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

/**
 * is_subvolume() - btrfs magic AND inode 256 AND directory.
 *
 * Returns false when @path does not exist or is not a directory on btrfs;
 * throws for other failures (EACCES...). Unprivileged.
 */
bool is_subvolume(const std::string& path);

/**
 * subvolume_create() - BTRFS_IOC_SUBVOL_CREATE_V2 in the parent of @path.
 * @nocow: set FS_NOCOW_FL on the new, empty root directory (inherited by
 * files created later). If that fails the new subvolume is removed again.
 */
void subvolume_create(const std::string& path, bool nocow);

/**
 * snapshot_create() - BTRFS_IOC_SNAP_CREATE_V2 of subvolume @source at @dest.
 * Commits a transaction: call it off the JS thread. Not recursive: nested
 * subvolumes show up as empty directories in the snapshot.
 */
void snapshot_create(const std::string& source, const std::string& dest, bool readonly);

/**
 * subvolume_delete() - BTRFS_IOC_SNAP_DESTROY of @path.
 * @recursive: delete nested subvolumes first, deepest first; without it a
 * subvolume holding others fails with ENOTEMPTY. Needs CAP_SYS_ADMIN.
 */
void subvolume_delete(const std::string& path, bool recursive);

/** subvolume_info() - BTRFS_IOC_GET_SUBVOL_INFO; EINVAL unless @path is a subvolume root. */
SubvolInfo subvolume_info(const std::string& path);

/**
 * subvolume_list() - the subvolumes directly inside directory @dir, sorted by name.
 * One open + one GET_SUBVOL_INFO per directory entry; plain directories are
 * recognised because their info is the one of @dir's own subvolume.
 */
std::vector<ListedSubvol> subvolume_list(const std::string& dir);

/** wait_for_cleaner() - commit, then wait until deleted subvolumes are cleaned (6.13+). */
void wait_for_cleaner(const std::string& path);

}  // namespace bv::core

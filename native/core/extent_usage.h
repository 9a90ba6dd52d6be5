// What deleting a subvolume (a snapshot) would free, read from its files'
// extents (FS_IOC_FIEMAP): the data extents no other subvolume or file
// references. The way to know it when full qgroups are not on (simple
// quotas charge an extent to the subvolume that wrote it, so a snapshot's
// own qgroup says nothing of what it alone keeps). Unprivileged.
#pragma once

#include <cstdint>
#include <string>

namespace bv::core {

struct ExtentUsage {
  uint64_t exclusive = 0;   // bytes of data extents referenced by this subvolume only
  uint64_t referenced = 0;  // bytes of every data extent of its files
  uint64_t files = 0;       // regular files read (a hard-linked one once)
};

/**
 * subvolume_extent_usage() - walk the subvolume rooted at @path (its own
 * files only: no symlink is followed, no other subvolume or mount entered)
 * and sum its files' extents: those FIEMAP does not flag SHARED are
 * exclusive. Sizes are the extents' logical (uncompressed) lengths;
 * metadata (inline data included) is not counted. Meant for read-only
 * snapshots: a subvolume changing meanwhile gives a mix of before and after.
 * Throws SysError: EINVAL when @path is not a subvolume root, ENOTTY off btrfs.
 */
ExtentUsage subvolume_extent_usage(const std::string& path);

}  // namespace bv::core

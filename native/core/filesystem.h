// Whole-filesystem operations: they take any path on the filesystem (a
// directory to work in, followed like any path).
#pragma once

#include <string>

namespace bv::core {

/** filesystem_sync_fd() - BTRFS_IOC_SYNC: flush and commit the filesystem of @fd. */
void filesystem_sync_fd(int fd, const std::string& path);
void filesystem_sync(const std::string& path);

/**
 * filesystem_wait_cleaner_fd() - commit, then wait until deleted subvolumes
 * are cleaned (BTRFS_IOC_SUBVOL_SYNC_WAIT, 6.13+; on older kernels only the commit).
 */
void filesystem_wait_cleaner_fd(int fd, const std::string& path);
void filesystem_wait_cleaner(const std::string& path);

}  // namespace bv::core

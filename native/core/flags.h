// Per-subvolume and per-inode switches: read-only, NOCOW, compression property.
#pragma once

#include <optional>
#include <string>

namespace bv::core {

/** get_readonly() - BTRFS_IOC_SUBVOL_GETFLAGS & BTRFS_SUBVOL_RDONLY (unprivileged). */
bool get_readonly(const std::string& path);

/**
 * set_readonly() - BTRFS_IOC_SUBVOL_SETFLAGS. Commits a transaction when the
 * state changes. received_uuid is left alone (see the docs on received snapshots).
 */
void set_readonly(const std::string& path, bool readonly);

/** get_nocow() - FS_NOCOW_FL of a file or directory (FS_IOC_GETFLAGS). */
bool get_nocow(const std::string& path);

/**
 * set_nocow() - set or clear FS_NOCOW_FL. The kernel silently ignores the
 * change on a non-empty regular file; we read the flag back and throw EINVAL
 * (syscall FS_IOC_SETFLAGS) instead of reporting a success that did not happen.
 */
void set_nocow(const std::string& path, bool nocow);
void set_nocow_fd(int fd, bool nocow, const std::string& path);

/** get_compression() - the btrfs.compression property, or nullopt when unset. */
std::optional<std::string> get_compression(const std::string& path);

/**
 * set_compression() - set the btrfs.compression property ("zlib", "lzo",
 * "zstd", "none"), or remove it (nullopt) so the mount option applies again.
 */
void set_compression(const std::string& path, const std::optional<std::string>& value);

/** sync_filesystem() - BTRFS_IOC_SYNC: flush and commit the filesystem of @path. */
void sync_filesystem(const std::string& path);

}  // namespace bv::core

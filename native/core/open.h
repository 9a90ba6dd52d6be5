// Opening paths the way every btrfs ioctl wants them: real (non-O_PATH) fds,
// close-on-exec, no atime updates when we are allowed to skip them.
#pragma once

#include <string>

#include "fd.h"

namespace bv::core {

/** A path split into the directory that holds it and its last component. */
struct ParentAndName {
  std::string parent;
  std::string name;
};

/**
 * split_parent() - split @path for the "parent fd + name" ioctls.
 *
 * Trailing slashes are ignored. Throws EINVAL for an empty path or a last
 * component of "." or "..", ENAMETOOLONG for a component over 255 bytes.
 */
ParentAndName split_parent(const std::string& path);

/** open_dir() - open a directory O_RDONLY|O_DIRECTORY (ioctls fail on O_PATH fds). */
Fd open_dir(const std::string& path);

/** open_dir_at() - open directory @name below @dirfd without following a final symlink. */
Fd open_dir_at(int dirfd, const std::string& name, const std::string& path_for_errors);

/** open_any() - open a file or directory read-only, never blocking on a FIFO. */
Fd open_any(const std::string& path);

/** is_btrfs_fd() - whether @fd lives on a btrfs filesystem (fstatfs magic). */
bool is_btrfs_fd(int fd, const std::string& path_for_errors);

/**
 * require_subvolume_root() - throw unless @fd is the root directory of a
 * subvolume: ENOTTY (with @syscall) when not on btrfs, EINVAL otherwise.
 */
void require_subvolume_root(int fd, const char* syscall, const std::string& path);

}  // namespace bv::core

// The subvolume being received, seen only through fds: paths of the stream
// resolve beneath its root with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
// | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), so no path can leave it or go
// through a symlink, and the last component is always used with an *at()
// call that does not follow it. Directory fds are cached by path (dropped
// when a directory is renamed or removed) and the file being written stays
// open across the commands that follow its creation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "fd.h"

namespace bv::core {

/** A directory fd (borrowed: valid until the next command) and a last component. */
struct EntryRef {
  int dir;
  std::string name;  // empty for the subvolume root itself
};

class ReceiveTree {
 public:
  ReceiveTree(Fd root, std::string root_path) : root_(std::move(root)), root_path_(std::move(root_path)) {}

  int root() const { return root_.get(); }
  const std::string& root_path() const { return root_path_; }

  /** Called before each command: keeps the cache bounded (borrowed fds live until the next call). */
  void next_command();

  /** The directory holding @path and @path's last component ("" means the root itself). */
  EntryRef entry(std::string_view path);

  /** An fd of directory @path ("" = the root), cached. */
  int dir(std::string_view path);

  /**
   * The file open for writing at @path: the current one, or @path opened
   * after checking it is a regular file (never a FIFO or a device opened).
   */
  int file(std::string_view path);

  /** Makes @fd (a new regular file at @path) the current file. */
  void set_file(std::string path, Fd fd);

  /** Whether @path is the current file; its fd, or -1. */
  int current_file(std::string_view path) const;

  /** Closes the current file (before END, verity, or when its name goes away). */
  void close_file();

  /** After a rename of @from to @to: fds follow their inode, names are updated or dropped. */
  void renamed(std::string_view from, std::string_view to, bool was_dir);

  /** After an unlink of @path. */
  void unlinked(std::string_view path);

  /** After an rmdir of @path. */
  void removed_dir(std::string_view path);

  /** The full path of stream path @path, for messages. */
  std::string show(std::string_view path) const;

 private:
  Fd root_;
  std::string root_path_;
  std::unordered_map<std::string, Fd> dirs_;
  std::string file_path_;
  Fd file_;
};

}  // namespace bv::core

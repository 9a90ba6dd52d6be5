// Entries beneath a directory in batches: one call (one trip to a thread)
// for what sync would otherwise do with a call per entry - list a directory
// packed, read many small files, write many small files, make a directory
// with its owner and mode. Every path is resolved beneath @rootfd as in
// beneath.h (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
// the last component never followed); a file replacing another is written
// under a temporary name and renamed into place (file_write_at), a new one
// as an unnamed inode then linked (file_create_at), never through a symlink.
//
// The packed entry (little-endian; src/btrfs/packed.ts reads it):
//   u32 mode, u32 uid, u32 gid, u32 nlink, u64 size, i64 mtime (ns),
//   u64 ino, u64 dev                                   (kPackedStatBytes)
// and in a listing, after it: u8 name length, the name's bytes, and for a
// symlink u16 target length, the target's bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "beneath.h"
#include "sys_error.h"

namespace bv::core {

constexpr size_t kPackedStatBytes = 48;

/** Appends @st packed (see the top of this file) to @out. */
void pack_stat(std::string& out, const EntryStat& st);

/** A directory listed packed: its own stat and its entries, sorted by name (bytes, as memcmp). */
struct PackedListing {
  std::string self;      // packed stat of the directory (fstat)
  uint32_t count = 0;    // entries in `entries`
  std::string entries;   // packed entries: stat, name, symlink target (see the top of this file)
};

/**
 * dir_list_packed_at() - dir_list_beneath_at(@dirfd, @path) packed, its
 * entries sorted by name. Throws as dir_list_beneath_at.
 */
PackedListing dir_list_packed_at(int dirfd, const std::string& path, const std::string& shown);

/** What files_read_beneath() read. */
struct FilesRead {
  /** Paths handled from the first: a record each in `packed`. */
  uint32_t done = 0;
  /**
   * Per path: u8 kind - 0 read whole and unchanged while read, 1 read whole
   * but changed while read, 2 not read - then for 0 and 1 the packed stat
   * (fstat of the file opened, before reading), u32 length and the bytes;
   * for 2 u8 code length, the errno's name, u16 message length, the message.
   */
  std::string packed;
  /** Bytes of content in `packed`. */
  uint64_t bytes = 0;
  /** The path after the last handled, when it is bigger than @max_file: opened, its first bytes read, left open. */
  std::optional<FileRead> big;
};

/**
 * files_read_beneath() - reads regular files @paths (relative to @rootfd,
 * each opened as file_read_beneath_at: never a FIFO or a device, never
 * through a symlink), in order, whole, until @max_bytes of content are read
 * or a file bigger than @max_file comes: that one is returned open in `big`
 * (its first @max_file bytes read). A file that cannot be read gets a record
 * saying why; nothing but an internal failure throws.
 */
FilesRead files_read_beneath(int rootfd, const std::vector<std::string>& paths, size_t max_bytes, size_t max_file);

/** One file for files_write_beneath(). */
struct FileToWrite {
  std::string path;  // relative to the root: "dir/name" or "name"
  size_t offset = 0;  // its content in the data
  size_t length = 0;
  FileMeta meta;
  bool replace = false;
  std::optional<Expected> expect;
  bool want_ino = true;  // else 0 is its inode in the result (one fstat less)
};

/** What became of one file: its inode, nothing (the entry it was to replace changed: nothing written), or why not. */
struct FileWritten {
  std::optional<uint64_t> ino;
  std::optional<SysError> error;
};

/**
 * files_write_beneath() - for each of @files: its directory opened beneath
 * @rootfd (once for a run of files in the same directory); with @replace,
 * file_write_at() (written under @temp_prefix<random>, its owner, mode and
 * mtime set, renamed into place over what @expect says is there), else
 * file_create_at() (only where nothing is: EEXIST from "linkat"). One result
 * per file, in order; errors name the path relative to @shown_root.
 */
std::vector<FileWritten> files_write_beneath(int rootfd, const std::vector<FileToWrite>& files, std::string_view data,
                                             const std::string& temp_prefix, const std::string& shown_root);

/**
 * dir_make_beneath() - make directory @path (its parent resolved beneath
 * @rootfd) with mode 0700, then give it @uid, @gid and @mode (opened beneath
 * its parent, never followed). Throws SysError ("openat2", "mkdirat",
 * "fchown", "fchmod"); EEXIST when anything has that name.
 */
void dir_make_beneath(int rootfd, const std::string& path, uid_t uid, gid_t gid, mode_t mode, const std::string& shown);

}  // namespace bv::core

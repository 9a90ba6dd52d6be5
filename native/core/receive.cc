#include "receive.h"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "decompress.h"
#include "flags.h"
#include "path.h"
#include "receive_sources.h"
#include "receive_space.h"
#include "receive_tree.h"
#include "subvolume.h"
#include "uuid.h"

namespace bv::core {

ReceiveSysError::ReceiveSysError(const SysError& err, uint64_t command_, uint16_t command_type_)
    : SysError(err), command(command_), command_type(command_type_) {}

namespace {

// Largest extent a stream may ask us to decompress (BTRFS_MAX_UNCOMPRESSED).
constexpr uint64_t kMaxUnencoded = 128 * 1024;
// Immutable/append flags are applied at END (they would block later commands); beyond this, at once.
constexpr size_t kMaxDeferredFlags = 4096;
// The stream's IMMUTABLE and APPEND (BTRFS_INODE_*). On the subvolume's root
// they are dropped: they would forbid the final rename and any delete of the
// subvolume, and btrfs receive ignores FILEATTR altogether anyway.
constexpr uint64_t kProtectFlags = (1 << 6) | (1 << 7);

bool is_create(SendCmd cmd) {
  return cmd == SendCmd::MKFILE || cmd == SendCmd::MKDIR || cmd == SendCmd::MKNOD || cmd == SendCmd::MKFIFO ||
         cmd == SendCmd::MKSOCK || cmd == SendCmd::SYMLINK;
}

// A creation kept back one command: when the next one renames it, the entry
// is created at its final name directly (the kernel creates every new inode
// under an orphan name first).
struct PendingCreate {
  SendCmd cmd;
  uint64_t index;
  std::string path;
  std::string link;  // SYMLINK target
  uint64_t mode = 0, rdev = 0;
};

// A WRITE at offset 0 kept back one command: when the next one truncates
// the same file to where that write ends (what the kernel sends for a file
// rewritten smaller), the file is emptied first and then written. btrfs
// does that for about half the cost of writing over the old extents and
// cutting them off after; the file ends up the same.
struct HeldWrite {
  bool held = false;
  uint64_t index = 0;
  std::string path;
  std::vector<uint8_t> data;  // a copy: the command's view ends with the next command (capacity reused)
};
// Writes longer than this are applied at once (the kernel's v2 WRITEs are at most 144 KiB).
constexpr size_t kMaxHeldWrite = 256 * 1024;

// BTRFS_INODE_* (the stream's FILEATTR) to FS_*_FL; the flags with no
// FS_IOC_SETFLAGS equivalent are left alone.
struct FlagMap {
  uint64_t btrfs;
  int fs;
};
constexpr FlagMap kFlagMap[] = {
    {1 << 1, FS_NOCOW_FL}, {1 << 3, FS_NOCOMP_FL}, {1 << 5, FS_SYNC_FL},     {1 << 6, FS_IMMUTABLE_FL},
    {1 << 7, FS_APPEND_FL}, {1 << 8, FS_NODUMP_FL}, {1 << 9, FS_NOATIME_FL}, {1 << 10, FS_DIRSYNC_FL},
    {1 << 11, FS_COMPR_FL},
};

// The entry a metadata command acts on (CHOWN, CHMOD, UTIMES, the xattrs,
// FILEATTR): an fd when there is one, else its directory fd and last
// component for the *at() calls, which never follow it. Either way a call
// that fails names the same syscall and path.
class MetaTarget {
 public:
  // The root or the file being written by its fd; anything else by (dir, name).
  static MetaTarget held(ReceiveTree& t, std::string_view path) {
    MetaTarget e(t, path);
    e.fd_ = path.empty() ? t.root() : t.current_file(path);
    if (e.fd_ < 0) e.ref_ = t.entry(path);
    return e;
  }

  // As held(), and a directory or a regular file by an fd opened for it (a
  // FIFO or a device is never opened): only symlinks and special files are
  // left to the *at() calls.
  static MetaTarget opened(ReceiveTree& t, std::string_view path) {
    MetaTarget e = held(t, path);
    if (e.fd_ >= 0) return e;
    struct stat st;
    e.stat(st);
    if (S_ISDIR(st.st_mode)) {
      e.fd_ = t.dir(path);
    } else if (S_ISREG(st.st_mode)) {
      e.owned_ = Fd(::openat(e.ref_.dir, e.ref_.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOATIME));
      if (!e.owned_) throw_errno("open", e.shown());
      e.fd_ = e.owned_.get();
    }
    return e;
  }

  // The fd, or -1 when the entry is reached by (dir, name).
  int fd() const { return fd_; }

  void stat(struct stat& st) const {
    int r = fd_ >= 0 ? ::fstat(fd_, &st) : ::fstatat(ref_.dir, ref_.name.c_str(), &st, AT_SYMLINK_NOFOLLOW);
    if (r < 0) throw_errno("stat", shown());
  }

  void chown(uid_t uid, gid_t gid) const {
    int r = fd_ >= 0 ? ::fchown(fd_, uid, gid) : ::fchownat(ref_.dir, ref_.name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r < 0) throw_errno("chown", shown());
  }

  // fchmodat() follows a symlink: by (dir, name), the caller knows it is none.
  void chmod(mode_t mode) const {
    int r = fd_ >= 0 ? ::fchmod(fd_, mode) : ::fchmodat(ref_.dir, ref_.name.c_str(), mode, 0);
    if (r < 0) throw_errno("chmod", shown());
  }

  void set_times(const struct timespec (&times)[2]) const {
    int r = fd_ >= 0 ? ::futimens(fd_, times) : ::utimensat(ref_.dir, ref_.name.c_str(), times, AT_SYMLINK_NOFOLLOW);
    if (r < 0) throw_errno("utimensat", shown());
  }

  void set_xattr(const std::string& name, const void* data, size_t size) const {
    int r;
    if (fd_ >= 0) {
      r = ::fsetxattr(fd_, name.c_str(), data, size, 0);
    } else {
      std::string proc = proc_path();
      r = ::lsetxattr(proc.c_str(), name.c_str(), data, size, 0);
    }
    if (r < 0) throw_errno("setxattr", shown());
  }

  void remove_xattr(const std::string& name) const {
    int r;
    if (fd_ >= 0) {
      r = ::fremovexattr(fd_, name.c_str());
    } else {
      std::string proc = proc_path();
      r = ::lremovexattr(proc.c_str(), name.c_str());
    }
    if (r < 0) throw_errno("removexattr", shown());
  }

 private:
  MetaTarget(ReceiveTree& t, std::string_view path) : tree_(t), path_(path) {}

  std::string shown() const { return tree_.show(path_); }

  // The /proc path of the entry: the xattr calls have no *at() form before
  // Linux 6.13; this reaches exactly that entry without resolving any path of
  // the tree (the magic link is the directory itself).
  std::string proc_path() const { return "/proc/self/fd/" + std::to_string(ref_.dir) + "/" + ref_.name; }

  ReceiveTree& tree_;
  std::string_view path_;
  int fd_ = -1;
  Fd owned_;               // an fd opened by opened()
  EntryRef ref_{-1, ""};   // when fd_ is -1
};

class Receiver {
 public:
  Receiver(SendStreamReader& reader, ReceiveOptions& options) : reader_(reader), options_(options) {
    std::vector<const AllowedDir*> allowed{&dest_};
    dest_.path = options.dest_path;
    dest_.fd = fd_dup(options.dest.get(), options.dest_path);
    for (const AllowedDir& dir : options.allowed) allowed.push_back(&dir);
    sources_.emplace(dest_.fd.get(), allowed);
    space_.emplace(dest_.fd.get(), dest_.path, options.reserve_bytes);
  }

  std::vector<ReceivedSubvol> run() {
    std::vector<ReceivedSubvol> done;
    while (reader_.next_stream()) {
      SendCommand cmd;
      while (reader_.next(cmd)) guarded(cmd.index, cmd.cmd, [&] { step(cmd, done); });
    }
    // An expected subvolume waits for the end of the input (ReceiveOptions::expect_name).
    if (tree_) guarded(end_index_, SendCmd::END, [&] { finish(done); });
    return done;
  }

  ~Receiver() { abandon(); }

 private:
  // Runs @work for command @index; on any failure deletes the partial subvolume.
  template <typename Work>
  void guarded(uint64_t index, SendCmd type, Work work) {
    try {
      work();
    } catch (const ReceiveSysError&) {
      abandon();  // already names its command (a creation applied one command late)
      throw;
    } catch (const SysError& e) {
      abandon();
      throw ReceiveSysError(e, index, static_cast<uint16_t>(type));
    } catch (...) {
      abandon();
      throw;
    }
  }

  // ---- the subvolume being received -----------------------------------------

  // ReceiveOptions::expect_name: that subvolume only, and only once (checked
  // before the previous one is finished: a refused input leaves nothing).
  void expect(const SendCommand& cmd) {
    if (!options_.expect_name) return;
    const std::string& want = *options_.expect_name;
    std::string reason;
    if (count_ > 0) {
      reason = "a second subvolume in an input that must hold only '" + want + "'";
    } else if (cmd.path != want) {
      reason = "another subvolume than the expected '" + want + "'";
    } else {
      return;
    }
    throw StreamError("ERR_RECEIVE_UNEXPECTED", reason, cmd.index, static_cast<uint16_t>(cmd.cmd), std::string(cmd.path),
                      cmd.offset);
  }

  void begin(const SendCommand& cmd) {
    if (tree_) throw StreamError(kStreamInvalid, "a subvolume starts before the previous one ended", cmd.index, static_cast<uint16_t>(cmd.cmd), std::string(cmd.path), cmd.offset);
    name_ = std::string(cmd.path);
    std::string final_path = path_join(dest_.path, name_);
    // Refused before anything is written; the final rename refuses it again atomically.
    struct stat st;
    if (::fstatat(dest_.fd.get(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) throw_error(EEXIST, "receive", final_path);
    temp_ = options_.temp_prefix + "." + std::to_string(++count_);
    if (cmd.cmd == SendCmd::SUBVOL) {
      subvolume_create_at(dest_.fd.get(), temp_, false, path_join(dest_.path, temp_));
    } else {
      int parent = sources_->find(cmd.clone_uuid, cmd.clone_ctransid, "ERR_RECEIVE_PARENT_NOT_FOUND", cmd.index,
                                  static_cast<uint16_t>(cmd.cmd));
      subvolume_snapshot_at(parent, dest_.fd.get(), temp_, false, "parent " + uuid_string(cmd.clone_uuid),
                            path_join(dest_.path, temp_));
    }
    temp_exists_ = true;
    tree_.emplace(dir_open_at(dest_.fd.get(), temp_, path_join(dest_.path, temp_)), final_path);
    uuid_ = cmd.uuid;
    ctransid_ = cmd.ctransid;
    commands_ = 0;
  }

  void finish(std::vector<ReceivedSubvol>& done) {
    if (!tree_) return;
    flush_held();
    flush_pending();
    tree_->close_file();
    for (auto& [fd, flags] : deferred_flags_) set_flags(fd.get(), flags, tree_->root_path());
    deferred_flags_.clear();
    int root = tree_->root();
    const std::string& path = tree_->root_path();
    // The received marker must never be durable while the data is not.
    if (::syncfs(root) < 0) throw_errno("syncfs", path);
    btrfs_ioctl_received_subvol_args args{};
    std::memcpy(args.uuid, uuid_.data(), 16);
    args.stransid = ctransid_;
    if (::ioctl(root, BTRFS_IOC_SET_RECEIVED_SUBVOL, &args) < 0) throw_errno("BTRFS_IOC_SET_RECEIVED_SUBVOL", path);
    subvolume_set_readonly_fd(root, true, path);
    if (::renameat2(dest_.fd.get(), temp_.c_str(), dest_.fd.get(), name_.c_str(), RENAME_NOREPLACE) < 0) {
      throw_errno("renameat2", path_join(dest_.path, temp_), path);
    }
    temp_exists_ = false;
    SubvolInfo info = subvolume_info_fd(root, path);
    ReceivedSubvol out;
    out.name = name_;
    std::memcpy(out.uuid.data(), info.uuid, 16);
    std::memcpy(out.received_uuid.data(), info.received_uuid, 16);
    std::memcpy(out.parent_uuid.data(), info.parent_uuid, 16);
    out.ctransid = ctransid_;
    out.commands = commands_;
    done.push_back(out);
    tree_.reset();
  }

  // Deletes the partial subvolume (best effort: a leftover is the caller's to clean at its next start).
  void abandon() noexcept {
    held_.held = false;
    pending_.reset();
    deferred_flags_.clear();
    tree_.reset();
    if (temp_exists_) {
      std::string path;
      try {
        path = path_join(dest_.path, temp_);
        subvolume_delete_at(dest_.fd.get(), temp_, false, path);
      } catch (const SysError& e) {
        // EPERM: its root is immutable or append-only (a snapshot of such a parent, say).
        if (e.err == EPERM) delete_protected(path);
      } catch (...) {
      }
      temp_exists_ = false;
    }
  }

  void delete_protected(const std::string& path) noexcept {
    try {
      Fd root = dir_open_at(dest_.fd.get(), temp_, path);
      if (subvolume_unprotect_fd(root.get(), path)) subvolume_delete_at(dest_.fd.get(), temp_, false, path);
    } catch (...) {
    }
  }

  // ---- commands --------------------------------------------------------------

  [[noreturn]] void invalid(const SendCommand& cmd, const std::string& reason) {
    throw StreamError(kStreamInvalid, reason, cmd.index, static_cast<uint16_t>(cmd.cmd), std::string(cmd.path), cmd.offset);
  }

  ReceiveTree& tree(const SendCommand& cmd) {
    if (!tree_) invalid(cmd, "a command outside of a subvolume");
    return *tree_;
  }

  void step(const SendCommand& cmd, std::vector<ReceivedSubvol>& done) {
    switch (cmd.cmd) {
      case SendCmd::SUBVOL:
      case SendCmd::SNAPSHOT:
        expect(cmd);
        finish(done);  // several subvolumes in one stream (send -e)
        begin(cmd);
        return;
      case SendCmd::END:
        if (options_.expect_name) {
          end_index_ = cmd.index;  // finished at the end of the input (run)
          return;
        }
        finish(done);
        return;
      default:
        break;
    }
    ReceiveTree& t = tree(cmd);
    t.next_command();
    commands_++;
    if (held_.held) {
      const bool truncated_to_it = cmd.cmd == SendCmd::TRUNCATE && cmd.path == held_.path && cmd.size == held_.data.size();
      flush_held(truncated_to_it);
      if (truncated_to_it) return;
    }
    if (pending_) {
      if (cmd.cmd == SendCmd::RENAME && cmd.path == pending_->path) {
        create(t, *pending_, cmd.path_to, cmd.index);
        pending_.reset();
        return;
      }
      flush_pending();
    }
    if (is_create(cmd.cmd)) {
      pending_ = PendingCreate{cmd.cmd, cmd.index, std::string(cmd.path), std::string(cmd.path_link), cmd.mode, cmd.rdev};
      return;
    }
    apply(t, cmd);
  }

  // Applies the held WRITE (on an emptied file when @empty_first); its errors name it.
  void flush_held(bool empty_first = false) {
    if (!held_.held) return;
    held_.held = false;
    try {
      int fd = tree_->file(held_.path);
      if (empty_first && ::ftruncate(fd, 0) < 0) throw_errno("ftruncate", tree_->show(held_.path));
      write_all(fd, held_.data.data(), held_.data.size(), 0, tree_->show(held_.path));
    } catch (const SysError& e) {
      throw ReceiveSysError(e, held_.index, static_cast<uint16_t>(SendCmd::WRITE));
    }
  }

  static void write_all(int fd, const uint8_t* p, size_t left, uint64_t at, const std::string& path) {
    while (left > 0) {
      ssize_t n = ::pwrite(fd, p, left, static_cast<off_t>(at));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno("pwrite", path);
      }
      p += n;
      left -= static_cast<size_t>(n);
      at += static_cast<uint64_t>(n);
    }
  }

  void flush_pending() {
    if (!pending_) return;
    PendingCreate p = std::move(*pending_);
    pending_.reset();
    try {
      create(*tree_, p, p.path, p.index);
    } catch (const SysError& e) {
      throw ReceiveSysError(e, p.index, static_cast<uint16_t>(p.cmd));
    }
  }

  // Creates the entry of @p at @where; at a final name that is taken (a
  // rename over an existing entry), creates it at its orphan name and renames.
  void create(ReceiveTree& t, const PendingCreate& p, std::string_view where, uint64_t index) {
    (void)index;
    EntryRef ref = t.entry(where);
    if (ref.name.empty()) throw_error(EEXIST, "create", t.show(where));
    int r = 0;
    Fd file;
    switch (p.cmd) {
      case SendCmd::MKFILE: {
        int fd = ::openat(ref.dir, ref.name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        r = fd < 0 ? -1 : 0;
        if (fd >= 0) file = Fd(fd);
        break;
      }
      case SendCmd::MKDIR:
        r = ::mkdirat(ref.dir, ref.name.c_str(), 0700);
        break;
      case SendCmd::MKNOD:
        r = ::mknodat(ref.dir, ref.name.c_str(), static_cast<mode_t>(p.mode & S_IFMT), static_cast<dev_t>(p.rdev));
        break;
      case SendCmd::MKFIFO:
        r = ::mkfifoat(ref.dir, ref.name.c_str(), 0600);
        break;
      case SendCmd::MKSOCK:
        r = ::mknodat(ref.dir, ref.name.c_str(), S_IFSOCK | 0600, 0);
        break;
      default:  // SYMLINK
        r = ::symlinkat(p.link.c_str(), ref.dir, ref.name.c_str());
        break;
    }
    if (r < 0) {
      if (errno == EEXIST && where != p.path) {
        create(t, p, p.path, index);  // the orphan name, then a real rename over the taken one
        rename(t, p.path, where, p.cmd == SendCmd::MKDIR);
        return;
      }
      throw_errno(p.cmd == SendCmd::MKFILE ? "open" : p.cmd == SendCmd::MKDIR ? "mkdirat"
                  : p.cmd == SendCmd::SYMLINK ? "symlinkat" : "mknodat", t.show(where));
    }
    if (file) t.set_file(std::string(where), std::move(file));
  }

  void rename(ReceiveTree& t, std::string_view from, std::string_view to, std::optional<bool> is_dir = std::nullopt) {
    EntryRef a = t.entry(from);
    EntryRef b = t.entry(to);
    if (a.name.empty() || b.name.empty()) throw_error(EINVAL, "renameat", t.show(from), t.show(to));
    bool was_dir = false;
    if (is_dir) {
      was_dir = *is_dir;
    } else {
      struct stat st;
      if (::fstatat(a.dir, a.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("stat", t.show(from));
      was_dir = S_ISDIR(st.st_mode);
    }
    if (::renameat(a.dir, a.name.c_str(), b.dir, b.name.c_str()) < 0) throw_errno("renameat", t.show(from), t.show(to));
    t.renamed(from, to, was_dir);
  }

  void set_flags(int fd, uint64_t btrfs_flags, const std::string& path) {
    int flags = 0;
    if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
      if (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP) return;
      throw_errno("FS_IOC_GETFLAGS", path);
    }
    int wanted = flags;
    for (const FlagMap& m : kFlagMap) wanted = (btrfs_flags & m.btrfs) ? (wanted | m.fs) : (wanted & ~m.fs);
    if (wanted == flags) return;
    // Some combinations the kernel refuses (NOCOW with compression, NOCOW on
    // a non-empty file): btrfs receive ignores FILEATTR altogether.
    if (::ioctl(fd, FS_IOC_SETFLAGS, &wanted) < 0 && errno != EINVAL && errno != EOPNOTSUPP && errno != ENOTTY) {
      throw_errno("FS_IOC_SETFLAGS", path);
    }
  }

  void apply(ReceiveTree& t, const SendCommand& cmd) {
    const std::string_view path = cmd.path;
    switch (cmd.cmd) {
      case SendCmd::RENAME:
        rename(t, path, cmd.path_to);
        return;
      case SendCmd::LINK: {
        // PATH is the new name, PATH_LINK the existing file.
        EntryRef existing = t.entry(cmd.path_link);
        EntryRef added = t.entry(path);
        if (existing.name.empty() || added.name.empty()) invalid(cmd, "cannot link the subvolume root");
        if (::linkat(existing.dir, existing.name.c_str(), added.dir, added.name.c_str(), 0) < 0) {
          throw_errno("linkat", t.show(cmd.path_link), t.show(path));
        }
        return;
      }
      case SendCmd::UNLINK: {
        EntryRef ref = t.entry(path);
        if (ref.name.empty()) invalid(cmd, "cannot unlink the subvolume root");
        if (::unlinkat(ref.dir, ref.name.c_str(), 0) < 0) throw_errno("unlinkat", t.show(path));
        t.unlinked(path);
        return;
      }
      case SendCmd::RMDIR: {
        EntryRef ref = t.entry(path);
        if (ref.name.empty()) invalid(cmd, "cannot remove the subvolume root");
        if (::unlinkat(ref.dir, ref.name.c_str(), AT_REMOVEDIR) < 0) throw_errno("rmdir", t.show(path));
        t.removed_dir(path);
        return;
      }
      case SendCmd::WRITE:
        space_->charge(cmd.data.size, cmd);
        if (cmd.file_offset == 0 && cmd.data.size > 0 && cmd.data.size <= kMaxHeldWrite) {
          held_.held = true;
          held_.index = cmd.index;
          held_.path.assign(path);
          held_.data.assign(cmd.data.data, cmd.data.data + cmd.data.size);
          return;
        }
        write_all(t.file(path), cmd.data.data, cmd.data.size, cmd.file_offset, t.show(path));
        return;
      case SendCmd::CLONE:
        clone(t, cmd);
        return;
      case SendCmd::TRUNCATE:
        if (::ftruncate(t.file(path), static_cast<off_t>(cmd.size)) < 0) throw_errno("ftruncate", t.show(path));
        return;
      case SendCmd::FALLOCATE:
        // Every mode but a hole punch allocates (KEEP_SIZE too: beyond the end of the file).
        if ((cmd.fallocate_mode & FALLOC_FL_PUNCH_HOLE) == 0) space_->charge(cmd.size, cmd);
        if (::fallocate(t.file(path), static_cast<int>(cmd.fallocate_mode), static_cast<off_t>(cmd.file_offset),
                        static_cast<off_t>(cmd.size)) < 0) {
          throw_errno("fallocate", t.show(path));
        }
        return;
      case SendCmd::ENCODED_WRITE:
        encoded_write(t, cmd);
        return;
      case SendCmd::CHOWN: {
        // chown(2) clears setuid/setgid, and when only the owner changed the
        // kernel sends no CHMOD after it: put the bits back (btrfs receive
        // loses them). A CHMOD that follows sets the mode anyway.
        MetaTarget target = MetaTarget::held(t, path);
        struct stat before;
        target.stat(before);
        target.chown(static_cast<uid_t>(cmd.uid), static_cast<gid_t>(cmd.gid));
        if ((before.st_mode & (S_ISUID | S_ISGID)) != 0 && !S_ISLNK(before.st_mode) && !S_ISDIR(before.st_mode)) {
          target.chmod(before.st_mode & 07777);
        }
        return;
      }
      case SendCmd::CHMOD: {
        MetaTarget target = MetaTarget::held(t, path);
        if (target.fd() < 0) {
          struct stat st;
          target.stat(st);
          // chmod(2) would follow a symlink; the kernel never sends CHMOD for one.
          if (S_ISLNK(st.st_mode)) throw_error(EOPNOTSUPP, "chmod", t.show(path));
        }
        target.chmod(static_cast<mode_t>(cmd.mode & 07777));
        return;
      }
      case SendCmd::UTIMES: {
        struct timespec times[2] = {{static_cast<time_t>(cmd.atime.sec), static_cast<long>(cmd.atime.nsec)},
                                    {static_cast<time_t>(cmd.mtime.sec), static_cast<long>(cmd.mtime.nsec)}};
        MetaTarget::held(t, path).set_times(times);
        return;
      }
      case SendCmd::SET_XATTR:
      case SendCmd::REMOVE_XATTR: {
        std::string name(cmd.xattr_name);
        MetaTarget target = MetaTarget::opened(t, path);
        if (cmd.cmd == SendCmd::SET_XATTR) {
          target.set_xattr(name, cmd.xattr_data.data, cmd.xattr_data.size);
        } else {
          target.remove_xattr(name);
        }
        return;
      }
      case SendCmd::FILEATTR: {
        MetaTarget target = MetaTarget::opened(t, path);
        const int fd = target.fd();
        if (fd < 0) return;  // no flags on symlinks and special files
        const uint64_t attr = path.empty() ? cmd.fileattr & ~kProtectFlags : cmd.fileattr;
        set_flags(fd, attr & ~kProtectFlags, t.show(path));
        if ((attr & kProtectFlags) != 0) {  // they would block what follows: at END
          if (deferred_flags_.size() < kMaxDeferredFlags) {
            deferred_flags_.emplace_back(fd_dup(fd, t.show(path)), attr);
          } else {
            set_flags(fd, attr, t.show(path));
          }
        }
        return;
      }
      default:
        throw StreamError(kStreamUnsupported, "command not supported by this receiver", cmd.index,
                          static_cast<uint16_t>(cmd.cmd), std::string(path), cmd.offset);
    }
  }

  void clone(ReceiveTree& t, const SendCommand& cmd) {
    int dest = t.file(cmd.path);
    Fd source;
    int src = -1;
    if (cmd.clone_uuid == uuid_) {
      // From the subvolume being received (the kernel adds the send root to the clone sources).
      src = t.current_file(cmd.clone_path);
      if (src < 0) {
        EntryRef ref = t.entry(cmd.clone_path);
        src = open_regular(ref.dir, ref.name, t.show(cmd.clone_path), source);
      }
    } else {
      int root = sources_->find(cmd.clone_uuid, cmd.clone_ctransid, "ERR_RECEIVE_CLONE_SOURCE", cmd.index,
                                static_cast<uint16_t>(cmd.cmd));
      ReceiveTree other(fd_dup(root, "clone source"), "clone source " + uuid_string(cmd.clone_uuid));
      EntryRef ref = other.entry(cmd.clone_path);
      if (ref.name.empty()) invalid(cmd, "clone source is a directory");
      src = open_regular(ref.dir, ref.name, other.show(cmd.clone_path), source);
    }
    file_clone_range args{};
    args.src_fd = src;
    args.src_offset = cmd.clone_offset;
    args.src_length = cmd.clone_len;
    args.dest_offset = cmd.file_offset;
    if (::ioctl(dest, FICLONERANGE, &args) == 0) return;
    // A range the filesystem cannot share (unaligned, NOCOW against COW): copy it.
    if (errno != EINVAL && errno != EXDEV && errno != EOPNOTSUPP) throw_errno("FICLONERANGE", t.show(cmd.path));
    struct stat st;
    if (::fstat(src, &st) < 0) throw_errno("fstat", t.show(cmd.clone_path));
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    space_->charge(std::min<uint64_t>(cmd.clone_len, size > cmd.clone_offset ? size - cmd.clone_offset : 0), cmd);
    copy_range(src, dest, cmd.clone_offset, cmd.clone_len, cmd.file_offset, t.show(cmd.path));
  }

  // A clone source must be a regular file, told before it is opened: a
  // stream may have made a device node or a FIFO there, and opening a device
  // can act on it. (The sources are read-only snapshots, or the subvolume
  // being received, which only this stream writes: nothing swaps the name
  // between the look and the open; the fstat after checks again.)
  static int open_regular(int dir, const std::string& name, const std::string& path, Fd& holder) {
    struct stat before;
    if (::fstatat(dir, name.c_str(), &before, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("stat", path);
    if (!S_ISREG(before.st_mode)) throw_error(EINVAL, "open", path);
    int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOATIME);
    if (fd < 0) throw_errno("open", path);
    holder = Fd(fd);
    struct stat st;
    if (::fstat(fd, &st) < 0) throw_errno("fstat", path);
    if (!S_ISREG(st.st_mode)) throw_error(EINVAL, "open", path);
    return fd;
  }

  static void copy_range(int src, int dest, uint64_t from, uint64_t len, uint64_t to, const std::string& path) {
    std::vector<uint8_t> buf(std::min<uint64_t>(len, 1 << 20));
    while (len > 0) {
      ssize_t n = ::pread(src, buf.data(), std::min<uint64_t>(len, buf.size()), static_cast<off_t>(from));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno("pread", path);
      }
      if (n == 0) break;  // past the source's end: the kernel never asks for that
      write_all(dest, buf.data(), static_cast<size_t>(n), to, path);
      from += static_cast<uint64_t>(n);
      to += static_cast<uint64_t>(n);
      len -= static_cast<uint64_t>(n);
    }
  }

  void encoded_write(ReceiveTree& t, const SendCommand& cmd) {
    if (cmd.encryption != 0) {
      throw StreamError(kStreamUnsupported, "encrypted extents are not supported", cmd.index,
                        static_cast<uint16_t>(cmd.cmd), std::string(cmd.path), cmd.offset);
    }
    if (cmd.unencoded_len == 0 || cmd.unencoded_len > kMaxUnencoded ||
        cmd.unencoded_offset + cmd.unencoded_file_len > cmd.unencoded_len || cmd.unencoded_file_len == 0) {
      invalid(cmd, "encoded extent lengths are inconsistent");
    }
    // What the file gets: the extent as it is, or decompressed (the fallback).
    space_->charge(std::max<uint64_t>(cmd.data.size, cmd.unencoded_file_len), cmd);
    int fd = t.file(cmd.path);
    if (!options_.force_decompress) {
      btrfs_ioctl_encoded_io_args args{};
      struct iovec iov{const_cast<uint8_t*>(cmd.data.data), cmd.data.size};
      args.iov = &iov;
      args.iovcnt = 1;
      args.offset = static_cast<int64_t>(cmd.file_offset);
      args.len = cmd.unencoded_file_len;
      args.unencoded_len = cmd.unencoded_len;
      args.unencoded_offset = cmd.unencoded_offset;
      args.compression = cmd.compression;
      if (::ioctl(fd, BTRFS_IOC_ENCODED_WRITE, &args) >= 0) return;
      // What btrfs receive also falls back on: the kernel cannot take this extent as it is.
      if (errno != ENOTTY && errno != EINVAL && errno != ENOSPC && errno != EOPNOTSUPP) {
        throw_errno("BTRFS_IOC_ENCODED_WRITE", t.show(cmd.path));
      }
    }
    std::vector<uint8_t> plain;
    try {
      plain = extent_decompress(cmd.compression, cmd.data.data, cmd.data.size, cmd.unencoded_len);
    } catch (const SysError& e) {
      if (e.err == EINVAL) invalid(cmd, "compressed data is corrupt (" + e.path + ")");
      throw;
    }
    write_all(fd, plain.data() + cmd.unencoded_offset, cmd.unencoded_file_len, cmd.file_offset, t.show(cmd.path));
  }

  SendStreamReader& reader_;
  ReceiveOptions& options_;
  AllowedDir dest_;
  std::optional<ReceiveSources> sources_;
  std::optional<ReceiveSpace> space_;
  std::optional<ReceiveTree> tree_;
  std::optional<PendingCreate> pending_;
  HeldWrite held_;
  std::vector<std::pair<Fd, uint64_t>> deferred_flags_;
  std::string name_, temp_;
  bool temp_exists_ = false;
  uint64_t count_ = 0, commands_ = 0, ctransid_ = 0, end_index_ = 0;
  std::array<uint8_t, 16> uuid_{};
};

}  // namespace

std::vector<ReceivedSubvol> receive(ByteSource& source, ReceiveOptions& options) {
  SendStreamReader reader(source);
  Receiver receiver(reader, options);
  return receiver.run();
}

}  // namespace bv::core

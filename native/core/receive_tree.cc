#include "receive_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "sys_error.h"

namespace bv::core {

namespace {

// Enough for any tree's working set; a bigger one only costs re-opens.
constexpr size_t kMaxCachedDirs = 512;

bool under(std::string_view path, std::string_view dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
}

}  // namespace

void ReceiveTree::next_command() {
  if (dirs_.size() > kMaxCachedDirs) dirs_.clear();
}

std::string ReceiveTree::show(std::string_view path) const {
  return path.empty() ? root_path_ : root_path_ + "/" + std::string(path);
}

int ReceiveTree::dir(std::string_view path) {
  if (path.empty()) return root_.get();
  std::string key(path);
  auto it = dirs_.find(key);
  if (it != dirs_.end()) return it->second.get();
  Fd fd = openat2_beneath(root_.get(), key, O_RDONLY | O_DIRECTORY);
  if (!fd) throw_errno("openat2", show(path));
  return dirs_.emplace(std::move(key), std::move(fd)).first->second.get();
}

EntryRef ReceiveTree::entry(std::string_view path) {
  if (path.empty()) return {root_.get(), ""};
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {root_.get(), std::string(path)};
  return {dir(path.substr(0, slash)), std::string(path.substr(slash + 1))};
}

int ReceiveTree::current_file(std::string_view path) const {
  return file_ && file_path_ == path ? file_.get() : -1;
}

int ReceiveTree::file(std::string_view path) {
  int current = current_file(path);
  if (current >= 0) return current;
  close_file();
  EntryRef ref = entry(path);
  if (ref.name.empty()) throw_error(EISDIR, "open", show(path));
  struct stat st;
  if (::fstatat(ref.dir, ref.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("stat", show(path));
  // Writing opens the file: never open a FIFO (blocks) or a device (side effects).
  if (!S_ISREG(st.st_mode)) throw_error(S_ISDIR(st.st_mode) ? EISDIR : EINVAL, "open", show(path));
  int fd = ::openat(ref.dir, ref.name.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOATIME);
  if (fd < 0) throw_errno("open", show(path));
  Fd owned(fd);
  struct stat check;
  if (::fstat(fd, &check) < 0) throw_errno("fstat", show(path));
  if (check.st_ino != st.st_ino || !S_ISREG(check.st_mode)) throw_error(EINVAL, "open", show(path));
  set_file(std::string(path), std::move(owned));
  return file_.get();
}

void ReceiveTree::set_file(std::string path, Fd fd) {
  file_path_ = std::move(path);
  file_ = std::move(fd);
}

void ReceiveTree::close_file() {
  file_.reset();
  file_path_.clear();
}

void ReceiveTree::renamed(std::string_view from, std::string_view to, bool was_dir) {
  if (file_) {
    if (file_path_ == from) {
      file_path_ = std::string(to);  // the fd follows its inode
    } else if (file_path_ == to) {
      close_file();  // its name now belongs to another inode
    } else if (was_dir && under(file_path_, from)) {
      file_path_ = std::string(to) + file_path_.substr(from.size());
    }
  }
  if (was_dir) dirs_.clear();  // cached paths below it moved
}

void ReceiveTree::unlinked(std::string_view path) {
  if (file_ && file_path_ == path) close_file();
}

void ReceiveTree::removed_dir(std::string_view path) {
  dirs_.erase(std::string(path));
}

}  // namespace bv::core

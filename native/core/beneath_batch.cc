#include "beneath_batch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <numeric>

#include "path.h"

namespace bv::core {

namespace {

void put_u8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }

void put_u16(std::string& out, uint16_t v) {
  char b[2] = {static_cast<char>(v & 0xff), static_cast<char>(v >> 8)};
  out.append(b, 2);
}

void put_u32(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; i++) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}

void put_u64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 8);
}

// "dir/name" as {"dir", "name"}; "name" as {"", "name"}.
std::pair<std::string, std::string> split_last(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {std::string(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

void pack_stat(std::string& out, const EntryStat& st) {
  put_u32(out, st.mode);
  put_u32(out, st.uid);
  put_u32(out, st.gid);
  put_u32(out, static_cast<uint32_t>(std::min<uint64_t>(st.nlink, UINT32_MAX)));
  put_u64(out, st.size);
  put_u64(out, static_cast<uint64_t>(st.mtime));
  put_u64(out, st.ino);
  put_u64(out, st.dev);
}

PackedListing dir_list_packed_at(int dirfd, const std::string& path, const std::string& shown) {
  DirListing list = dir_list_beneath_at(dirfd, path, shown);
  std::vector<size_t> order(list.entries.size());
  std::iota(order.begin(), order.end(), 0);
  // std::string compares as memcmp does (unsigned bytes, a prefix first): Buffer.compare's order.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return list.entries[a].name < list.entries[b].name; });
  PackedListing out;
  pack_stat(out.self, list.self);
  size_t bytes = 0;
  for (const ListedEntry& e : list.entries) bytes += kPackedStatBytes + 1 + e.name.size() + (S_ISLNK(e.stat.mode) ? 2 + e.target.size() : 0);
  out.entries.reserve(bytes);
  for (size_t i : order) {
    const ListedEntry& e = list.entries[i];
    // A name is at most 255 bytes (NAME_MAX), a target read into 4096 bytes: both fit their length fields.
    if (e.name.empty() || e.name.size() > 255 || e.target.size() > 0xffff) continue;
    pack_stat(out.entries, e.stat);
    put_u8(out.entries, static_cast<uint8_t>(e.name.size()));
    out.entries.append(e.name);
    if (S_ISLNK(e.stat.mode)) {
      put_u16(out.entries, static_cast<uint16_t>(e.target.size()));
      out.entries.append(e.target);
    }
    out.count++;
  }
  return out;
}

FilesRead files_read_beneath(int rootfd, const std::vector<std::string>& paths, size_t max_bytes, size_t max_file) {
  FilesRead out;
  for (const std::string& path : paths) {
    if (out.done > 0 && out.bytes >= max_bytes) break;
    try {
      FileRead r = file_read_beneath_at(rootfd, path, max_file, path);
      if (r.fd >= 0) {
        out.big = std::move(r);
        break;
      }
      put_u8(out.packed, r.complete ? 0 : 1);
      pack_stat(out.packed, r.stat);
      put_u32(out.packed, static_cast<uint32_t>(r.data.size()));
      out.packed.append(r.data);
      out.bytes += r.data.size();
    } catch (const SysError& e) {
      std::string code = errno_name(e.err);
      std::string message = e.what();
      if (message.size() > 0xffff) message.resize(0xffff);
      put_u8(out.packed, 2);
      put_u8(out.packed, static_cast<uint8_t>(std::min<size_t>(code.size(), 255)));
      out.packed.append(code, 0, 255);
      put_u16(out.packed, static_cast<uint16_t>(message.size()));
      out.packed.append(message);
    }
    out.done++;
  }
  return out;
}

std::vector<FileWritten> files_write_beneath(int rootfd, const std::vector<FileToWrite>& files, std::string_view data,
                                             const std::string& temp_prefix, const std::string& shown_root) {
  std::vector<FileWritten> out(files.size());
  std::optional<std::string> current;  // the directory `dir` holds (or failed to open: `dir_error`)
  Fd dir;
  std::optional<SysError> dir_error;
  for (size_t i = 0; i < files.size(); i++) {
    const FileToWrite& f = files[i];
    const std::string shown = path_join(shown_root, f.path);
    auto [parent, name] = split_last(f.path);
    if (!current || *current != parent) {
      current = parent;
      dir.reset();
      dir_error.reset();
      try {
        dir = entry_open_beneath_at(rootfd, parent, BeneathOpen::directory, 0, parent);
      } catch (const SysError& e) {
        dir_error = e;
      }
    }
    if (dir_error) {
      out[i].error = SysError(dir_error->err, dir_error->syscall, shown);
      continue;
    }
    if (f.offset > data.size() || f.length > data.size() - f.offset) {
      out[i].error = SysError(EINVAL, "write", shown);
      continue;
    }
    try {
      const std::string_view content = data.substr(f.offset, f.length);
      std::optional<ino_t> ino = f.replace ? file_write_at(dir.get(), name, content, f.meta, true, temp_prefix, shown, f.expect, false, f.want_ino)
                                           : file_create_at(dir.get(), name, content, f.meta, temp_prefix, shown, f.want_ino);
      if (ino) out[i].ino = static_cast<uint64_t>(*ino);
    } catch (const SysError& e) {
      out[i].error = e;
    }
  }
  return out;
}

void dir_make_beneath(int rootfd, const std::string& path, uid_t uid, gid_t gid, mode_t mode, const std::string& shown) {
  auto [parent, name] = split_last(path);
  if (name.empty() || name == "." || name == "..") throw_error(EINVAL, "mkdirat", shown);
  Fd dir = entry_open_beneath_at(rootfd, parent, BeneathOpen::directory, 0, shown);
  if (::mkdirat(dir.get(), name.c_str(), 0700) < 0) throw_errno("mkdirat", shown);
  Fd made = entry_open_beneath_at(dir.get(), name, BeneathOpen::directory, 0, shown);
  if (::fchown(made.get(), uid, gid) < 0) throw_errno("fchown", shown);
  if (::fchmod(made.get(), mode & 07777) < 0) throw_errno("fchmod", shown);
}

}  // namespace bv::core

#include "receive_sources.h"

#include <linux/btrfs_tree.h>
#include <sys/stat.h>

#include "path.h"
#include "subvolume.h"
#include "tree_search.h"
#include "uuid.h"

namespace bv::core {

ReceiveSources::ReceiveSources(int fs_fd, const std::vector<const AllowedDir*>& allowed) : fs_fd_(fs_fd) {
  for (const AllowedDir* dir : allowed) {
    struct stat st;
    if (::fstat(dir->fd.get(), &st) < 0) throw_errno("fstat", dir->path);
    places_.push_back({subvolume_id_fd(dir->fd.get(), dir->path), st.st_ino, dir});
  }
}

int ReceiveSources::find(const std::array<uint8_t, 16>& uuid, uint64_t ctransid, const char* not_found_code,
                         uint64_t command, uint16_t command_type) {
  auto hit = cache_.find(uuid);
  if (hit != cache_.end()) return hit->second.get();
  std::string outside;   // a candidate not in an allowed directory
  std::string refused;   // why the last candidate in an allowed directory was not taken
  for (UuidKind kind : {UuidKind::ReceivedSubvol, UuidKind::Subvol}) {
    for (uint64_t id : uuid_tree_lookup(fs_fd_, uuid, kind, places_.front().dir->path)) {
      auto item = root_item_of(fs_fd_, id, places_.front().dir->path);
      auto ref = root_backref_of(fs_fd_, id, places_.front().dir->path);
      if (!item || item->refs == 0 || !ref) continue;  // deleted, waiting for the cleaner
      const Place* place = nullptr;
      for (const Place& p : places_) {
        if (p.subvol_id == ref->parent_id && p.inode == ref->dir_id) place = &p;
      }
      if (place == nullptr) {
        outside = "subvolume " + std::to_string(id) + " has it but is not in an allowed directory";
        continue;
      }
      std::string path = path_join(place->dir->path, ref->name);
      if ((item->flags & BTRFS_ROOT_SUBVOL_RDONLY) == 0) {
        refused = path + " is not read-only";
        continue;
      }
      if (kind == UuidKind::ReceivedSubvol) {
        if (item->stransid != ctransid) {
          refused = path + " was received from another state of it (stransid " + std::to_string(item->stransid) +
                    ", the stream wants " + std::to_string(ctransid) + ")";
          continue;
        }
        if (item->ctransid > item->rtransid) {
          refused = path + " was modified after it was received (ctransid " + std::to_string(item->ctransid) +
                    " > rtransid " + std::to_string(item->rtransid) + ")";
          continue;
        }
      } else if (item->ctransid != ctransid && item->ctransid > item->otransid) {
        // Matched by its own UUID: the stream was made from it at that very
        // ctransid (same filesystem), or from a copy received elsewhere (whose
        // ctransid is that host's, not ours): then only a snapshot unchanged
        // since it was taken (ctransid <= otransid) holds what the copy holds.
        refused = path + " was modified after it was taken (ctransid " + std::to_string(item->ctransid) +
                  " > otransid " + std::to_string(item->otransid) + ") and is not the state the stream wants";
        continue;
      }
      Fd fd = dir_open_at(place->dir->fd.get(), ref->name, path);
      if (subvolume_id_fd(fd.get(), path) != id) continue;  // renamed meanwhile: not the one we checked
      return cache_.emplace(uuid, std::move(fd)).first->second.get();
    }
  }
  std::string wanted = uuid_string(uuid) + " at ctransid " + std::to_string(ctransid);
  if (!refused.empty()) {
    throw StreamError("ERR_RECEIVE_PARENT_MODIFIED", "no usable subvolume " + wanted + ": " + refused, command,
                      command_type, "", 0);
  }
  throw StreamError(not_found_code,
                    "no subvolume " + wanted + " in the allowed directories" + (outside.empty() ? "" : " (" + outside + ")"),
                    command, command_type, "", 0);
}

}  // namespace bv::core

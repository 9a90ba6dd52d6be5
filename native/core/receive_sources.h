// Where an incremental stream's parent and its clone sources come from: a
// subvolume found by UUID in the UUID tree (received UUID first, then its
// own, as btrfs receive), accepted only when it sits directly in one of the
// directories the caller allows, is read-only, and, when matched by received
// UUID, was received from the very state the stream names (stransid equals
// the stream's clone ctransid) and not modified since (ctransid <= rtransid);
// when matched by its own UUID, is at the very ctransid the stream names or
// unchanged since it was taken (ctransid <= otransid: a copy of it received
// elsewhere, which names the copy's ctransid, holds the same).
// btrfs receive checks none of this.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fd.h"
#include "receive.h"

namespace bv::core {

class ReceiveSources {
 public:
  /** @fs_fd: any fd on the filesystem (the destination); @allowed: the directories to take from. */
  ReceiveSources(int fs_fd, const std::vector<const AllowedDir*>& allowed);

  /**
   * find() - the root fd of the subvolume the stream calls @uuid at @ctransid
   * (cached). Throws StreamError @not_found_code when no subvolume of an
   * allowed directory matches, ERR_RECEIVE_PARENT_MODIFIED when one matches
   * by UUID but fails the checks (the reason says which), both naming
   * @command and @command_type.
   */
  int find(const std::array<uint8_t, 16>& uuid, uint64_t ctransid, const char* not_found_code, uint64_t command,
           uint16_t command_type);

 private:
  struct Place {
    uint64_t subvol_id;
    uint64_t inode;
    const AllowedDir* dir;
  };

  int fs_fd_;
  std::vector<Place> places_;
  std::map<std::array<uint8_t, 16>, Fd> cache_;
};

}  // namespace bv::core

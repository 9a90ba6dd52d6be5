// Reading btrfs metadata trees directly (BTRFS_IOC_TREE_SEARCH_V2): the
// root tree (which subvolume is inside which, read-only flags, UUIDs) and
// the UUID tree (find a subvolume by UUID or received UUID). Everything is
// addressed by subvolume id, never by path, so what a volume's content does
// to its directories cannot steer these lookups. Needs CAP_SYS_ADMIN.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bv::core {

/** The little-endian integer at @p (tree items are little-endian and unaligned). */
inline uint64_t le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
inline uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }
inline uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

/** One item found by tree_search(): its key and its raw (little-endian) bytes. */
struct TreeItem {
  uint64_t objectid;
  uint32_t type;
  uint64_t offset;
  const uint8_t* data;
  uint32_t len;
};

/** The key range of a search, inclusive at both ends. */
struct TreeKeyRange {
  uint64_t tree_id;
  uint64_t min_objectid, max_objectid;
  uint32_t min_type, max_type;
  uint64_t min_offset, max_offset;
  /** Only leaves written in this transaction or later (BTRFS_IOC_TREE_SEARCH's filter). */
  uint64_t min_transid = 0;
};

/**
 * tree_search() - call @visit for every item in @range, in key order, in
 * large batches. @visit returns false to stop early. Throws SysError
 * (BTRFS_IOC_TREE_SEARCH_V2): EPERM without CAP_SYS_ADMIN, ENOTTY off btrfs.
 */
void tree_search(int fd, const TreeKeyRange& range, const std::string& path,
                 const std::function<bool(const TreeItem&)>& visit);

/** A ROOT_REF item: subvolume @child_id sits in directory @dir_id of its parent as @name. */
struct RootRef {
  uint64_t parent_id;
  uint64_t child_id;
  uint64_t dir_id;
  std::string name;
};

/** root_refs_of() - the subvolumes directly inside subvolume @parent_id (ROOT_REF items). */
std::vector<RootRef> root_refs_of(int fd, uint64_t parent_id, const std::string& path);

/** root_backref_of() - where subvolume @id sits (its ROOT_BACKREF), or nullopt when it is gone. */
std::optional<RootRef> root_backref_of(int fd, uint64_t id, const std::string& path);

/** What the ROOT_ITEM of a subvolume says (fields after generation_v2 are 0 on very old items). */
struct RootItemInfo {
  uint64_t id = 0;
  uint64_t generation = 0;
  uint64_t flags = 0;  // BTRFS_ROOT_SUBVOL_RDONLY = bit 0
  uint32_t refs = 0;   // 0: deleted, waiting for the cleaner
  std::array<uint8_t, 16> uuid{}, parent_uuid{}, received_uuid{};
  uint64_t ctransid = 0, otransid = 0, stransid = 0, rtransid = 0;
  uint64_t ctime_sec = 0, otime_sec = 0, stime_sec = 0, rtime_sec = 0;
  uint32_t ctime_nsec = 0, otime_nsec = 0, stime_nsec = 0, rtime_nsec = 0;
};

/** root_item_of() - the ROOT_ITEM of subvolume @id, or nullopt when there is none. */
std::optional<RootItemInfo> root_item_of(int fd, uint64_t id, const std::string& path);

/**
 * root_items_each() - call @visit(i, item) for the ROOT_ITEM of each
 * subvolume ids[i] (@ids ascending, no duplicates), in order, in few
 * batched searches instead of one per id: ids near each other share one
 * search of the key range between them. An id without a ROOT_ITEM is
 * skipped. Note: a ROOT_ITEM in the tree is the one of the last commit plus
 * what was written since (flags, received UUID: those ioctls write it at
 * once); ctransid and ctime of a subvolume changed since the last commit are
 * still the committed ones, where GET_SUBVOL_INFO reads the kernel's
 * in-memory copy.
 */
void root_items_each(int fd, const std::vector<uint64_t>& ids, const std::string& path,
                     const std::function<void(size_t, const RootItemInfo&)>& visit);

/** Which UUID a UUID-tree lookup matches: the subvolume's own or its received UUID. */
enum class UuidKind : uint8_t { Subvol = 251, ReceivedSubvol = 252 };

/** uuid_tree_lookup() - the ids of the subvolumes whose @kind UUID is @uuid (usually one). */
std::vector<uint64_t> uuid_tree_lookup(int fd, const std::array<uint8_t, 16>& uuid, UuidKind kind,
                                       const std::string& path);

}  // namespace bv::core

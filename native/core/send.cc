#include "send.h"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>

#include "flags.h"
#include "path.h"
#include "subvolume.h"
#include "sys_error.h"

namespace bv::core {

uint32_t send_protocol_max() {
  FILE* f = std::fopen("/sys/fs/btrfs/features/send_stream_version", "re");
  if (f == nullptr) return 1;  // before Linux 5.10: v1 only
  unsigned v = 1;
  if (std::fscanf(f, "%u", &v) != 1 || v == 0) v = 1;
  std::fclose(f);
  return v;
}

void send_stream(SendOptions& options, int out_fd) {
  auto require_readonly = [](int fd, const std::string& path) {
    subvolume_require_root_fd(fd, "BTRFS_IOC_SEND", path);
    if (!subvolume_get_readonly_fd(fd, path)) throw_error(EPERM, "BTRFS_IOC_SEND", path);  // the kernel's answer, made explicit
  };
  require_readonly(options.snapshot.get(), options.snapshot_path);
  std::vector<__u64> clones;
  uint64_t parent = 0;
  if (options.parent) {
    require_readonly(options.parent.get(), options.parent_path);
    parent = subvolume_id_fd(options.parent.get(), options.parent_path);
    clones.push_back(parent);  // clones from the parent are what make an incremental small
  }
  for (size_t i = 0; i < options.clone_sources.size(); i++) {
    require_readonly(options.clone_sources[i].get(), options.clone_paths[i]);
    clones.push_back(subvolume_id_fd(options.clone_sources[i].get(), options.clone_paths[i]));
  }
  btrfs_ioctl_send_args args{};
  args.send_fd = out_fd;
  args.parent_root = parent;
  args.clone_sources_count = clones.size();
  args.clone_sources = clones.empty() ? nullptr : clones.data();
  uint32_t max = send_protocol_max();
  uint32_t protocol = options.protocol == 0 ? max : options.protocol;
  if (protocol > max) throw_error(EPROTO, "BTRFS_IOC_SEND", options.snapshot_path);
  if (options.compressed && protocol < 2) throw_error(EINVAL, "BTRFS_IOC_SEND", options.snapshot_path);
  // The VERSION flag exists since 5.16; without it the stream is v1.
  if (protocol > 1) {
    args.flags |= BTRFS_SEND_FLAG_VERSION;
    args.version = protocol;
  }
  if (options.compressed) args.flags |= BTRFS_SEND_FLAG_COMPRESSED;
  if (options.no_data) args.flags |= BTRFS_SEND_FLAG_NO_FILE_DATA;
  if (::ioctl(options.snapshot.get(), BTRFS_IOC_SEND, &args) < 0) throw_errno("BTRFS_IOC_SEND", options.snapshot_path);
}

}  // namespace bv::core

/*
 * Fixture maker for bench/list: COUNT read-only snapshots of SOURCE named
 * PREFIX<FIRST>..PREFIX<FIRST+COUNT-1> in DEST_DIR, with the bare ioctl.
 * Each BTRFS_IOC_SNAP_CREATE_V2 waits for a transaction commit under the
 * lock of DEST_DIR, so threads would not help (measured: 150-200/s with 1,
 * 8 or 32 threads into one directory), and a read-only snapshot cannot be
 * renamed into place from elsewhere (EROFS): one loop, as fast as commits go.
 * usage: make-snapshots SOURCE DEST_DIR PREFIX FIRST COUNT
 * Prints the snapshots made per second.
 */
#include <fcntl.h>
#include <linux/btrfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s SOURCE DEST_DIR PREFIX FIRST COUNT\n", argv[0]);
    return 2;
  }
  int src = open(argv[1], O_RDONLY | O_DIRECTORY);
  int dst = open(argv[2], O_RDONLY | O_DIRECTORY);
  if (src < 0 || dst < 0) {
    perror("open");
    return 1;
  }
  long first = atol(argv[4]);
  long count = atol(argv[5]);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = first; i < first + count; i++) {
    struct btrfs_ioctl_vol_args_v2 args;
    memset(&args, 0, sizeof(args));
    args.fd = src;
    args.flags = BTRFS_SUBVOL_RDONLY;
    snprintf(args.name, sizeof(args.name), "%s%ld", argv[3], i);
    if (ioctl(dst, BTRFS_IOC_SNAP_CREATE_V2, &args) < 0) {
      perror("BTRFS_IOC_SNAP_CREATE_V2");
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("%.0f\n", count / secs);
  return 0;
}

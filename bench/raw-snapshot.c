/*
 * The physical limit for bench/snapshot: read-only snapshot + delete cycles
 * issued with the bare ioctls in a tight loop, no runtime in between.
 * usage: raw-snapshot SOURCE_SUBVOL DEST_DIR CYCLES   (prints elapsed seconds)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s SOURCE DEST_DIR CYCLES\n", argv[0]);
    return 2;
  }
  int src = open(argv[1], O_RDONLY | O_DIRECTORY);
  int dst = open(argv[2], O_RDONLY | O_DIRECTORY);
  if (src < 0 || dst < 0) {
    perror("open");
    return 1;
  }
  long cycles = atol(argv[3]);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < cycles; i++) {
    struct btrfs_ioctl_vol_args_v2 snap;
    memset(&snap, 0, sizeof(snap));
    snap.fd = src;
    snap.flags = BTRFS_SUBVOL_RDONLY;
    snprintf(snap.name, sizeof(snap.name), "raw@%ld", i);
    if (ioctl(dst, BTRFS_IOC_SNAP_CREATE_V2, &snap) < 0) {
      perror("BTRFS_IOC_SNAP_CREATE_V2");
      return 1;
    }
    struct btrfs_ioctl_vol_args del;
    memset(&del, 0, sizeof(del));
    snprintf(del.name, sizeof(del.name), "raw@%ld", i);
    if (ioctl(dst, BTRFS_IOC_SNAP_DESTROY, &del) < 0) {
      perror("BTRFS_IOC_SNAP_DESTROY");
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.6f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}

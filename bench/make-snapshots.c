/*
 * Fixture maker for bench/list: COUNT read-only snapshots of SOURCE named
 * PREFIX<FIRST>..PREFIX<FIRST+COUNT-1> in DEST_DIR, with the bare ioctl from
 * THREADS threads. Each BTRFS_IOC_SNAP_CREATE_V2 waits for a transaction
 * commit, and snapshots into one directory are serialised by its lock; so
 * each thread creates its snapshots in a work directory of its own (the
 * snapshots pending at once are then made by one commit) and renames them
 * into DEST_DIR (a rename commits nothing). 100,000 snapshots take minutes
 * instead of the better part of an hour.
 * usage: make-snapshots SOURCE DEST_DIR PREFIX FIRST COUNT THREADS
 */
#include <fcntl.h>
#include <linux/btrfs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_THREADS 256

static int src, dst;
static const char *prefix;
static long first, count;
static atomic_long next;
static atomic_int failed;

static void *worker(void *arg) {
  int work = *(int *)arg;
  for (;;) {
    long i = atomic_fetch_add(&next, 1);
    if (i >= count || atomic_load(&failed)) return NULL;
    struct btrfs_ioctl_vol_args_v2 args;
    memset(&args, 0, sizeof(args));
    args.fd = src;
    args.flags = BTRFS_SUBVOL_RDONLY;
    snprintf(args.name, sizeof(args.name), "%s%ld", prefix, first + i);
    if (ioctl(work, BTRFS_IOC_SNAP_CREATE_V2, &args) < 0) {
      perror("BTRFS_IOC_SNAP_CREATE_V2");
      atomic_store(&failed, 1);
      return NULL;
    }
    if (renameat(work, args.name, dst, args.name) < 0) {
      perror("renameat");
      atomic_store(&failed, 1);
      return NULL;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s SOURCE DEST_DIR PREFIX FIRST COUNT THREADS\n", argv[0]);
    return 2;
  }
  src = open(argv[1], O_RDONLY | O_DIRECTORY);
  dst = open(argv[2], O_RDONLY | O_DIRECTORY);
  if (src < 0 || dst < 0) {
    perror("open");
    return 1;
  }
  prefix = argv[3];
  first = atol(argv[4]);
  count = atol(argv[5]);
  int threads = atoi(argv[6]);
  if (threads < 1 || threads > MAX_THREADS) threads = 1;
  pthread_t tids[MAX_THREADS];
  int works[MAX_THREADS];
  char names[MAX_THREADS][32];
  for (int t = 0; t < threads; t++) {
    snprintf(names[t], sizeof(names[t]), ".make-snapshots.%d", t);
    if (mkdirat(dst, names[t], 0700) < 0 || (works[t] = openat(dst, names[t], O_RDONLY | O_DIRECTORY)) < 0) {
      perror("work directory");
      return 1;
    }
    pthread_create(&tids[t], NULL, worker, &works[t]);
  }
  for (int t = 0; t < threads; t++) {
    pthread_join(tids[t], NULL);
    close(works[t]);
    unlinkat(dst, names[t], AT_REMOVEDIR);
  }
  return atomic_load(&failed) ? 1 : 0;
}

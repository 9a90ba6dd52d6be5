// What interrupted operations leave behind, removed at the daemon's start:
// hidden work subvolumes of create and restore in VOLUMES_PATH, and partial
// received snapshots in SNAPSHOTS_PATH (and TEST_REMOTE_PATH) whose process
// is gone. The volume itself is always whole: each leftover holds new data
// never swapped in, or old data already kept as a snapshot.
import { join } from 'node:path';

import * as btrfs from '../btrfs/index.js';
import { errCode, ignoreMissing } from '../util/err-code.js';
import { readdir, rm } from '../util/fs-async.js';
import { isRunning, pidExists } from '../util/process-stamp.js';
import type { StoreContext } from './context.js';
import { describeNested } from './guards.js';
import { parseReceiveTemp, parseTempName } from './layout.js';
import { dropStaleFromRecords } from './volume-from.js';

/**
 * Removes the leftovers; returns the names removed. One holding nested
 * subvolumes is kept (they were never kept elsewhere) and reported; anything
 * that cannot be cleaned is reported and skipped: nothing a volume contains
 * can stop the daemon from starting. Waits for the volume's lock, so an
 * operation still running in another process finishes first.
 */
export async function recover(c: StoreContext): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(c.layout.paths.volumesPath)) {
    const temp = parseTempName(name);
    if (!temp) continue;
    const path = c.layout.volume(name);
    try {
      await c.locks.with(temp.volume, 'exclusive', async () => {
        if (await btrfs.isSubvolume(path)) {
          const nested = await btrfs.nestedSubvolumes(path);
          if (nested.length > 0) {
            c.logger?.warning(`kept ${path}: left by an interrupted operation, it holds nested subvolumes (${describeNested(nested)}) that exist nowhere else; move them out, then delete it`);
            return;
          }
          await btrfs.deleteSubvolume(path).catch(ignoreMissing);
        } else {
          await rm(path, { recursive: true, force: true });
        }
        removed.push(name);
      });
    } catch (err) {
      c.logger?.error(`cannot remove ${path}, left by an interrupted operation: ${(err as Error).message}; skipped`);
    }
  }
  removed.push(...(await recoverReceives(c)));
  await dropStaleFromRecords(c);
  return removed;
}

/** Partial received subvolumes of processes that are gone (a receive killed half-way). */
async function recoverReceives(c: StoreContext): Promise<string[]> {
  const removed: string[] = [];
  const { snapshotsPath, testRemotePath } = c.layout.paths;
  for (const dir of testRemotePath === undefined ? [snapshotsPath] : [snapshotsPath, testRemotePath]) {
    const names = await readdir(dir).catch((err: unknown) => {
      if (errCode(err) === 'ENOENT') return [] as string[];
      throw err;
    });
    for (const name of names) {
      const temp = parseReceiveTemp(name);
      if (!temp || receiveRunning(temp)) continue;
      const path = join(dir, name);
      try {
        // Immutable or append-only root (what older versions let a stream set): no delete before it is cleared.
        await btrfs.clearImmutable(path).catch(ignoreMissing);
        await btrfs.deleteSubvolume(path).catch(ignoreMissing);
        removed.push(name);
      } catch (err) {
        c.logger?.error(`cannot remove ${path}, left by an interrupted receive: ${(err as Error).message}; skipped`);
      }
    }
  }
  return removed;
}

/**
 * Whether the receive that made a temporary name still runs: its process
 * (same boot, PID and start time) exists. An old-style name with our own
 * PID is not ours any more: we never make those.
 */
function receiveRunning(temp: NonNullable<ReturnType<typeof parseReceiveTemp>>): boolean {
  if ('stamp' in temp) return isRunning(temp.stamp);
  return temp.pid !== process.pid && pidExists(temp.pid);
}

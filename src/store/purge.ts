// Purge: the snapshots of a volume that a retention pattern no longer keeps
// (the original's algorithm, purge-plan.ts), except those replication needs
// (lineage.ts: the parents of the next incrementals), deleted a few at a time
// under the volume's shared lock.
import * as btrfs from '../btrfs/index.js';
import { ignoreMissing } from '../util/err-code.js';
import { forEachLimited } from '../util/limiter.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { readRecord } from './cluster-record.js';
import { replicationKeep } from './lineage.js';
import { validateVolumeName } from './names.js';
import { planPurge } from './purge-plan.js';

export interface PurgeOptions {
  dryRun?: boolean;
  /** Evaluate the pattern at this time instead of now. */
  now?: Date;
}

const DELETE_CONCURRENCY = 4;

/** Deletes what `pattern` does not keep of `volume`'s snapshots; returns the names deleted (or that would be, with dryRun). */
export async function purge(c: StoreContext, volume: string, pattern: string, options: PurgeOptions = {}): Promise<string[]> {
  validateVolumeName(volume);
  // Plan on subvolumes only: a stray directory named like a snapshot would
  // make every purge of the volume fail.
  const plan = async () => {
    const [entries, record] = await Promise.all([btrfs.listSubvolumes(c.layout.paths.snapshotsPath, { prefix: `${volume}@` }), readRecord(c, volume)]);
    const keep = replicationKeep(entries, c.dtFormat);
    // The newest state of a volume that follows its service: the parent of every next incremental, either way.
    if (record?.state) keep.add(record.state.snapshot);
    const now = options.now ?? c.now();
    return planPurge({ names: entries.map((e) => e.name), volume, pattern, now, dtformat: c.dtFormat, keep });
  };
  if (options.dryRun) return plan();
  return c.locks.with(volume, 'shared', async () => {
    const doomed = await plan();
    let deleted = 0;
    try {
      await forEachLimited(doomed, DELETE_CONCURRENCY, async (name) => {
        await btrfs.deleteSubvolume(c.layout.snapshot(name)).catch(ignoreMissing);
        deleted++;
      });
    } catch (err) {
      throw new StoreError('ERR_PURGE_FAILED', `purge of ${volume} stopped after deleting ${deleted} of ${doomed.length} snapshots: ${(err as Error).message}`, { cause: err });
    }
    return doomed;
  });
}

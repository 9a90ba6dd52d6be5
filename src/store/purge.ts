// Purge: the snapshots of a volume that a retention pattern no longer keeps
// (the original's algorithm, purge-plan.ts), except those replication needs
// (lineage.ts: the parents of the next incrementals) and those volumes made
// from them need (volume-from.ts), deleted a few at a time
// under the volume's shared lock. One plan (purge-plan.ts: every snapshot's
// decision and the rule behind it) is what a purge deletes and what
// `purge --explain` prints.
import * as btrfs from '../btrfs/index.js';
import { ignoreMissing } from '../util/err-code.js';
import { forEachLimited } from '../util/limiter.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { readRecord } from './cluster-record.js';
import { replicationHolds, type ReplicationHold } from './lineage.js';
import { validateVolumeName } from './names.js';
import { decidePurge, type Protection, type PurgePlan } from './purge-plan.js';
import { inUseBy, protectedSnapshots } from './volume-from.js';

export interface PurgeOptions {
  dryRun?: boolean;
  /** Evaluate the pattern at this time instead of now. */
  now?: Date;
  /** Told of each snapshot the pattern does not keep but a volume made from it needs (volume-from.ts), and why: kept. */
  onKept?: (snapshot: string, reason: string) => void;
}

const DELETE_CONCURRENCY = 4;

function replicationProtection({ name, role, peer }: ReplicationHold): Protection {
  const why = role === 'marker' ? 'its newest send marker' : role === 'sent' ? 'the newest snapshot sent to it' : 'the newest snapshot received';
  return {
    name,
    reason: `kept for ${peer === null ? 'the sending peer' : `peer ${peer}`}'s next incremental (${why})`,
    rule: { kind: 'replication', role, peer },
  };
}

/**
 * Deletes what `pattern` does not keep of `volume`'s snapshots (nothing with
 * dryRun); returns the plan: every snapshot's decision and why. What is
 * deleted is exactly its DELETE decisions.
 */
export async function purgeWithPlan(c: StoreContext, volume: string, pattern: string, options: PurgeOptions = {}): Promise<PurgePlan> {
  validateVolumeName(volume);
  // Plan on subvolumes only: a stray directory named like a snapshot would
  // make every purge of the volume fail.
  const plan = async () => {
    const [entries, record, used] = await Promise.all([
      btrfs.listSubvolumes(c.layout.paths.snapshotsPath, { prefix: `${volume}@` }),
      readRecord(c, volume),
      protectedSnapshots(c, volume),
    ]);
    // What keeps a snapshot whatever the pattern says, each with why: add
    // anything else that needs snapshots kept here, with a kind of its own.
    const protections = replicationHolds(entries, c.dtFormat).map(replicationProtection);
    // The newest state of a volume that follows its service: the parent of every next incremental, either way.
    if (record?.state) {
      const { snapshot, epoch } = record.state;
      protections.push({ name: snapshot, reason: `the newest state of the cluster volume (epoch ${epoch})`, rule: { kind: 'cluster-state', epoch } });
    }
    // A snapshot a read-only view shows, or an ephemeral volume is reset to.
    for (const [name, volumes] of used) protections.push({ name, reason: inUseBy(volumes), rule: { kind: 'in-use', volumes } });
    const now = options.now ?? c.now();
    const planned = decidePurge({ names: entries.map((e) => e.name), volume, pattern, now, dtformat: c.dtFormat, protections });
    // Kept only because a volume made from it needs it: said why.
    for (const d of planned.decisions) {
      if (d.pattern?.decision === 'DELETE' && d.protections?.every((p) => p.rule.kind === 'in-use')) options.onKept?.(d.name, d.protections[0]!.reason);
    }
    return planned;
  };
  if (options.dryRun) return plan();
  return c.locks.with(volume, 'shared', async () => {
    const planned = await plan();
    const { doomed } = planned;
    let deleted = 0;
    try {
      await forEachLimited(doomed, DELETE_CONCURRENCY, async (name) => {
        await btrfs.deleteSubvolume(c.layout.snapshot(name)).catch(ignoreMissing);
        deleted++;
      });
    } catch (err) {
      throw new StoreError('ERR_PURGE_FAILED', `purge of ${volume} stopped after deleting ${deleted} of ${doomed.length} snapshots: ${(err as Error).message}`, { cause: err });
    }
    return planned;
  });
}

/** Deletes what `pattern` does not keep of `volume`'s snapshots; returns the names deleted (or that would be, with dryRun), in the original's order. */
export async function purge(c: StoreContext, volume: string, pattern: string, options: PurgeOptions = {}): Promise<string[]> {
  return (await purgeWithPlan(c, volume, pattern, options)).doomed;
}

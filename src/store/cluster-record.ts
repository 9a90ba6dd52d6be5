// What this node knows of a volume that follows its service between nodes
// (`-o replicas=`): its options, the newest state it holds (an epoch and the
// snapshot holding it), what the live volume is relative to that state, and
// who holds the volume. Epochs are the volume's own logical clock: each
// release or rpo push of a changed volume makes the next one, and every copy
// of that state, on any node, carries the same epoch and identity. No wall
// clock and no name decides which state is newer. One file per volume in
// the state directory (beside the mount table: trusted, unlike the volume's
// own content), written atomically and durably; only the daemon writes it.
import { join } from 'node:path';

import { writeFileAtomic } from '../btrfs/atomic-file.js';
import { readTextIfAny, rm } from '../util/fs-async.js';
import type { StoreContext } from './context.js';
import type { ClusterOptions } from './create-options.js';
import { StoreError } from './errors.js';
import { lockFileName } from './file-lock.js';

/** A state of the volume: its epoch and the snapshot holding it here. */
export interface ClusterState {
  epoch: number;
  /** The snapshot on this node holding that state. */
  snapshot: string;
  /** ID of that snapshot: the same on every node holding a copy of the state. */
  identity: string;
}

/** Who holds the volume: the node that took it over most recently (the highest term wins). */
export interface Ownership {
  node: string;
  term: number;
  /** When it took it over (ISO time, for messages only). */
  since: string;
}

export interface ClusterRecord {
  version: 1;
  options: ClusterOptions;
  /** The newest state held here; null: none yet (a volume just created). */
  state: ClusterState | null;
  /** The live volume is the state of `epoch` (0: as created) as of `ctransid`; a volume whose ctransid moved since changed here. */
  live: { epoch: number; ctransid: number; snapshot?: string };
  owner: Ownership | null;
  /** Nodes a failover here declared stale: what they wrote after `epoch` was given up. */
  superseded: Array<{ node: string; epoch: number; at: string }>;
  /**
   * Set when a Mount found that the volume changed here and a peer made a
   * newer state meanwhile: both are kept as snapshots here until the user
   * restores one of them (restore.ts then settles it).
   */
  diverged?: { mine: { snapshot: string; ctransid?: number }; theirs: { node: string; epoch: number; snapshot: string; identity: string } } | null;
}

/** The epoch of the newest state held here. */
export const epochOf = (r: ClusterRecord): number => r.state?.epoch ?? 0;

function recordFile(c: StoreContext, volume: string): string {
  return join(c.layout.paths.stateDir, 'cluster', lockFileName(volume).replace(/\.lock$/, '.json'));
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function checkRecord(value: unknown, file: string): ClusterRecord {
  const r = value as Partial<ClusterRecord> | null;
  const ok =
    typeof r === 'object' &&
    r !== null &&
    r.version === 1 &&
    typeof r.options === 'object' &&
    r.options !== null &&
    Array.isArray(r.options.replicas) &&
    typeof r.live === 'object' &&
    r.live !== null &&
    isInt(r.live.epoch) &&
    isInt(r.live.ctransid) &&
    (r.state === null || (typeof r.state === 'object' && isInt(r.state.epoch) && typeof r.state.snapshot === 'string' && typeof r.state.identity === 'string')) &&
    Array.isArray(r.superseded);
  if (!ok) throw new StoreError('ERR_CLUSTER_RECORD', `${file} is not a cluster record: remove it to start the volume's lineage over (it is then only as new as its content)`);
  return r as ClusterRecord;
}

/** The record of `volume`, or null when it follows no service (no replicas, no rpo). */
export async function readRecord(c: StoreContext, volume: string): Promise<ClusterRecord | null> {
  const file = recordFile(c, volume);
  const text = await readTextIfAny(file);
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = null;
  }
  return checkRecord(value, file);
}

/** Replaces the record of `volume` (on disk before it resolves). */
export async function writeRecord(c: StoreContext, volume: string, record: ClusterRecord): Promise<void> {
  await writeFileAtomic(recordFile(c, volume), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600, durable: true, followSymlink: false });
}

/** Removes the record of `volume` (its volume is gone). */
export async function removeRecord(c: StoreContext, volume: string): Promise<void> {
  await rm(recordFile(c, volume), { force: true });
}

const pending = new Map<string, Promise<unknown>>();

/**
 * Reads, changes and writes the record of `volume`, one change at a time in
 * this process (the daemon: the only writer). `change` returns the new
 * record, or null to leave it as it is.
 */
export function updateRecord(c: StoreContext, volume: string, change: (r: ClusterRecord | null) => ClusterRecord | null | Promise<ClusterRecord | null>): Promise<ClusterRecord | null> {
  const key = recordFile(c, volume);
  const run = (pending.get(key) ?? Promise.resolve()).then(async () => {
    const current = await readRecord(c, volume);
    const next = await change(current);
    if (next === null) return current;
    await writeRecord(c, volume, next);
    return next;
  });
  const settled = run.catch(() => undefined);
  pending.set(key, settled);
  void settled.then(() => {
    if (pending.get(key) === settled) pending.delete(key);
  });
  return run;
}

// A volume's recovery point objective (`-o rpo=`), on any volume: whether its
// newest snapshot is older than the rpo (on a replicated volume, the newest
// state this node holds: the holder's pushes are snapshots here too).
import * as btrfs from '../btrfs/index.js';
import { readRecord } from './cluster-record.js';
import type { StoreContext } from './context.js';
import { newestSnapshot, parseSnapshotName } from './names.js';
import { readonlySnapshotNames } from './snapshots.js';

export interface Freshness {
  /** The objective, in seconds. */
  rpo: number;
  /** The newest snapshot of the volume (null: none). */
  newest: string | null;
  /** Its age in seconds (by the date in its name), or null with no snapshot. */
  newestAgeSeconds: number | null;
  /** No snapshot, or the newest older than the rpo. */
  exceeded: boolean;
  /**
   * The live volume changed since the volume's last state (the last snapshot
   * its rpo or a handover took; by committed transactions, so a write of the
   * last ~30 s may not count yet): an exceeded rpo puts only such a change at risk.
   */
  changed: boolean;
}

/** The freshness of `volume` at `now` (ms), or null when it has no rpo. */
export async function volumeFreshness(c: StoreContext, volume: string, now = Date.now()): Promise<Freshness | null> {
  const record = await readRecord(c, volume);
  const rpo = record?.options.rpo;
  if (!record || !rpo) return null;
  const [names, info] = await Promise.all([readonlySnapshotNames(c, volume), btrfs.subvolumeInfo(c.layout.volume(volume))]);
  const newest = newestSnapshot(names, volume, c.dtFormat);
  const date = newest === null ? null : parseSnapshotName(newest, c.dtFormat)?.date ?? null;
  const newestAgeSeconds = date === null ? null : Math.max(0, (now - date.getTime()) / 1000);
  return { rpo, newest, newestAgeSeconds, exceeded: newestAgeSeconds === null || newestAgeSeconds > rpo, changed: info.ctransid !== record.live.ctransid };
}

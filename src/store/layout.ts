// Where things live. Volumes are subvolumes VOLUMES_PATH/<name>; snapshots
// are read-only subvolumes SNAPSHOTS_PATH/<volume>@<timestamp> (send markers
// <volume>@<timestamp>@<host>). Work in progress uses hidden names
// VOLUMES_PATH/.bv-<op>.<volume>.<random>: never a valid volume name, so
// never listed, and removed at the next start if a crash left it behind.
import { randomHex } from '../util/random-hex.js';
import type { ProcessStamp } from '../util/process-stamp.js';
import { join } from 'node:path';

export interface StorePaths {
  volumesPath: string;
  snapshotsPath: string;
  /** TEST_REMOTE_PATH: where requests of the original's test mode put snapshots and live volumes (its leftovers are cleaned too). */
  testRemotePath?: string;
  /** Lock files and the mount table; shared by the CLI and the daemon. */
  stateDir: string;
}

const TEMP = /^\.bv-([a-z]+)\.([A-Za-z0-9][A-Za-z0-9_.-]*)\.([0-9a-f]{12})$/;

/** A hidden work name for operation `op` on `volume`. */
function tempName(op: string, volume: string): string {
  return `.bv-${op}.${volume}.${randomHex(12)}`;
}

const RECEIVE_TEMP = /^\.bv-receive\.(\d+)\.(\d+)\.([0-9a-f]{8})\.\d+\.\d+$/;
// What versions before the start time and boot were added made.
const OLD_RECEIVE_TEMP = /^\.bv-receive\.(\d+)\.\d+\.\d+$/;

/**
 * The process of a temporary received subvolume (btrfs receive()'s default
 * names): `.bv-receive.<pid>.<start>.<boot>.<n>.<k>` gives its stamp, the
 * older `.bv-receive.<pid>.<n>.<k>` its PID only; null for any other name.
 */
export function parseReceiveTemp(name: string): { stamp: ProcessStamp } | { pid: number } | null {
  const m = RECEIVE_TEMP.exec(name);
  if (m) return { stamp: { pid: Number(m[1]), start: m[2]!, boot: m[3]! } };
  const old = OLD_RECEIVE_TEMP.exec(name);
  return old ? { pid: Number(old[1]) } : null;
}

/** The volume a hidden work name belongs to, or null for any other name. */
export function parseTempName(name: string): { op: string; volume: string } | null {
  const m = TEMP.exec(name);
  return m ? { op: m[1]!, volume: m[2]! } : null;
}

export class Layout {
  constructor(readonly paths: StorePaths) {}

  volume(name: string): string {
    return join(this.paths.volumesPath, name);
  }

  snapshot(name: string): string {
    return join(this.paths.snapshotsPath, name);
  }

  temp(op: string, volume: string): string {
    return join(this.paths.volumesPath, tempName(op, volume));
  }

  get locksDir(): string {
    return join(this.paths.stateDir, 'locks');
  }

  get mountsFile(): string {
    return join(this.paths.stateDir, 'mounts.json');
  }
}

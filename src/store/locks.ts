// Per-volume reader/writer locks that hold across processes (the CLI and the
// daemon): one lock file per volume in the store's state directory, through
// the one lock helper (store/file-lock.ts).
import { join } from 'node:path';

import { lockFileName, withFileLock, type LockMode } from './file-lock.js';
import { StoreError } from './errors.js';
import { errCode } from '../util/err-code.js';
import { compareCodePoints } from '../util/code-point.js';

export type { LockMode } from './file-lock.js';

export interface WithLockOptions {
  /** Give up waiting for another process after this many ms (ERR_VOLUME_BUSY). Default 60 s. */
  timeout?: number;
}

/** Locks keyed by volume name, in `dir` (created on first use). */
export class VolumeLocks {
  constructor(readonly dir: string) {}

  /**
   * The lock file of `key`. A key too long for a file name (a volume of up
   * to 255 bytes made by the original) is shortened with a hash of it.
   */
  file(key: string): string {
    return join(this.dir, lockFileName(key));
  }

  /** Runs `fn` while holding the lock of `key` in `mode`. */
  async with<T>(key: string, mode: LockMode, fn: () => Promise<T>, options: WithLockOptions = {}): Promise<T> {
    try {
      return await withFileLock(this.file(key), mode, fn, { timeout: options.timeout ?? 60_000 });
    } catch (err) {
      if (errCode(err) === 'ERR_LOCK_TIMEOUT') {
        throw new StoreError('ERR_VOLUME_BUSY', `${key}: busy, another buttervolume process is working on it`, { cause: err });
      }
      throw err;
    }
  }

  /**
   * Runs `fn` holding several locks, taken in name order (no deadlock
   * between two operations that take several); a key named twice is locked
   * once, exclusive if either asks for it.
   */
  withAll<T>(wanted: ReadonlyArray<readonly [string, LockMode]>, fn: () => Promise<T>): Promise<T> {
    const modes = new Map<string, LockMode>();
    for (const [key, mode] of wanted) modes.set(key, modes.get(key) === 'exclusive' ? 'exclusive' : mode);
    const sorted = [...modes].sort(([a], [b]) => compareCodePoints(a, b));
    const run = (i: number): Promise<T> => (i === sorted.length ? fn() : this.with(sorted[i]![0], sorted[i]![1], () => run(i + 1)));
    return run(0);
  }
}

// Per-volume reader/writer locks that hold across processes: a fair FIFO
// lock inside this process (so waiters are served in order and no polling
// happens between our own requests), then an flock on a lock file shared
// with every other buttervolume process (the CLI and the daemon).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { lock as flock, type Lock } from '../btrfs/index.js';
import { StoreError } from './errors.js';

export type LockMode = 'shared' | 'exclusive';

interface Waiter {
  mode: LockMode;
  grant: () => void;
}

/** A fair reader/writer lock for one key inside this process. */
class LocalRwLock {
  private readers = 0;
  private writer = false;
  private readonly queue: Waiter[] = [];

  acquire(mode: LockMode): Promise<void> {
    return new Promise((grant) => {
      this.queue.push({ mode, grant });
      this.drain();
    });
  }

  release(mode: LockMode): void {
    if (mode === 'exclusive') this.writer = false;
    else this.readers--;
    this.drain();
  }

  get idle(): boolean {
    return !this.writer && this.readers === 0 && this.queue.length === 0;
  }

  // Grant from the head while compatible; never let a later reader pass a
  // waiting writer (no starvation of restore/remove by a stream of snapshots).
  private drain(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (head.mode === 'exclusive') {
        if (this.writer || this.readers > 0) return;
        this.writer = true;
      } else {
        if (this.writer) return;
        this.readers++;
      }
      this.queue.shift();
      head.grant();
    }
  }
}

export interface WithLockOptions {
  /** Give up waiting for another process after this many ms (ERR_VOLUME_BUSY). Default 60 s. */
  timeout?: number;
}

/** Locks keyed by volume name, in `dir` (created on first use). */
export class VolumeLocks {
  private readonly local = new Map<string, LocalRwLock>();
  private dirReady: Promise<unknown> | undefined;

  constructor(readonly dir: string) {}

  /** Runs `fn` while holding the lock of `key` in `mode`. */
  async with<T>(key: string, mode: LockMode, fn: () => Promise<T>, options: WithLockOptions = {}): Promise<T> {
    let local = this.local.get(key);
    if (!local) {
      local = new LocalRwLock();
      this.local.set(key, local);
    }
    await local.acquire(mode);
    let held: Lock | undefined;
    try {
      this.dirReady ??= mkdir(this.dir, { recursive: true, mode: 0o700 });
      await this.dirReady;
      const file = join(this.dir, `${key}.lock`);
      try {
        held = await flock(file, { shared: mode === 'shared', timeout: options.timeout ?? 60_000 });
      } catch (err) {
        if ((err as { code?: string }).code === 'ETIMEDOUT') {
          throw new StoreError('ERR_VOLUME_BUSY', `${key}: busy, another buttervolume process is working on it`, { cause: err });
        }
        throw err;
      }
      return await fn();
    } finally {
      held?.release();
      local.release(mode);
      if (local.idle) this.local.delete(key);
    }
  }
}

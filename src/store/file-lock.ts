// The one cross-process lock of buttervolume: a lock FILE shared by every
// buttervolume process (daemon, CLI, scheduler pass). Inside a process,
// waiters for one file queue in a fair reader/writer lock (served in order,
// no polling between our own callers); the holder of the local lock then
// takes the flock, waiting for other processes up to a timeout. The lock
// file's directory is created on first use (and again after a failure).
import { dirname } from 'node:path';

import { lock as flock, type Lock } from '../btrfs/index.js';
import { CodedError } from '../util/coded-error.js';
import { mkdir } from '../util/fs-async.js';
import { nameErrorClass } from '../util/error-name.js';
import { errCode } from '../util/err-code.js';

export type LockMode = 'shared' | 'exclusive';

/** Another process held the lock longer than the caller waits. */
export class LockTimeoutError extends CodedError<'ERR_LOCK_TIMEOUT'> {
  constructor(readonly file: string, options?: { cause?: unknown }) {
    super('ERR_LOCK_TIMEOUT', `timed out waiting for the lock ${file} held by another process`, options);
  }
}

nameErrorClass(LockTimeoutError, 'LockTimeoutError');

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

const locals = new Map<string, LocalRwLock>();
const dirs = new Map<string, Promise<unknown>>();

// Created once per directory; a failure is not remembered, so the next
// caller tries again once its cause is gone.
function ensureDir(dir: string, mode: number): Promise<unknown> {
  let ready = dirs.get(dir);
  if (!ready) {
    ready = mkdir(dir, { recursive: true, mode });
    dirs.set(dir, ready);
    ready.catch(() => dirs.delete(dir));
  }
  return ready;
}

/**
 * `<prefix><key>.lock`, or, when that is too long for a file name (a volume
 * of up to 255 bytes made by the original), the key cut and followed by a
 * hash of it.
 */
export function lockFileName(key: string, prefix = ''): string {
  const name = `${prefix}${key}.lock`;
  if (Buffer.byteLength(name) <= 255) return name;
  return `${prefix}${key.slice(0, 180)}.${fnv1a(key)}.lock`;
}

/** 64-bit FNV-1a of `text`, in hex: a stable short name, not a secret (no node:crypto on the CLI's start-up). */
function fnv1a(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(text)) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  return hash.toString(16).padStart(16, '0');
}

export interface WithLockOptions {
  /** How long to wait for another process, in ms (default 60 s): then LockTimeoutError. */
  timeout?: number;
  /** Mode of the lock file's directory if it has to be created (default 0700). */
  dirMode?: number;
}

/**
 * Runs `fn` while holding the lock file `file` in `mode`.
 * @throws LockTimeoutError when another process holds it past the timeout;
 *   the errors of creating the directory or opening the file.
 */
export async function withFileLock<T>(file: string, mode: LockMode, fn: () => Promise<T>, options: WithLockOptions = {}): Promise<T> {
  let local = locals.get(file);
  if (!local) {
    local = new LocalRwLock();
    locals.set(file, local);
  }
  await local.acquire(mode);
  let held: Lock | undefined;
  try {
    const take = () => flock(file, { shared: mode === 'shared', timeout: options.timeout ?? 60_000 });
    try {
      // The directory is made only when the lock file cannot be created in
      // it: where it exists (nearly always), no trip to the pool for mkdir.
      held = await take().catch(async (err: NodeJS.ErrnoException) => {
        // ENOTDIR: something that is not a directory is in the way; mkdir says what.
        if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') throw err;
        await ensureDir(dirname(file), options.dirMode ?? 0o700);
        return take();
      });
    } catch (err) {
      if (errCode(err) === 'ETIMEDOUT') throw new LockTimeoutError(file, { cause: err });
      throw err;
    }
    return await fn();
  } finally {
    held?.release();
    local.release(mode);
    if (local.idle) locals.delete(file);
  }
}

/**
 * Takes the lock file `file` exclusively for as long as the caller keeps it
 * (a daemon's lifetime), or returns null at once when another process holds it.
 */
export async function holdFileLock(file: string): Promise<Lock | null> {
  await ensureDir(dirname(file), 0o700);
  try {
    return await flock(file, { wait: false });
  } catch (err) {
    if (errCode(err) === 'EAGAIN') return null;
    throw err;
  }
}

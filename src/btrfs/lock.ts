import { setTimeout as sleep } from 'node:timers/promises';

import { checkOptions, checkPath } from './args.js';
import { native } from './binding.js';
import { BtrfsError } from './errors.js';
import type { Lock, LockOptions } from './types.js';

const MAX_POLL_MS = 25;

/**
 * Takes an advisory lock (flock) on the file `path`, creating it (mode 0600)
 * if needed. Two processes, or two callers in one process, never hold
 * conflicting locks on one file. While waiting, no thread is blocked: the
 * lock is polled with a short back-off.
 * @throws BtrfsError EAGAIN (busy, with wait: false), ETIMEDOUT, or an open error.
 */
export function lock(path: string, options?: LockOptions): Promise<Lock> {
  const abs = checkPath(path, 'path');
  const opts = checkOptions<LockOptions>(
    options,
    { shared: 'boolean', wait: 'boolean', timeout: 'number', signal: 'AbortSignal' },
    'lock',
  );
  return acquire(abs, opts);
}

async function acquire(abs: string, opts: LockOptions): Promise<Lock> {
  const shared = opts.shared ?? false;
  const deadline = opts.timeout === undefined ? Infinity : Date.now() + opts.timeout;
  for (let delay = 1; ; delay = Math.min(delay * 2, MAX_POLL_MS)) {
    opts.signal?.throwIfAborted();
    const handle = native.tryLock(abs, shared);
    if (handle) {
      return {
        path: abs,
        shared,
        get held() {
          return handle.held;
        },
        release: () => handle.release(),
      };
    }
    if (opts.wait === false) throw BtrfsError.fromCode('EAGAIN', 'flock', abs);
    if (Date.now() >= deadline) throw BtrfsError.fromCode('ETIMEDOUT', 'flock', abs);
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())), undefined, { signal: opts.signal });
  }
}

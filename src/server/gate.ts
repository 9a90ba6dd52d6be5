// Admission of the requests that keep a libuv pool thread busy in an ioctl
// (snapshot, delete, create...). Every fs call of a light request (a Mount
// makes ~18: lock, stat, read and atomic write of the mount table) waits for
// a pool thread too; with all 4 default threads in snapshot ioctls, a Mount
// took 30-100 ms. Admitting at most (pool size - 1) heavy requests keeps one
// thread for everything else: Mount p99 ~10 ms under 4 snapshotting clients.
// Heavy requests for one volume wait their turn before taking a slot, so a
// volume whose lock is held (by a restore, or another process) holds at most
// one slot while its requests wait.
import { Limiter } from '../util/limiter.js';

/** The libuv pool size of this process: UV_THREADPOOL_SIZE as libuv reads it (1..1024), default 4. */
export function threadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number.parseInt(env.UV_THREADPOOL_SIZE ?? '', 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** At most `slots` heavy operations at once (one Limiter), and one at a time per key (volume). */
export class WorkGate {
  private readonly limiter: Limiter;
  private readonly tails = new Map<string, Promise<void>>();

  /** `slots` defaults to the pool size minus one (at least 1). */
  constructor(readonly slots = Math.max(1, threadPoolSize() - 1)) {
    this.limiter = new Limiter(slots);
  }

  /** Runs `task` once the previous tasks of `key` are done and a slot is free. */
  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    let done!: () => void;
    const tail = new Promise<void>((resolve) => (done = resolve));
    this.tails.set(key, tail);
    try {
      await previous;
      return await this.limiter.run(task);
    } finally {
      done();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Heavy operations running now (for tests and diagnostics). */
  get running(): number {
    return this.limiter.active;
  }
}

// Bounded concurrency: at most `max` tasks run at once, the others wait in
// call order. A finishing task hands its slot to the next waiter directly,
// so a task arriving at that instant cannot jump the queue.

/** Runs at most {@link max} tasks at a time, first come first served. */
export class Limiter {
  /** Most tasks allowed to run at once. */
  readonly max: number;
  #active = 0;
  #peak = 0;
  /** Tasks running or waiting. */
  #taken = 0;
  readonly #waiting: Array<() => void> = [];
  readonly #watchers: Array<{ below: number; resolve: () => void }> = [];

  /** @throws RangeError unless `max` is a positive integer. */
  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`concurrency must be a positive integer, got ${max}`);
    this.max = max;
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Most tasks that ever ran at once (tests and diagnostics). */
  get peak(): number {
    return this.#peak;
  }

  /** Tasks running or waiting for a slot. */
  get taken(): number {
    return this.#taken;
  }

  /**
   * Resolves once fewer than `n` tasks are running or waiting: a producer
   * that holds what each task needs in memory waits here before adding more
   * (`n` = 1: once every task has settled).
   */
  whenBelow(n: number): Promise<void> {
    if (this.#taken < n) return Promise.resolve();
    return new Promise((resolve) => this.#watchers.push({ below: n, resolve }));
  }

  /** Runs `task` when a slot is free; settles as `task` does. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    this.#taken += 1;
    try {
      return await this.#run(task);
    } finally {
      this.#taken -= 1;
      for (let i = this.#watchers.length - 1; i >= 0; i--) {
        const w = this.#watchers[i]!;
        if (this.#taken < w.below) {
          this.#watchers.splice(i, 1);
          w.resolve();
        }
      }
    }
  }

  async #run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active < this.max) this.#active += 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve)); // the slot is handed over
    this.#peak = Math.max(this.#peak, this.#active);
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active -= 1;
    }
  }
}

/**
 * Runs `task` over `items`, at most `limit` at a time (one {@link Limiter}).
 * After the first failure no new item starts; the running ones finish; then
 * the first error is thrown (so nothing keeps working once the caller has
 * released what it held, a lock say).
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const limiter = new Limiter(limit);
  let failure: { error: unknown } | undefined;
  await Promise.all(
    items.map((item) =>
      limiter.run(async () => {
        if (failure) return;
        try {
          await task(item);
        } catch (error) {
          failure ??= { error };
        }
      }),
    ),
  );
  if (failure) throw failure.error;
}

// The rpo of volumes in use: each volume mounted here with `-o rpo=` runs its
// `tick` (snapshot and push) every rpo seconds, one at a time per volume,
// until it is let go.

export class RpoTimers {
  readonly #timers = new Map<string, NodeJS.Timeout>();

  /** `tick(volume)` every `seconds`, a tick skipped while the previous one runs; nothing if already started. */
  start(volume: string, seconds: number, tick: (volume: string) => Promise<void>): void {
    if (this.#timers.has(volume)) return;
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void tick(volume).finally(() => (busy = false));
    }, seconds * 1000);
    timer.unref();
    this.#timers.set(volume, timer);
  }

  stop(volume: string): void {
    clearInterval(this.#timers.get(volume));
    this.#timers.delete(volume);
  }

  stopAll(): void {
    for (const t of this.#timers.values()) clearInterval(t);
    this.#timers.clear();
  }
}

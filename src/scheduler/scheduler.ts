// The daemon's scheduler: a pass at start, then one every TIMER seconds.
// A tick only plans and starts jobs; it does not wait for them, so a send
// hanging for an hour never holds back other volumes' jobs at the next
// ticks. Passes never overlap: a tick that comes while the previous one is
// still planning is skipped, and a job still running is not started again.
import { errorText } from './jobs.js';
import { startSchedulerPass, type PassResult, type SchedulerContext } from './pass.js';
import { SchedulerState } from './state.js';

/** Options of a {@link Scheduler}. */
export interface SchedulerOptions extends SchedulerContext {
  /** Milliseconds between ticks (default `config.timerSeconds` seconds). */
  intervalMs?: number;
  /** The clock of each pass (default: the real one). */
  clock?: () => Date;
  /** How long {@link Scheduler.stop} waits for running jobs (default 10 s). */
  stopGraceMs?: number;
}

/** Runs scheduler passes periodically; plugs into the daemon's `onStarted`. */
export class Scheduler {
  readonly #ctx: SchedulerContext & { state: SchedulerState };
  readonly #intervalMs: number;
  readonly #clock: () => Date;
  readonly #stopGraceMs: number;
  #timer: NodeJS.Timeout | undefined;
  #planning: Promise<void> | undefined;
  #stopped = false;
  readonly #running = new Set<Promise<PassResult>>();

  constructor(options: SchedulerOptions) {
    const { intervalMs, clock, stopGraceMs, ...ctx } = options;
    this.#ctx = { ...ctx, state: ctx.state ?? SchedulerState.of(ctx.config) };
    this.#intervalMs = intervalMs ?? ctx.config.timerSeconds * 1000;
    this.#clock = clock ?? (() => new Date());
    this.#stopGraceMs = stopGraceMs ?? 10_000;
  }

  /** The state shared by this scheduler's passes. */
  get state(): SchedulerState {
    return this.#ctx.state;
  }

  /**
   * Start ticking: the first pass right away (a job that never ran runs
   * then), the next ones every interval.
   * @throws Error if already started or stopped.
   */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) throw new Error('scheduler already started or stopped');
    this.#timer = setInterval(() => void this.tick(), this.#intervalMs);
    this.#timer.unref(); // the daemon's server keeps the process alive, not the scheduler
    void this.tick();
  }

  /**
   * One tick: plan a pass and start its due jobs. Resolves when they are
   * started (not finished); false if skipped because the previous tick is
   * still planning or the scheduler is stopped. Never rejects.
   */
  async tick(): Promise<boolean> {
    if (this.#stopped) return false;
    if (this.#planning) {
      this.#ctx.logger.debug('scheduler: the previous pass is still being planned; tick skipped');
      return false;
    }
    const planning = this.#plan();
    this.#planning = planning;
    try {
      await planning;
    } finally {
      this.#planning = undefined;
    }
    return true;
  }

  /**
   * Stop ticking, then wait for the running jobs up to the grace period;
   * jobs still running after it go on in the background. A job killed with
   * the process is not recorded as run, so it runs again after the restart.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#planning;
    if (this.#running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.#stopGraceMs);
    });
    const timedOut = await Promise.race([Promise.all(this.#running).then(() => false), graceOver]);
    clearTimeout(timer);
    if (timedOut) {
      this.#ctx.logger.warning(
        `scheduler stopped with jobs still running after ${this.#stopGraceMs} ms; if the process exits first, they run again after the restart`,
      );
    }
  }

  async #plan(): Promise<void> {
    const { logger } = this.#ctx;
    try {
      const { finished } = await startSchedulerPass(this.#ctx, { now: this.#clock() });
      this.#running.add(finished);
      void finished.then((result) => {
        this.#running.delete(finished);
        const ran = result.jobs.filter((j) => j.ran);
        if (ran.length > 0) logger.debug(`scheduler: pass done, ${ran.length} job(s) ran, ${ran.filter((j) => !j.ok).length} failed`);
      });
    } catch (err) {
      logger.error(`scheduler: pass failed: ${errorText(err)}`);
    }
  }
}

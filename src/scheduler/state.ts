// What the scheduler remembers between passes and across restarts. The
// original kept "last run" in memory only, so every restart re-ran every job
// at once; here each job's last run is persisted in `<SCHEDULE>.state.json`
// (atomic writes, read-modify-write under a lock shared by the daemon and
// `buttervolume scheduled run`). The same object holds the in-process
// bookkeeping: jobs in flight, the per-volume locks and the two pools.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { stateDirOf } from '../store/open.js';
import { isMissing } from '../util/err-code.js';
import { writeFileAtomic } from '../btrfs/atomic-file.js';
import { lockFileName, LockTimeoutError, withFileLock } from '../store/file-lock.js';
import { Limiter } from '../util/limiter.js';

/** Jobs of different volumes running at once, per pool (local btrfs work; talking to peers). */
const SCHEDULER_CONCURRENCY = 4;

/** What is remembered of one job (one schedule line). */
export interface JobRecord {
  /** The pass time (its `now`) of the last run, successful or not. */
  readonly lastRun: Date;
  /** Whether that run succeeded. */
  readonly ok: boolean;
  /** `replicate:` only: a snapshot this job took and has not sent yet (retried, or deleted once superseded). */
  readonly unsent?: string;
}

/** Key of a job: its volume and action, as schedule.csv identifies a line. */
export function jobKey(name: string, action: string): string {
  return JSON.stringify([name, action]);
}

/** Where the state of the schedule file at `schedulePath` is kept. */
export function stateFileOf(schedulePath: string): string {
  return `${schedulePath}.state.json`;
}

/**
 * Whether a job of period `timerMinutes` that last ran at `lastRun` is due at
 * `now`: it never ran, or a period has passed. A last run a period or more in
 * the future (the clock was set back) is not trusted: the job is due, so that
 * a clock step does not silence it for that long.
 */
export function isDue(lastRun: Date | undefined, timerMinutes: number, now: Date): boolean {
  if (lastRun === undefined) return true;
  const elapsed = now.getTime() - lastRun.getTime();
  const period = timerMinutes * 60_000;
  return elapsed >= period || elapsed <= -period;
}

/** When a job of period `timerMinutes` that last ran at `lastRun` runs next, seen at `now`: now when it is due (see {@link isDue}), else a period after its last run. */
export function nextRunAt(lastRun: Date | undefined, timerMinutes: number, now: Date): Date {
  return lastRun === undefined || isDue(lastRun, timerMinutes, now) ? now : new Date(lastRun.getTime() + timerMinutes * 60_000);
}

/** Returned by {@link SchedulerState.withVolume} when another process holds the volume. */
export const VOLUME_BUSY: unique symbol = Symbol('volume busy');

/** Options of {@link SchedulerState}. */
export interface SchedulerStateOptions {
  /** The persisted state file (see {@link stateFileOf}). */
  path: string;
  /** Directory of the lock files shared with other buttervolume processes. */
  lockDir: string;
  /** Size of each pool (default {@link SCHEDULER_CONCURRENCY}). */
  concurrency?: number;
  /** How long a job waits for a volume held by another process before giving up for this pass (default 5 s). */
  volumeWaitMs?: number;
}

interface FileShape {
  version: 1;
  jobs: Array<{ name: string; action: string; lastRun: string; ok: boolean; unsent?: string }>;
}

/**
 * The scheduler's memory: persisted job records, plus in-process bookkeeping.
 * Share one instance between passes (the {@link Scheduler} does); a fresh one
 * per `scheduled run` is fine, the records come from the file.
 */
export class SchedulerState {
  readonly path: string;
  readonly lockDir: string;
  /** Pool for local btrfs work (snapshots, purges). */
  readonly local: Limiter;
  /** Pool for work that talks to peers (send, sync): a slow peer never takes a local slot. */
  readonly remote: Limiter;
  readonly volumeWaitMs: number;
  // Last records seen or written here: if the file cannot be written, this
  // process still does not re-run jobs at every tick.
  readonly #memory = new Map<string, JobRecord>();
  readonly #inFlight = new Set<string>();
  readonly #reported = new Set<string>();

  constructor(options: SchedulerStateOptions) {
    this.path = options.path;
    this.lockDir = options.lockDir;
    this.local = new Limiter(options.concurrency ?? SCHEDULER_CONCURRENCY);
    this.remote = new Limiter(options.concurrency ?? SCHEDULER_CONCURRENCY);
    this.volumeWaitMs = options.volumeWaitMs ?? 5_000;
  }

  /** The state of `config`: next to its schedule file, locks in the store's state directory. */
  static of(config: Config, options: Partial<SchedulerStateOptions> = {}): SchedulerState {
    return new SchedulerState({ path: stateFileOf(config.schedulePath), lockDir: join(stateDirOf(config), 'scheduler'), ...options });
  }

  /**
   * Every job record: the file's, or this process's when newer. An unreadable
   * or malformed file is reported through `logger` and read as empty (jobs
   * then run at the next pass, as if they never ran).
   */
  records(logger: Logger): Promise<Map<string, JobRecord>> {
    return this.#locked(async () => this.#merge(await this.#readFile(logger)));
  }

  /**
   * Record (or, with `undefined`, forget) the job `key`. Kept in memory even
   * when writing the file fails.
   * @throws the write error, for the caller to log.
   */
  update(key: string, record: JobRecord | undefined, logger: Logger): Promise<void> {
    if (record) this.#memory.set(key, record);
    else this.#memory.delete(key);
    return this.#locked(async () => {
      const records = this.#merge(await this.#readFile(logger));
      if (record) records.set(key, record);
      else records.delete(key);
      await this.#write(records);
    });
  }

  /** Forget the records of jobs whose keys are not in `keep` (lines deleted from the schedule). */
  prune(keep: ReadonlySet<string>, logger: Logger): Promise<void> {
    for (const key of this.#memory.keys()) if (!keep.has(key)) this.#memory.delete(key);
    return this.#locked(async () => {
      const records = this.#merge(await this.#readFile(logger));
      const stale = [...records.keys()].filter((k) => !keep.has(k));
      if (stale.length === 0) return;
      for (const k of stale) records.delete(k);
      await this.#write(records);
    });
  }

  /** Mark job `key` as running in this process; false if it already is (a pass never doubles a job). */
  claim(key: string): boolean {
    if (this.#inFlight.has(key)) return false;
    this.#inFlight.add(key);
    return true;
  }

  /** End of a {@link claim}. */
  release(key: string): void {
    this.#inFlight.delete(key);
  }

  /** True the first time `message` is passed: problems of the schedule or state file are logged once, not at every tick. */
  firstReport(message: string): boolean {
    if (this.#reported.has(message)) return false;
    this.#reported.add(message);
    return true;
  }

  /**
   * Run `fn` as the only scheduled job of `volume`: after the jobs of that
   * volume queued before it in this process, and under a file lock that
   * other buttervolume processes respect. Returns {@link VOLUME_BUSY} if
   * another process keeps the volume longer than `volumeWaitMs`.
   */
  async withVolume<T>(volume: string, fn: () => Promise<T>): Promise<T | typeof VOLUME_BUSY> {
    try {
      return await withFileLock(join(this.lockDir, lockFileName(volume, 'volume-')), 'exclusive', fn, { timeout: this.volumeWaitMs });
    } catch (err) {
      if (err instanceof LockTimeoutError) return VOLUME_BUSY;
      throw err;
    }
  }

  // Read-modify-write of the file: one at a time in this process (no lock
  // polling between our own jobs), and under a file lock across processes.
  #locked<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(join(this.lockDir, 'state.lock'), 'exclusive', fn, { timeout: 30_000 });
  }

  #merge(fromFile: Map<string, JobRecord>): Map<string, JobRecord> {
    for (const [key, mine] of this.#memory) {
      const theirs = fromFile.get(key);
      if (!theirs || mine.lastRun > theirs.lastRun) fromFile.set(key, mine);
      else this.#memory.set(key, theirs);
    }
    return fromFile;
  }

  async #readFile(logger: Logger): Promise<Map<string, JobRecord>> {
    const records = new Map<string, JobRecord>();
    const report = (level: 'warning' | 'error', message: string) => {
      if (this.firstReport(message)) logger[level](message);
    };
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if (!isMissing(err)) report('error', `scheduler state ${this.path} cannot be read (${(err as Error).message}); using what this process remembers`);
      return records;
    }
    let jobs: unknown;
    try {
      const parsed = JSON.parse(text) as Partial<FileShape> | null;
      jobs = parsed?.version === 1 ? parsed.jobs : undefined;
    } catch {
      jobs = undefined;
    }
    if (!Array.isArray(jobs)) {
      report('warning', `scheduler state ${this.path} is not a version 1 state file; ignored (jobs run as if they never ran) and rewritten`);
      return records;
    }
    for (const job of jobs as unknown[]) {
      const record = readRecord(job);
      if (record) records.set(jobKey(record.name, record.action), record.record);
      else report('warning', `scheduler state ${this.path}: malformed entry ${JSON.stringify(job)} ignored`);
    }
    return records;
  }

  async #write(records: Map<string, JobRecord>): Promise<void> {
    // Sorted: the file does not depend on the order in which jobs finished.
    const sorted = [...records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const jobs: FileShape['jobs'] = sorted.map(([key, r]) => {
      const [name, action] = JSON.parse(key) as [string, string];
      return { name, action, lastRun: r.lastRun.toISOString(), ok: r.ok, ...(r.unsent ? { unsent: r.unsent } : {}) };
    });
    const file: FileShape = { version: 1, jobs };
    await writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, durable: true });
  }
}

function readRecord(job: unknown): { name: string; action: string; record: JobRecord } | null {
  if (typeof job !== 'object' || job === null) return null;
  const { name, action, lastRun, ok, unsent } = job as Record<string, unknown>;
  const date = typeof lastRun === 'string' ? new Date(lastRun) : undefined;
  if (typeof name !== 'string' || typeof action !== 'string' || !date || Number.isNaN(date.getTime()) || typeof ok !== 'boolean') return null;
  if (unsent !== undefined && typeof unsent !== 'string') return null;
  return { name, action, record: { lastRun: date, ok, ...(unsent ? { unsent } : {}) } };
}

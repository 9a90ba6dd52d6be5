// The schedule file on disk. The original rewrote it in place by truncation,
// so a crash or a concurrent request could lose the whole schedule; here every
// write is a rename of a fully written and fsynced temporary file, and the
// changes made in this process are queued per path.
import { access, open, rename } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import {
  parseSchedule,
  parseScheduleLines,
  renderScheduleChange,
  serializeSchedule,
  type ScheduleChange,
  type ScheduleEntry,
  type ScheduleLine,
  type ScheduleProblem,
} from './schedule-format.js';
import { ScheduleError } from './schedule-rules.js';
import { isMissing } from '../util/err-code.js';
import { syncDirectory, writeFileAtomic } from '../btrfs/atomic-file.js';
import { withFileLock } from '../store/file-lock.js';

export {
  LINE_END,
  applyScheduleChange,
  formatScheduledLine,
  parseSchedule,
  parseScheduleLines,
  renderScheduleChange,
  serializeSchedule,
} from './schedule-format.js';
export type { ScheduleChange, ScheduleEntry, ScheduleLine, ScheduleProblem } from './schedule-format.js';
export {
  MAX_TIMER_MINUTES,
  ScheduleError,
  checkPurgePattern,
  parseAction,
  parseTimer,
  parseTimerColumn,
  validateHost,
  validateVolumeName,
} from './schedule-rules.js';
export type { ScheduleErrorCode, ScheduledAction, TimerChange } from './schedule-rules.js';
export { writeFileAtomic } from '../btrfs/atomic-file.js';

/**
 * Largest schedule file read: 1 MiB holds some 20,000 jobs. A bigger file is
 * refused instead of being parsed in memory (10 MB took the daemon to 1.1 GB).
 */
export const MAX_SCHEDULE_BYTES = 1024 * 1024;

/** The original's Err text while the schedule is globally paused. */
export const SCHEDULE_PAUSED_MESSAGE = 'Schedule is globally paused';

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

/** What {@link ScheduleFile.read} returns. */
export interface ScheduleReadResult {
  /** The usable jobs, in file order. */
  entries: ScheduleEntry[];
  /** Lines ignored, with why, for the caller to log. */
  problems: ScheduleProblem[];
}

/**
 * The schedule.csv at `path`, and its global pause: `<path>.disabled` exists
 * while paused, as in the original. Writes are atomic; `write`, `update`,
 * `pause` and `resume` run one at a time per path within this process (not
 * across processes: only the plugin process writes the schedule).
 */
export class ScheduleFile {
  /** Absolute path of the schedule file. */
  readonly path: string;
  /** Where the file is while the schedule is globally paused. */
  readonly disabledPath: string;

  constructor(path: string) {
    this.path = resolve(path);
    this.disabledPath = `${this.path}.disabled`;
  }

  /**
   * Read the file; a missing file is an empty schedule. Does not look at the
   * pause: while paused the file is missing, so check {@link isPaused} first
   * where the original answered "Schedule is globally paused".
   */
  async read(): Promise<ScheduleReadResult> {
    return parseSchedule(await this.#text());
  }

  /**
   * Read the file as lines in file order, usable or not (what the scheduler
   * reports line by line); a missing file has no lines.
   */
  async readLines(): Promise<ScheduleLine[]> {
    return parseScheduleLines(await this.#text());
  }

  /**
   * Replace the whole file with `entries` (lines that could not be read are
   * not kept: use {@link update} for a change that keeps them).
   * @throws ScheduleError `ERR_INVALID_SCHEDULE` if an entry is invalid.
   */
  async write(entries: readonly ScheduleEntry[]): Promise<void> {
    const text = serializeSchedule(entries);
    return this.#exclusive(() => writeFileAtomic(this.path, text, { durable: true }));
  }

  /**
   * Apply one change of the Schedule endpoint (see `applyScheduleChange`) and
   * write the result; unreadable lines are kept verbatim. Creates the file if
   * missing. Returns the usable entries after the change.
   * @throws ScheduleError `ERR_SCHEDULE_PAUSED` ("Schedule is globally paused"),
   *   `ERR_INVALID_SCHEDULE`, `ERR_SCHEDULED_JOB_NOT_FOUND`.
   */
  update(change: ScheduleChange): Promise<ScheduleEntry[]> {
    return this.#exclusive(async () => {
      if (await exists(this.disabledPath)) throw new ScheduleError('ERR_SCHEDULE_PAUSED', SCHEDULE_PAUSED_MESSAGE);
      const text = renderScheduleChange(parseScheduleLines(await this.#text()), change);
      await writeFileAtomic(this.path, text, { durable: true });
      return parseSchedule(text).entries;
    });
  }

  /**
   * Pause every job: rename the file to `<path>.disabled`. No-op if already
   * paused; without a file, an empty `.disabled` file records the pause.
   */
  pause(): Promise<void> {
    return this.#exclusive(async () => {
      if (await exists(this.disabledPath)) return;
      try {
        await rename(this.path, this.disabledPath);
      } catch (err) {
        if (!isMissing(err)) throw err;
        await writeFileAtomic(this.disabledPath, '', { durable: true });
        return;
      }
      await syncDirectory(dirname(this.path));
    });
  }

  /** Resume: rename `<path>.disabled` back to `path` (replacing it, as the original did). No-op if not paused. */
  resume(): Promise<void> {
    return this.#exclusive(async () => {
      try {
        await rename(this.disabledPath, this.path);
      } catch (err) {
        if (isMissing(err)) return;
        throw err;
      }
      await syncDirectory(dirname(this.path));
    });
  }

  /** Whether the schedule is globally paused (`<path>.disabled` exists). */
  isPaused(): Promise<boolean> {
    return exists(this.disabledPath);
  }

  /**
   * Runs a read-modify-write of the schedule alone: queued within this
   * process, and under an flock of `<path>.lock` against other processes (the
   * CLI's `schedule` and the daemon's Schedule endpoint may change it at once).
   */
  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    return withFileLock(`${this.path}.lock`, 'exclusive', task, { timeout: 30_000, dirMode: 0o755 });
  }

  async #text(): Promise<string> {
    let handle;
    try {
      handle = await open(this.path, 'r');
    } catch (err) {
      if (isMissing(err)) return '';
      throw err;
    }
    try {
      // Bounded read: the size is checked on the open file, and a file that
      // grows meanwhile is still cut at the limit + 1 byte and refused.
      const { size } = await handle.stat();
      const buf = Buffer.alloc(Math.min(size, MAX_SCHEDULE_BYTES) + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length === buf.length) break;
      }
      if (length > MAX_SCHEDULE_BYTES) {
        throw new ScheduleError(
          'ERR_INVALID_SCHEDULE',
          `schedule file ${this.path} is larger than ${MAX_SCHEDULE_BYTES} bytes (the limit, some 20,000 jobs): not read`,
        );
      }
      return buf.toString('utf8', 0, length);
    } finally {
      await handle.close();
    }
  }
}

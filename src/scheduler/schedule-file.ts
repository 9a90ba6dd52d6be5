// The schedule file on disk. The original rewrote it in place by truncation,
// so a crash or a concurrent request could lose the whole schedule; here every
// write is a rename of a fully written and fsynced temporary file, and the
// changes made in this process are queued per path.
import { randomBytes } from 'node:crypto';
import { access, mkdir, open, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import {
  parseSchedule,
  parseScheduleLines,
  renderScheduleChange,
  serializeSchedule,
  type ScheduleChange,
  type ScheduleEntry,
  type ScheduleProblem,
} from './schedule-format.js';
import { ScheduleError } from './schedule-rules.js';

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

/** The original's Err text while the schedule is globally paused. */
export const SCHEDULE_PAUSED_MESSAGE = 'Schedule is globally paused';

// One queue per absolute path, shared by every ScheduleFile of this process.
const queues = new Map<string, Promise<unknown>>();

function enqueue<T>(path: string, task: () => Promise<T>): Promise<T> {
  const run = (queues.get(path) ?? Promise.resolve()).then(task);
  const tail = run.catch(() => undefined);
  queues.set(path, tail);
  void tail.then(() => {
    if (queues.get(path) === tail) queues.delete(path);
  });
  return run;
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

// Some filesystems refuse fsync on a directory (EINVAL): the rename is then as durable as it gets.
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  } finally {
    await handle.close();
  }
}

/**
 * Replace `path` with `text` atomically: write a temporary file in the same
 * directory, fsync it, rename it over `path`, fsync the directory. A symbolic
 * link at `path` is followed (its target is replaced, the link kept), and the
 * mode of an existing file is kept. The parent directory is created if missing.
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  let target = path;
  try {
    target = await realpath(path);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  const dir = dirname(target);
  await mkdir(dir, { recursive: true });
  let mode: number | undefined;
  try {
    mode = (await stat(target)).mode & 0o7777;
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx', 0o644);
    try {
      await handle.writeFile(text, 'utf8');
      if (mode !== undefined) await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dir);
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
   * Replace the whole file with `entries` (lines that could not be read are
   * not kept: use {@link update} for a change that keeps them).
   * @throws ScheduleError `ERR_INVALID_SCHEDULE` if an entry is invalid.
   */
  async write(entries: readonly ScheduleEntry[]): Promise<void> {
    const text = serializeSchedule(entries);
    return enqueue(this.path, () => writeFileAtomic(this.path, text));
  }

  /**
   * Apply one change of the Schedule endpoint (see `applyScheduleChange`) and
   * write the result; unreadable lines are kept verbatim. Creates the file if
   * missing. Returns the usable entries after the change.
   * @throws ScheduleError `ERR_SCHEDULE_PAUSED` ("Schedule is globally paused"),
   *   `ERR_INVALID_SCHEDULE`, `ERR_SCHEDULED_JOB_NOT_FOUND`.
   */
  update(change: ScheduleChange): Promise<ScheduleEntry[]> {
    return enqueue(this.path, async () => {
      if (await exists(this.disabledPath)) throw new ScheduleError('ERR_SCHEDULE_PAUSED', SCHEDULE_PAUSED_MESSAGE);
      const text = renderScheduleChange(parseScheduleLines(await this.#text()), change);
      await writeFileAtomic(this.path, text);
      return parseSchedule(text).entries;
    });
  }

  /**
   * Pause every job: rename the file to `<path>.disabled`. No-op if already
   * paused; without a file, an empty `.disabled` file records the pause.
   */
  pause(): Promise<void> {
    return enqueue(this.path, async () => {
      if (await exists(this.disabledPath)) return;
      try {
        await rename(this.path, this.disabledPath);
      } catch (err) {
        if (!isMissing(err)) throw err;
        await writeFileAtomic(this.disabledPath, '');
        return;
      }
      await syncDirectory(dirname(this.path));
    });
  }

  /** Resume: rename `<path>.disabled` back to `path` (replacing it, as the original did). No-op if not paused. */
  resume(): Promise<void> {
    return enqueue(this.path, async () => {
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

  async #text(): Promise<string> {
    try {
      return await readFile(this.path, 'utf8');
    } catch (err) {
      if (isMissing(err)) return '';
      throw err;
    }
  }
}

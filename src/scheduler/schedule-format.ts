// The schedule.csv format of the original, and the Schedule endpoint's rules
// for changing it. Pure: text in, text out.
//
//   db,snapshot,60,True
//   db,"synchronize:node2,node3",60,True
//   db,purge:4h:1d:2w:2y,1440          <- 3 columns (3.10 and older): active
import { formatCsvRow, readCsvRecords } from './csv.js';
import { ScheduleError, parseAction, parseTimer, parseTimerColumn, validateVolumeName } from './schedule-rules.js';

/** One scheduled job: a line of schedule.csv. */
export interface ScheduleEntry {
  /** Volume name. */
  readonly name: string;
  /** `snapshot`, `replicate:<host>`, `purge:<pattern>` or `synchronize:<host>[,<host>...]`. */
  readonly action: string;
  /** Minutes between two runs. */
  readonly timer: number;
  /** False when paused (`Active` column `False`). */
  readonly active: boolean;
}

/** A line of the file that could not be used, for the caller to log. */
export interface ScheduleProblem {
  /** 1-based line number. */
  readonly line: number;
  /** Why the line is ignored (one line of text). */
  readonly error: string;
  /** The line as written. */
  readonly text: string;
}

/** A change asked of the Schedule endpoint (its JSON `Name`, `Action`, `Timer`). */
export interface ScheduleChange {
  readonly name: string;
  readonly action: string;
  /** Minutes, or `0`/`delete`, `pause`, `resume`. */
  readonly timer: string | number;
}

/** A line of the file: a usable entry, or one kept verbatim with the reason it is ignored. */
export type ScheduleLine =
  | { readonly kind: 'entry'; readonly line: number; readonly entry: ScheduleEntry }
  | { readonly kind: 'invalid'; readonly line: number; readonly error: string; readonly raw: string; readonly fields: readonly string[] };

/** Line terminator written. Python's csv writes `\r\n`; both are read by either side. */
export const LINE_END = '\n';

const keyOf = (name: string, action: string): string => JSON.stringify([name, action]);

function entryFromFields(fields: readonly string[]): ScheduleEntry {
  if (fields.length < 3 || fields.length > 4) {
    throw new ScheduleError('ERR_INVALID_SCHEDULE', `expected 3 or 4 columns (Name,Action,Timer,Active), found ${fields.length}`);
  }
  const [name, action, timer, activeText = ''] = fields as [string, string, string, string?];
  validateVolumeName(name);
  parseAction(action);
  const minutes = parseTimerColumn(timer);
  // Empty: a 3-column line, or one the original rewrote with an empty Active.
  const active = /^(true)?$/i.test(activeText) ? true : /^false$/i.test(activeText) ? false : undefined;
  if (active === undefined) {
    throw new ScheduleError('ERR_INVALID_SCHEDULE', `Active must be True or False, found ${JSON.stringify(activeText)}`);
  }
  return Object.freeze({ name, action, timer: minutes, active });
}

/**
 * Read schedule.csv text line by line. A line that cannot be used (bad
 * column count, name, action, timer or Active, unterminated quote, or a
 * second line for the same name and action) is returned as `invalid`, with
 * its text, so that rewriting the file can keep it.
 */
export function parseScheduleLines(text: string): ScheduleLine[] {
  const seen = new Map<string, number>();
  return readCsvRecords(text).map((record): ScheduleLine => {
    const { line, raw, fields } = record;
    let error = record.error;
    if (error === undefined) {
      try {
        const entry = entryFromFields(fields);
        const key = keyOf(entry.name, entry.action);
        const first = seen.get(key);
        if (first === undefined) {
          seen.set(key, line);
          return { kind: 'entry', line, entry };
        }
        error = `same volume and action as line ${first}; ignored`;
      } catch (err) {
        if (!(err instanceof ScheduleError)) throw err;
        error = err.message;
      }
    }
    return { kind: 'invalid', line, error, raw, fields };
  });
}

/**
 * Parse schedule.csv text (no header; `Name,Action,Timer[,Active]`). Invalid
 * lines never make the file unusable: they are left out of `entries` and
 * reported in `problems`.
 */
export function parseSchedule(text: string): { entries: ScheduleEntry[]; problems: ScheduleProblem[] } {
  const entries: ScheduleEntry[] = [];
  const problems: ScheduleProblem[] = [];
  for (const l of parseScheduleLines(text)) {
    if (l.kind === 'entry') entries.push(l.entry);
    else problems.push(Object.freeze({ line: l.line, error: l.error, text: l.raw }));
  }
  return { entries, problems };
}

function formatEntry(entry: ScheduleEntry): string {
  validateVolumeName(entry.name);
  parseAction(entry.action);
  parseTimerColumn(String(entry.timer));
  return formatCsvRow([entry.name, entry.action, String(entry.timer), entry.active ? 'True' : 'False']);
}

/**
 * Write entries as schedule.csv text: one `Name,Action,Timer,Active` line each
 * (`Active` is `True`/`False` as Python writes booleans), CSV-quoted like
 * Python's csv module, each line ended by {@link LINE_END}.
 * @throws ScheduleError `ERR_INVALID_SCHEDULE` if an entry is invalid (nothing invalid is ever written).
 */
export function serializeSchedule(entries: readonly ScheduleEntry[]): string {
  return entries.map((e) => formatEntry(e) + LINE_END).join('');
}

/**
 * The Schedule endpoint's semantics, keyed by (name, action): a timer of `0`
 * (or `delete`) removes the entry if present; `pause`/`resume` set `active`
 * on an existing entry; digits add an active entry, or replace one in place.
 * Returns a new array; `entries` is not modified.
 * @throws ScheduleError `ERR_INVALID_SCHEDULE` for a bad timer, or a bad name or action to add;
 *   `ERR_SCHEDULED_JOB_NOT_FOUND` to pause or resume a job that is not scheduled.
 */
export function applyScheduleChange(entries: readonly ScheduleEntry[], change: ScheduleChange): ScheduleEntry[] {
  const { name, action } = change;
  const timer = parseTimer(change.timer);
  const index = entries.findIndex((e) => e.name === name && e.action === action);
  const next = [...entries];
  switch (timer.kind) {
    case 'delete':
      // No validation: whatever is written must stay deletable.
      if (index >= 0) next.splice(index, 1);
      return next;
    case 'pause':
    case 'resume': {
      const existing = entries[index];
      if (!existing) {
        throw new ScheduleError(
          'ERR_SCHEDULED_JOB_NOT_FOUND',
          `there is no scheduled job ${JSON.stringify(action)} for volume ${JSON.stringify(name)} to ${timer.kind}`,
        );
      }
      next[index] = Object.freeze({ ...existing, active: timer.kind === 'resume' });
      return next;
    }
    case 'set': {
      validateVolumeName(name);
      parseAction(action);
      const entry = Object.freeze({ name, action, timer: timer.minutes, active: true });
      if (index >= 0) next[index] = entry;
      else next.push(entry);
      return next;
    }
  }
}

/**
 * Apply a change to the lines of a file and return the new file text. Lines
 * that cannot be read are kept verbatim where they were (a typo must not be
 * erased by the next `schedule` command), except that deleting a (name,
 * action) also deletes unreadable lines whose first two columns say exactly that.
 */
export function renderScheduleChange(lines: readonly ScheduleLine[], change: ScheduleChange): string {
  const entries = lines.flatMap((l) => (l.kind === 'entry' ? [l.entry] : []));
  const next = applyScheduleChange(entries, change);
  const deleting = parseTimer(change.timer).kind === 'delete';
  const byKey = new Map(next.map((e) => [keyOf(e.name, e.action), e]));
  const written = new Set<string>();
  const out: string[] = [];
  for (const l of lines) {
    if (l.kind === 'invalid') {
      if (!(deleting && l.fields[0] === change.name && l.fields[1] === change.action)) out.push(l.raw);
      continue;
    }
    const key = keyOf(l.entry.name, l.entry.action);
    const entry = byKey.get(key);
    if (entry) {
      out.push(formatEntry(entry));
      written.add(key);
    }
  }
  for (const e of next) if (!written.has(keyOf(e.name, e.action))) out.push(formatEntry(e));
  return out.map((row) => row + LINE_END).join('');
}

/**
 * One line of the original CLI's `buttervolume scheduled`:
 * `<Action> <Timer> <Name> ` then `(paused)` for an inactive job. The trailing
 * space after the name of an active job is the original's, kept byte for byte.
 */
export function formatScheduledLine(entry: ScheduleEntry): string {
  return `${entry.action} ${entry.timer} ${entry.name} ${entry.active ? '' : '(paused)'}`;
}

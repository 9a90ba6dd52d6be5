// Retention: which snapshots a purge pattern deletes. A port of the original's
// compute_purges (buttervolume/plugin.py) that must give the same answer for
// the same directory listing, pattern and clock, quirks included; see
// docs reference section 2.7. Pure: the caller lists and deletes.
import { compareCodePoints } from '../util/code-point.js';
import { nameErrorClass } from '../util/error-name.js';
import { StoreError } from './errors.js';
import { validateVolumeName } from './names.js';
import { parseTimestampParts, wallClockParts, wholeSecondsBetween } from '../util/timestamp.js';

const UNIT_MINUTES: Record<string, number> = { m: 1, h: 60, d: 60 * 24, w: 60 * 24 * 7, y: 60 * 24 * 365 };

/** A purge pattern that is not one; `detail` is what follows "invalid purge pattern" in the message (the server words it as the original did). */
export class PurgePatternError extends StoreError {
  constructor(readonly detail: string) {
    super('ERR_INVALID_PURGE_PATTERN', `invalid purge pattern${detail}`);
  }
}

nameErrorClass(PurgePatternError, 'PurgePatternError');

function invalid(detail: string): never {
  throw new PurgePatternError(detail);
}

/**
 * Parses a purge pattern such as `4h:1d:2w:2y` into minutes, sorted ascending.
 * Items are `<digits><m|h|d|w|y>` (`m` is minutes, `y` 365 days), in any
 * order, duplicates allowed (`2h:2h`), at least two. Stricter than the
 * original's `int()`, which also took ` 2h`, `+2h`, `1_0h`, non-ASCII digits,
 * zero (then divided by zero) and negatives.
 * @throws StoreError `ERR_INVALID_PURGE_PATTERN`, e.g.
 *   `invalid purge pattern "60m:plop:3000m": "plop" is not <number><m|h|d|w|y>`.
 */
export function parsePurgePattern(text: unknown): number[] {
  if (typeof text !== 'string') {
    invalid(`: expected a string like "4h:1d:2w", got ${text === null ? 'null' : typeof text}`);
  }
  const head = ` ${JSON.stringify(text)}`;
  const minutes = text.split(':').map((item) => {
    const m = /^([0-9]+)([mhdwy])$/.exec(item);
    if (!m) invalid(`${head}: ${JSON.stringify(item)} is not <number><m|h|d|w|y>`);
    const value = Number(m[1]) * UNIT_MINUTES[m[2]!]!;
    if (value === 0) invalid(`${head}: ${JSON.stringify(item)} must be greater than zero`);
    if (!Number.isSafeInteger(value)) invalid(`${head}: ${JSON.stringify(item)} is too large`);
    return value;
  });
  if (minutes.length < 2) invalid(`${head}: needs at least two durations`);
  return minutes.sort((a, b) => a - b);
}

function checkMinutes(pattern: number[]): number[] {
  const head = ` [${String(pattern)}]`;
  if (!Array.isArray(pattern) || pattern.length < 2) invalid(`${head}: needs at least two durations`);
  for (const v of pattern) {
    if (!Number.isSafeInteger(v) || v <= 0) invalid(`${head}: ${String(v)} is not a positive whole number of minutes`);
  }
  return [...pattern].sort((a, b) => a - b);
}

/** Python's float `//` (Objects/floatobject.c): JS `%` is C fmod, so this is exact. */
function floorDiv(a: number, b: number): number {
  const mod = a % b;
  let div = (a - mod) / b;
  if (mod !== 0 && b < 0 !== mod < 0) div -= 1; // Python's mod takes the divisor's sign (mod + b), its quotient one less
  if (div === 0) return 0;
  const floor = Math.floor(div);
  return div - floor > 0.5 ? floor + 1 : floor;
}

/** What {@link planPurge} needs. */
export interface PurgeInput {
  /** Entries of the snapshots directory (any, other volumes' included). */
  names: string[];
  /** The volume whose `<volume>@...` entries are candidates. */
  volume: string;
  /** Minutes (as from {@link parsePurgePattern}) or the pattern text. */
  pattern: number[] | string;
  /** The purge's clock, read as local wall-clock time like `datetime.now()`. */
  now: Date;
  dtformat: string;
  /** Names never returned (replication chain protection). */
  keep?: Iterable<string>;
}

/**
 * The snapshot names a purge deletes: the original's `compute_purges`.
 *
 * Candidates are the names starting with `<volume>@` (send markers too),
 * sorted by name; a name whose date (between the first and second `@`) does
 * not parse with `dtformat` is never deleted. Ages are naive wall-clock
 * differences truncated to whole seconds, in minutes. With durations
 * D0 > D1 > ... > Dk, each segment (Di, Di+1) walks the candidates oldest
 * first and deletes a snapshot when its bucket floor(age / Di+1) equals the
 * previous one's, or when it is older than D0. Everything younger than Dk is
 * kept.
 *
 * @returns names in the original's deletion order, each once.
 * @throws StoreError `ERR_INVALID_PURGE_PATTERN`, `ERR_INVALID_VOLUME_NAME`, `ERR_INVALID_DTFORMAT`.
 */
export function planPurge(input: PurgeInput): string[] {
  const volume = validateVolumeName(input.volume);
  const pattern = typeof input.pattern === 'string' ? parsePurgePattern(input.pattern) : checkMinutes(input.pattern);
  const durations = pattern.reverse(); // a copy: descending
  const max = durations[0]!;
  const now = wallClockParts(input.now);
  const prefix = `${volume}@`;

  const names: string[] = [];
  const ages: number[] = [];
  for (const name of input.names.filter((n) => typeof n === 'string' && n.startsWith(prefix)).sort(compareCodePoints)) {
    const rest = name.slice(prefix.length);
    const at = rest.indexOf('@');
    const parts = parseTimestampParts(at < 0 ? rest : rest.slice(0, at), input.dtformat);
    // An offset (%z) makes Python's datetime aware, and `now - aware` raises
    // TypeError, which the original catches as an invalid date: never deleted.
    if (parts === null || parts.utcOffset !== null) continue;
    names.push(name);
    ages.push(wholeSecondsBetween(now, parts) / 60);
  }

  // The original can list a name twice: a snapshot whose age equals an inner
  // duration belongs to two segments. Deleting it twice made the second
  // delete fail (HTTP 500); we return it once.
  const doomed = new Set<string>();
  for (let s = 0; s + 1 < durations.length; s++) {
    const upper = durations[s]!;
    const lower = durations[s + 1]!;
    let previous = -1;
    for (let i = 0; i < names.length; i++) {
      const age = ages[i]!;
      // Snapshots older than max are not skipped in the first segment: they
      // are deleted there, and also set `previous` (the "straddling bucket" quirk).
      if ((age > upper && upper < max) || age < lower) continue;
      const bucket = floorDiv(age, lower);
      if (bucket === previous || age > max) doomed.add(names[i]!);
      previous = bucket;
    }
  }

  // Protected names take part in the walk above exactly as in the original
  // and are only removed from the answer. Treating them as bucket survivors
  // instead would change which *other* snapshots survive; this way every
  // unprotected name gets the original's decision and a protected one simply
  // stays (its bucket may then hold two snapshots).
  const keep = new Set(input.keep ?? []);
  return [...doomed].filter((n) => !keep.has(n));
}

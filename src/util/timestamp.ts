// Snapshot timestamps, compatible with the original buttervolume: local
// time in DTFORMAT (default `%Y-%m-%dT%H:%M:%S.%f`). Timestamps follow Python's datetime.strftime/strptime for the directives a
// DTFORMAT may use, because the original's purge only deletes what strptime
// parses: accepting more or less than strptime would delete other snapshots.
import { CodedError } from './coded-error.js';
import { nameErrorClass } from './error-name.js';

/** The original's default DTFORMAT; names look like `db@2024-01-10T12:00:00.123456`. */
export const DEFAULT_DTFORMAT = '%Y-%m-%dT%H:%M:%S.%f';

/** A naive (zone-less) wall-clock time, as Python's `datetime` holds it. */
export interface TimestampParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  microsecond: number;
  /** Seconds east of UTC when the text carried a `%z` offset, else null (naive). */
  utcOffset: number | null;
}

/** A DTFORMAT that cannot name snapshots; `reason` is the message without the format it is about. */
export class TimestampError extends CodedError<'ERR_INVALID_DTFORMAT'> {
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super('ERR_INVALID_DTFORMAT', message);
  }
}

nameErrorClass(TimestampError, 'TimestampError');

/** Refuses `dtformat` (null: not a format at all) for `reason`. */
function fail(dtformat: string | null, reason: string): never {
  throw new TimestampError(dtformat === null ? reason : `invalid DTFORMAT ${show(dtformat)}: ${reason}`, reason);
}

/** Quotes a name for a message; long names are cut so messages stay one line. */
function show(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

// ---- DTFORMAT: one tokenizer shared by format and parse ---------------------

// C-locale names: the original runs in a container without a locale.
const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];
const lower = (names: string[], abbr: boolean): string[] =>
  names.map((n) => (abbr ? n.slice(0, 3) : n).toLowerCase());
const NAMES: Record<string, string[]> = {
  a: lower(DAYS, true), A: lower(DAYS, false), b: lower(MONTHS, true), B: lower(MONTHS, false),
  p: ['am', 'pm'],
  // Python also accepts time.tzname; the plugin's container has TZ unset, i.e. UTC.
  Z: ['utc', 'gmt'],
};

// Python's `\d` is any Unicode decimal digit (Nd); `[0-9]` stays ASCII.
const D = '\\p{Nd}';
// strptime's own expressions (CPython Lib/_strptime.py, TimeRE), alternation
// order included: the first alternative that lets the whole regex match wins.
const FIELD: Record<string, string> = {
  d: `3[0-1]|[1-2]${D}|0[1-9]|[1-9]| [1-9]`,
  f: '[0-9]{1,6}',
  H: `2[0-3]|[0-1]${D}|${D}`,
  I: '1[0-2]|0[1-9]|[1-9]',
  j: `36[0-6]|3[0-5]${D}|[1-2]${D}${D}|0[1-9]${D}|00[1-9]|[1-9]${D}|0[1-9]|[1-9]`,
  m: '1[0-2]|0[1-9]|[1-9]',
  M: `[0-5]${D}|${D}`,
  S: `6[0-1]|[0-5]${D}|${D}`,
  y: `${D}${D}`,
  Y: `${D}${D}${D}${D}`,
  // Python matches the "Z" case-sensitively; JS has no inline flag, see parse.
  z: `[+-]${D}${D}:?[0-5]${D}(?::?[0-5]${D}(?:\\.${D}{1,6})?)?|Z`,
};
for (const [k, names] of Object.entries(NAMES)) {
  // Longest first, stable, like _strptime's __seqToRE.
  FIELD[k] = [...names].sort((x, y) => y.length - x.length).join('|');
}
// str.isspace(): what Python's `\s` matches; a run in the format matches `\s+`.
const WS = '[\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const WS_CHAR = new RegExp(`^${WS}$`, 'u');

type Token = { lit: string } | { dir: string };
interface Compiled {
  tokens: Token[];
  /**
   * The strptime regex, built at first use (a Unicode, case-insensitive
   * RegExp costs about a millisecond to build, and formatting a snapshot
   * name never needs it); null when a directive repeats: Python's regex then
   * fails to compile, so nothing parses.
   */
  regex(): RegExp | null;
  groups: string[];
}
const cache = new Map<string, Compiled>();

function compile(dtformat: string): Compiled {
  const hit = cache.get(dtformat);
  if (hit) return hit;
  if (typeof dtformat !== 'string') fail(null, 'DTFORMAT must be a string');
  const tokens: Token[] = [];
  const groups: string[] = [];
  let source = '';
  const chars = [...dtformat];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '%') {
      const d = chars[++i];
      if (d === '%') {
        tokens.push({ lit: '%' });
        source += '%';
      } else if (d !== undefined && FIELD[d] !== undefined) {
        tokens.push({ dir: d });
        groups.push(d);
        source += `(${FIELD[d]})`;
      } else {
        fail(dtformat, d === undefined ? 'stray "%" at the end' : `"%${d}" is not supported (use %Y %m %d %H %M %S %f %y %j %b %B %a %A %p %I %z %Z %%)`);
      }
    } else if (WS_CHAR.test(c)) {
      let run = c;
      while (i + 1 < chars.length && WS_CHAR.test(chars[i + 1]!)) run += chars[++i];
      tokens.push({ lit: run });
      source += `${WS}+`;
    } else {
      tokens.push({ lit: c });
      source += c.replace(/[\\^$.*+?()[\]{}|/]/, '\\$&');
    }
  }
  const duplicated = new Set(groups).size !== groups.length;
  // Anchored at the start only: like re.match, the first match must then end
  // exactly at the end of the text (checked in parse), no longer match is sought.
  let regex: RegExp | null | undefined;
  const compiled: Compiled = {
    tokens,
    groups,
    regex: () => (regex === undefined ? (regex = duplicated ? null : new RegExp(`^(?:${source})`, 'iu')) : regex),
  };
  if (cache.size >= 32) cache.clear(); // one DTFORMAT in practice; stay bounded anyway
  cache.set(dtformat, compiled);
  return compiled;
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Days since 1970-01-01 in the proleptic Gregorian calendar (Python's ordinal - 719163). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}

function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const m = mp + (mp < 10 ? 3 : -9);
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, doy - Math.floor((153 * mp + 2) / 5) + 1];
}

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const daysIn = (y: number, m: number): number => (m === 2 ? (isLeap(y) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31);

/**
 * The local wall-clock fields of `date` (what Python's `datetime.now()` holds).
 * @throws TypeError when `date` is not a valid Date.
 */
export function wallClockParts(date: Date): TimestampParts {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new TypeError('expected a valid Date');
  return {
    year: date.getFullYear(), month: date.getMonth() + 1, day: date.getDate(),
    hour: date.getHours(), minute: date.getMinutes(), second: date.getSeconds(),
    microsecond: date.getMilliseconds() * 1000, utcOffset: null,
  };
}

/**
 * `int((later - earlier).total_seconds())` for two naive times: wall-clock
 * difference (a DST change is ignored, as Python's naive arithmetic does),
 * truncated toward zero to whole seconds. `utcOffset` is ignored.
 */
export function wholeSecondsBetween(later: TimestampParts, earlier: TimestampParts): number {
  const microOfDay = (p: TimestampParts): number =>
    ((p.hour * 60 + p.minute) * 60 + p.second) * 1e6 + p.microsecond;
  const dd = daysFromCivil(later.year, later.month, later.day) - daysFromCivil(earlier.year, earlier.month, earlier.day);
  const du = microOfDay(later) - microOfDay(earlier); // |du| < one day: exact
  const negative = dd < 0 || (dd === 0 && du < 0);
  return dd * 86400 + (negative ? Math.ceil(du / 1e6) : Math.floor(du / 1e6)) + 0;
}

/**
 * `date.strftime(dtformat)` for a naive local datetime, as the original names
 * snapshots: local time, `%z`/`%Z` empty, `%f` = milliseconds * 1000, C locale.
 * `%Y` is zero-padded to 4 digits (glibc does not pad years below 1000).
 * @throws Error `ERR_INVALID_DTFORMAT` for an unsupported directive; TypeError for an invalid Date.
 */
export function formatTimestamp(date: Date, dtformat: string): string {
  const { tokens } = compile(dtformat);
  const p = wallClockParts(date);
  const weekday = (date.getDay() + 6) % 7; // Python: Monday = 0
  let out = '';
  for (const t of tokens) {
    if ('lit' in t) {
      out += t.lit;
      continue;
    }
    switch (t.dir) {
      case 'Y': out += pad(p.year, 4); break;
      case 'y': out += pad(p.year % 100, 2); break;
      case 'm': out += pad(p.month, 2); break;
      case 'd': out += pad(p.day, 2); break;
      case 'H': out += pad(p.hour, 2); break;
      case 'I': out += pad(p.hour % 12 || 12, 2); break;
      case 'p': out += p.hour < 12 ? 'AM' : 'PM'; break;
      case 'M': out += pad(p.minute, 2); break;
      case 'S': out += pad(p.second, 2); break;
      case 'f': out += pad(p.microsecond, 6); break;
      case 'j': out += pad(daysFromCivil(p.year, p.month, p.day) - daysFromCivil(p.year, 1, 1) + 1, 3); break;
      case 'a': out += DAYS[weekday]!.slice(0, 3); break;
      case 'A': out += DAYS[weekday]!; break;
      case 'b': out += MONTHS[p.month - 1]!.slice(0, 3); break;
      case 'B': out += MONTHS[p.month - 1]!; break;
      default: break; // %z and %Z: empty for a naive datetime
    }
  }
  return out;
}

class Unparsable extends Error {}

/** Python's int() on a matched field: optional whitespace and sign, Unicode digits. */
function pyInt(text: string): number {
  if (/^[0-9]+$/.test(text)) return Number(text);
  // Only %d can hold a space (" 5"); %z pieces can hold ":" (refused, as int() does).
  const m = /^ *([+-]?)(\p{Nd}+)$/u.exec(text);
  if (!m) throw new Unparsable();
  let n = 0;
  for (const ch of m[2]!) {
    // Unicode keeps each decimal digit set contiguous and ordered from zero;
    // sets may touch (U+1D7CE..U+1D7FF), hence the modulo.
    let cp = ch.codePointAt(0)!;
    let start = cp;
    while (/\p{Nd}/u.test(String.fromCodePoint(start - 1))) start--;
    cp = (cp - start) % 10;
    n = n * 10 + cp;
  }
  return m[1] === '-' ? -n : n;
}

/**
 * Python's `datetime.strptime(text, dtformat)` reduced to its fields, or null
 * where strptime raises: the whole text must match, fields are range-checked
 * (Feb 30, second 60, year 0 are refused), case is ignored, `\d` fields take
 * any Unicode digit as Python's do. `%j` overrides month and day; `%I` uses
 * `%p`; `%a`/`%A` are checked against the names but not against the date.
 * Never throws on garbage text.
 * @throws Error `ERR_INVALID_DTFORMAT` for an unsupported directive in `dtformat`.
 */
export function parseTimestampParts(text: string, dtformat: string): TimestampParts | null {
  const compiled = compile(dtformat);
  const { groups } = compiled;
  const regex = compiled.regex();
  if (regex === null || typeof text !== 'string') return null;
  const m = regex.exec(text);
  if (m === null || m[0].length !== text.length) return null;
  try {
    let year: number | null = null;
    let [month, day, hour, minute, second, microsecond] = [1, 1, 0, 0, 0, 0];
    let julian: number | null = null;
    let utcOffset: number | null = null;
    let offsetMicros = 0;
    const index = (names: string[], v: string): number => {
      const i = names.indexOf(v.toLowerCase());
      if (i < 0) throw new Unparsable(); // e.g. a case-folded match .lower() does not undo
      return i;
    };
    const pIndex = groups.indexOf('p');
    for (let i = 0; i < groups.length; i++) {
      const v = m[i + 1]!;
      switch (groups[i]) {
        case 'y': year = pyInt(v); year += year <= 68 ? 2000 : 1900; break;
        case 'Y': year = pyInt(v); break;
        case 'm': month = pyInt(v); break;
        case 'b': month = index(NAMES.b!, v) + 1; break;
        case 'B': month = index(NAMES.B!, v) + 1; break;
        case 'd': day = pyInt(v); break;
        case 'H': hour = pyInt(v); break;
        case 'I': {
          hour = pyInt(v);
          const ampm = pIndex < 0 ? '' : m[pIndex + 1]!.toLowerCase();
          if (ampm === '' || ampm === 'am') hour = hour === 12 ? 0 : hour;
          else if (ampm === 'pm' && hour !== 12) hour += 12;
          break;
        }
        case 'M': minute = pyInt(v); break;
        case 'S': second = pyInt(v); break;
        case 'f': microsecond = pyInt(v.padEnd(6, '0')); break;
        case 'a': index(NAMES.a!, v); break;
        case 'A': index(NAMES.A!, v); break;
        case 'j': julian = pyInt(v); break;
        case 'z': {
          if (v === 'z') throw new Unparsable(); // Python matches "Z" case-sensitively
          if (v === 'Z') {
            utcOffset = 0;
            break;
          }
          // Python slices code points; digits may be astral, so slice an array.
          let z = [...v];
          if (z[3] === ':') {
            z = [...z.slice(0, 3), ...z.slice(4)];
            if (z.length > 5) {
              if (z[5] !== ':') throw new Unparsable();
              z = [...z.slice(0, 5), ...z.slice(6)];
            }
          }
          const part = (a: number, b?: number): string => z.slice(a, b).join('');
          utcOffset = pyInt(part(1, 3)) * 3600 + pyInt(part(3, 5)) * 60 + pyInt(part(5, 7) || '0');
          const rest = part(8);
          offsetMicros = pyInt(rest + '0'.repeat(Math.max(0, 6 - [...rest].length)));
          if (z[0] === '-') {
            utcOffset = -utcOffset;
            offsetMicros = -offsetMicros;
          }
          break;
        }
        default: break; // %p (used by %I), %Z (ignored by a naive parse)
      }
    }
    // Mirrors _strptime: a year-less Feb 29 is computed in 1904, then put
    // back to 1900, which datetime() then refuses.
    const leapFix = year === null && month === 2 && day === 29;
    let y: number = year ?? (leapFix ? 1904 : 1900);
    const inRange = (yy: number, mm: number, dd: number): boolean =>
      yy >= 1 && yy <= 9999 && dd >= 1 && dd <= daysIn(yy, mm);
    if (julian !== null) {
      if (!inRange(y, 1, 1)) return null;
      [y, month, day] = civilFromDays(daysFromCivil(y, 1, 1) + julian - 1);
    }
    if (leapFix) y = 1900;
    if (!inRange(y, month, day) || second > 59) return null;
    // datetime.timezone() wants strictly less than 24 h.
    if (utcOffset !== null && Math.abs(utcOffset * 1e6 + offsetMicros) >= 86400e6) return null;
    return { year: y, month, day, hour, minute, second, microsecond, utcOffset };
  } catch (e) {
    if (e instanceof Unparsable) return null;
    throw e;
  }
}

/**
 * `datetime.strptime(text, dtformat)` as a Date: local time for a naive
 * timestamp, the stated instant when `%z` matched an offset. Null where
 * strptime raises (see {@link parseTimestampParts}). Precision: milliseconds.
 * @throws Error `ERR_INVALID_DTFORMAT` for an unsupported directive in `dtformat`.
 */
export function parseTimestamp(text: string, dtformat: string): Date | null {
  const p = parseTimestampParts(text, dtformat);
  if (p === null) return null;
  const ms = Math.floor(p.microsecond / 1000);
  if (p.utcOffset !== null) {
    const utc = new Date(0);
    utc.setUTCFullYear(p.year, p.month - 1, p.day);
    utc.setUTCHours(p.hour, p.minute, p.second - p.utcOffset, ms);
    return utc;
  }
  const local = new Date(2000, 0, 1);
  local.setFullYear(p.year, p.month - 1, p.day); // the constructor maps years 0..99 to 19xx
  local.setHours(p.hour, p.minute, p.second, ms);
  return local;
}

/**
 * Checks a DTFORMAT once, at configuration time: only supported directives,
 * no `/`, `@` or NUL (they would break names), and what it formats must parse
 * back (`%z`, `%Z` or a repeated directive never do: the original's purge
 * would then silently keep every snapshot).
 * @throws Error `ERR_INVALID_DTFORMAT`.
 */
export function validateDtformat(dtformat: unknown): string {
  // The default passes (test/unit/names-timestamp.test.ts checks it the long
  // way): checking it again costs every CLI start ~2 ms (the parse regex).
  if (dtformat === DEFAULT_DTFORMAT) return dtformat;
  return checkDtformat(dtformat);
}

/** {@link validateDtformat} without its shortcut for the default (exported for the test that checks the default). */
export function checkDtformat(dtformat: unknown): string {
  if (typeof dtformat !== 'string' || dtformat === '') fail(null, 'DTFORMAT must be a non-empty string');
  const bad = /[/@\0]/.exec(dtformat);
  if (bad) fail(dtformat, `${JSON.stringify(bad[0])} cannot appear in a snapshot name`);
  const sample = formatTimestamp(new Date(2024, 0, 10, 12, 0, 0, 123), dtformat);
  if (parseTimestampParts(sample, dtformat) === null) {
    fail(dtformat, `its output ${show(sample)} does not parse back`);
  }
  // Two snapshots a second apart must get two names (or the second one fails),
  // and purge must read their ages back: every unit down to the second counts.
  const base = new Date(2024, 0, 10, 9, 30, 0, 0);
  const steps: Array<[number, string]> = [
    [1000, 'the second (%S)'], [60_000, 'the minute (%M)'], [3_600_000, 'the hour (%H, or %I with %p)'],
    [12 * 3_600_000, 'AM/PM (%H, or %I with %p)'], [86_400_000, 'the day (%d or %j)'], [7 * 86_400_000, 'the day (%d or %j)'],
    [31 * 86_400_000, 'the month (%m, %b or %B, or %j)'], [366 * 86_400_000, 'the year (%Y or %y)'],
  ];
  for (const [ms, unit] of steps) {
    if (formatTimestamp(base, dtformat) === formatTimestamp(new Date(base.getTime() + ms), dtformat)) {
      fail(dtformat, `it does not show ${unit}, so two snapshots taken a second apart could get the same name`);
    }
  }
  return dtformat;
}

// Widest output of each directive (C locale): "September", "Wednesday"...
const WIDTH: Record<string, number> = { Y: 4, y: 2, m: 2, d: 2, H: 2, I: 2, p: 2, M: 2, S: 2, f: 6, j: 3, a: 3, A: 9, b: 3, B: 9, z: 0, Z: 0 };

/**
 * The most bytes `formatTimestamp(date, dtformat)` can produce for any date
 * of years 1000-9999: what a snapshot name must leave room for.
 * @throws Error `ERR_INVALID_DTFORMAT` for an unsupported directive.
 */
export function maxTimestampBytes(dtformat: string): number {
  let total = 0;
  for (const t of compile(dtformat).tokens) total += 'lit' in t ? Buffer.byteLength(t.lit) : WIDTH[t.dir]!;
  return total;
}

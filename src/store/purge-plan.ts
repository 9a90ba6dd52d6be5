// Retention: which snapshots a purge pattern deletes, and why. A port of the
// original's compute_purges (buttervolume/plugin.py) that must give the same
// answer for the same directory listing, pattern and clock, quirks included;
// see docs reference section 2.7. It decides once, with the rule behind each
// decision: what `purge` deletes and what `purge --explain` prints are the
// same plan. Pure: the caller lists, gathers the protections and deletes.
import { compareCodePoints } from '../util/code-point.js';
import { nameErrorClass } from '../util/error-name.js';
import { StoreError } from './errors.js';
import { validateVolumeName } from './names.js';
import { formatMinutes, formatNaive, patternReason, type PatternRule, type Protection, type ProtectionRule, type PurgeDecision, type SlotBounds, type Verdict } from './purge-rules.js';
import { parseTimestampParts, wallClockParts, wholeSecondsBetween, type TimestampParts } from '../util/timestamp.js';

export type { PatternRule, Protection, ProtectionRule, PurgeDecision, SlotBounds, Verdict } from './purge-rules.js';

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

/** What {@link decidePurge} needs. */
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
  /** Snapshots kept whatever the pattern says, each with why (replication, a cluster volume's newest state, a volume made from it...). */
  protections?: Iterable<Protection>;
  /** Names kept whatever the pattern says, without a reason of their own (`protections` says why). */
  keep?: Iterable<string>;
}

/** What a purge does: the decision about every snapshot of the volume, and the deletions. */
export interface PurgePlan {
  volume: string;
  /** The pattern's durations in minutes, ascending. */
  pattern: number[];
  /** The time the pattern is evaluated at. */
  at: Date;
  /** Every `<volume>@...` entry given, by name (oldest first with the default DTFORMAT). */
  decisions: PurgeDecision[];
  /** The names decided DELETE, in the original's deletion order, each once. */
  doomed: string[];
}

/** A wall-clock time as milliseconds of a clock that has no DST (see formatNaive). */
function naiveMs(p: TimestampParts): number {
  const d = new Date(0);
  d.setUTCFullYear(p.year, p.month - 1, p.day);
  d.setUTCHours(p.hour, p.minute, p.second, Math.floor(p.microsecond / 1000));
  return d.getTime();
}

const GENERIC_PROTECTION = { reason: 'protected by the caller', rule: { kind: 'protected' } } as const;

/**
 * Decides about every snapshot of a volume: the original's `compute_purges`,
 * with the rule behind each decision, then the protections.
 *
 * Candidates are the names starting with `<volume>@` (send markers too),
 * sorted by name; a name whose date (between the first and second `@`) does
 * not parse with `dtformat` is never deleted. Ages are naive wall-clock
 * differences truncated to whole seconds, in minutes. With durations
 * D0 > D1 > ... > Dk, each segment (Di, Di+1) walks the candidates oldest
 * first and deletes a snapshot when its slot floor(age / Di+1) equals the
 * previous one's, or when it is older than D0. Everything younger than Dk is
 * kept. A protected snapshot is kept, whatever the pattern decided.
 *
 * @throws StoreError `ERR_INVALID_PURGE_PATTERN`, `ERR_INVALID_VOLUME_NAME`, `ERR_INVALID_DTFORMAT`.
 */
export function decidePurge(input: PurgeInput): PurgePlan {
  const volume = validateVolumeName(input.volume);
  const pattern = typeof input.pattern === 'string' ? parsePurgePattern(input.pattern) : checkMinutes(input.pattern);
  const durations = [...pattern].reverse(); // descending
  const max = durations[0]!;
  const now = wallClockParts(input.now);
  const nowMs = naiveMs(now);
  const prefix = `${volume}@`;

  const all = input.names.filter((n) => typeof n === 'string' && n.startsWith(prefix)).sort(compareCodePoints);
  const verdicts = new Map<string, { decision: Verdict; rule: PatternRule }>();
  const names: string[] = [];
  const ages: number[] = [];
  for (const name of all) {
    const rest = name.slice(prefix.length);
    const at = rest.indexOf('@');
    const parts = parseTimestampParts(at < 0 ? rest : rest.slice(0, at), input.dtformat);
    // An offset (%z) makes Python's datetime aware, and `now - aware` raises
    // TypeError, which the original catches as an invalid date: never deleted.
    if (parts === null || parts.utcOffset !== null) {
      verdicts.set(name, { decision: 'KEEP', rule: { kind: 'undated', why: parts === null ? 'format' : 'offset' } });
      continue;
    }
    names.push(name);
    ages.push(wholeSecondsBetween(now, parts) / 60);
  }

  // The original can list a name twice: a snapshot whose age equals an inner
  // duration belongs to two segments. Deleting it twice made the second
  // delete fail (HTTP 500); we delete it once. Its rule: the first segment
  // that deletes it, else the first that keeps it.
  const doomed = new Set<string>();
  const longest = formatMinutes(max);
  for (let s = 0; s + 1 < durations.length; s++) {
    const upper = durations[s]!;
    const lower = durations[s + 1]!;
    const step = { every: formatMinutes(lower), upTo: formatMinutes(upper) };
    const slots = new Map<number, SlotBounds>(); // the bounds of each slot of this step, formatted once
    const slotOf = (bucket: number): SlotBounds => {
      let slot = slots.get(bucket);
      if (!slot) slots.set(bucket, (slot = { from: formatNaive(nowMs - (bucket + 1) * lower * 60e3), to: formatNaive(nowMs - bucket * lower * 60e3)! }));
      return slot;
    };
    let previous = -1;
    let first = -1; // the snapshot that opened the run of equal slots `previous` is
    for (let i = 0; i < names.length; i++) {
      const age = ages[i]!;
      // Snapshots older than max are not skipped in the first segment: they
      // are deleted there, and also set `previous` (the "straddling bucket" quirk).
      if ((age > upper && upper < max) || age < lower) continue;
      const bucket = floorDiv(age, lower);
      if (bucket !== previous) first = i;
      const name = names[i]!;
      let rule: PatternRule;
      if (age > max) rule = { kind: 'older', than: longest };
      else {
        const slot = slotOf(bucket);
        if (bucket !== previous) rule = { kind: 'slot', ...step, slot };
        else if (ages[first]! > max) rule = { kind: 'straddling-slot', ...step, slot, first: names[first]!, longest };
        else rule = { kind: 'same-slot', ...step, slot, kept: names[first]! };
      }
      previous = bucket;
      const decision: Verdict = rule.kind === 'slot' ? 'KEEP' : 'DELETE';
      if (decision === 'DELETE') doomed.add(name);
      const known = verdicts.get(name);
      if (!known || (known.decision === 'KEEP' && decision === 'DELETE')) verdicts.set(name, { decision, rule });
    }
  }

  // Protected names take part in the walk above exactly as in the original
  // and are only removed from the deletions. Treating them as slot survivors
  // instead would change which *other* snapshots survive; this way every
  // unprotected name gets the original's decision and a protected one simply
  // stays (its slot may then hold two snapshots).
  const protections = new Map<string, Array<{ reason: string; rule: ProtectionRule }>>();
  const protect = (name: string, p: { reason: string; rule: ProtectionRule }) => protections.set(name, [...(protections.get(name) ?? []), p]);
  for (const p of input.protections ?? []) protect(p.name, { reason: p.reason, rule: p.rule });
  for (const name of input.keep ?? []) if (!protections.has(name)) protect(name, GENERIC_PROTECTION);

  const shortest = formatMinutes(durations.at(-1)!);
  const future = new Set(names.filter((_, i) => ages[i]! < 0));
  const decisions = all.map((name): PurgeDecision => {
    const pattern = verdicts.get(name) ?? { decision: 'KEEP' as const, rule: { kind: 'younger' as const, than: shortest, ...(future.has(name) ? { future: true as const } : {}) } };
    if (pattern.rule.kind === 'same-slot' && doomed.has(pattern.rule.kept) && !protections.has(pattern.rule.kept)) pattern.rule = { ...pattern.rule, keptDeleted: true };
    const reason = patternReason(pattern.rule);
    const kept = protections.get(name);
    if (!kept) return { name, decision: pattern.decision, reason, rule: pattern.rule };
    const overridden = pattern.decision === 'DELETE' ? ` (the pattern alone would delete it: ${reason})` : '';
    return {
      name,
      decision: 'KEEP',
      reason: `${kept.map((p) => p.reason).join('; ')}${overridden}`,
      rule: kept[0]!.rule,
      pattern: { ...pattern, reason },
      protections: kept,
    };
  });
  return { volume, pattern, at: input.now, decisions, doomed: [...doomed].filter((n) => !protections.has(n)) };
}

/**
 * The snapshot names a purge deletes, in the original's deletion order: the
 * DELETE decisions of {@link decidePurge}.
 * @throws as {@link decidePurge}.
 */
export function planPurge(input: PurgeInput): string[] {
  return decidePurge(input).doomed;
}

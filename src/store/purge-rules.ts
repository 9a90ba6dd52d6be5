// The rules behind purge's decisions: what each one records (the JSON of
// `purge --explain --json`) and how it reads (its text). The pattern's rules
// are decided in purge-plan.ts; protections (what keeps a snapshot whatever
// the pattern says) are gathered by purge.ts from the modules that need a
// snapshot kept, each with its own kind and words.

/** Keep or delete: what a purge does with one snapshot. */
export type Verdict = 'KEEP' | 'DELETE';

/** One slot of a step of the pattern, in the local wall-clock time of snapshot names (ISO, no zone, to the second): dates after `from`, up to `to`. */
export interface SlotBounds {
  /** null: before year 1 (a pattern of millennia). */
  readonly from: string | null;
  readonly to: string;
}

/** A step of the pattern: one snapshot per `every` for the snapshots between `every` and `upTo` old. */
interface Step {
  readonly every: string;
  readonly upTo: string;
}

/** The rule of the pattern that decided about one snapshot. */
export type PatternRule =
  /** KEEP: no date in the name as DTFORMAT reads it, or one with a UTC offset (the original could not compare it): never purged. */
  | { readonly kind: 'undated'; readonly why: 'format' | 'offset' }
  /** KEEP: younger than the pattern's shortest duration (`future`: dated after the purge's time). */
  | { readonly kind: 'younger'; readonly than: string; readonly future?: true }
  /** KEEP: the snapshot kept for its slot (the first of the slot, walking oldest first). */
  | ({ readonly kind: 'slot'; readonly slot: SlotBounds } & Step)
  /**
   * DELETE: `kept` is the snapshot this step keeps for the same slot
   * (`keptDeleted`: another step deletes that one: a snapshot whose age is
   * a duration of the pattern is walked by two steps, as in the original).
   */
  | ({ readonly kind: 'same-slot'; readonly slot: SlotBounds; readonly kept: string; readonly keptDeleted?: true } & Step)
  /**
   * DELETE: the slot's first snapshot, `first`, is older than the pattern's
   * longest duration (deleted), and the slot keeps nothing: the original's
   * "straddling bucket".
   */
  | ({ readonly kind: 'straddling-slot'; readonly slot: SlotBounds; readonly first: string; readonly longest: string } & Step)
  /** DELETE: older than the pattern's longest duration. */
  | { readonly kind: 'older'; readonly than: string };

/**
 * What keeps a snapshot whatever the pattern says: its `kind` (`replication`,
 * `cluster-state`, `in-use`...) and the values that go with it. Open: the
 * module that needs a snapshot kept names its own kind.
 */
export interface ProtectionRule {
  readonly kind: string;
  readonly [field: string]: unknown;
}

/** A snapshot kept whatever the pattern says, with why (one line, for people) and the rule (for scripts). */
export interface Protection {
  readonly name: string;
  readonly reason: string;
  readonly rule: ProtectionRule;
}

/** The decision about one snapshot, and the rule that made it. */
export interface PurgeDecision {
  readonly name: string;
  readonly decision: Verdict;
  /** Why, one line. */
  readonly reason: string;
  /** The rule that decided: the pattern's, or the first protection. */
  readonly rule: PatternRule | ProtectionRule;
  /** When a protection decided: what the pattern alone decided. */
  readonly pattern?: { readonly decision: Verdict; readonly reason: string; readonly rule: PatternRule };
  /** Every protection of this snapshot, when any (the first one is `rule`). */
  readonly protections?: ReadonlyArray<{ readonly reason: string; readonly rule: ProtectionRule }>;
}

const UNITS: ReadonlyArray<[string, number]> = [['y', 525600], ['w', 10080], ['d', 1440], ['h', 60]];

/** A duration of the pattern (minutes) as people write it: in the largest unit that divides it (`1440` -> `1d`, `90` -> `90m`). */
export function formatMinutes(minutes: number): string {
  for (const [unit, size] of UNITS) if (minutes % size === 0) return `${minutes / size}${unit}`;
  return `${minutes}m`;
}

const DAY_MS = 86400e3;
// What Date represents (ECMA-262: ±10^8 days from 1970).
const MAX_DATE_MS = 1e8 * DAY_MS;

/**
 * Wall-clock arithmetic as the original's naive datetimes do it: `naiveMs`
 * is a wall-clock time read as if it were UTC (DST ignored, as Python's
 * naive subtraction ignores it). Returns the ISO text without zone, to the
 * second, or null outside years 1..9999.
 */
export function formatNaive(naiveMs: number): string | null {
  if (!Number.isFinite(naiveMs) || Math.abs(naiveMs) > MAX_DATE_MS) return null;
  const d = new Date(naiveMs);
  const year = d.getUTCFullYear();
  if (year < 1 || year > 9999) return null;
  return d.toISOString().slice(0, 19);
}

const stepText = (r: Step) => `one per ${r.every} between ${r.every} and ${r.upTo} old`;
const slotText = (r: { every: string; slot: SlotBounds }) => `${r.every} slot ${r.slot.from ?? 'before 0001-01-01T00:00:00'} to ${r.slot.to}`;

/** The text of a pattern rule: why it keeps or deletes the snapshot. */
export function patternReason(rule: PatternRule): string {
  switch (rule.kind) {
    case 'undated':
      return rule.why === 'offset'
        ? 'its date carries a UTC offset: never purged (as the original)'
        : 'no date in its name as DTFORMAT reads it: never purged';
    case 'younger':
      return `younger than ${rule.than}${rule.future ? ' (dated after the time of the purge)' : ''}`;
    case 'slot':
      return `kept for its ${slotText(rule)} (${stepText(rule)})`;
    case 'same-slot':
      return rule.keptDeleted
        ? `in the same ${slotText(rule)} as ${rule.kept}, which another step deletes (${stepText(rule)}; the original's rule)`
        : `${rule.kept} is kept for the same ${slotText(rule)} (${stepText(rule)})`;
    case 'straddling-slot':
      return `in the ${slotText(rule)} of ${rule.first}, which is older than ${rule.longest}: a slot reaching past the pattern's last step keeps nothing (the original's rule)`;
    case 'older':
      return `older than ${rule.than}, the pattern's last step`;
  }
}

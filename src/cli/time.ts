// `--now <time>`: ISO 8601, read as local time without a zone, because
// snapshot names carry local wall-clock time (the original's DTFORMAT).
// `new Date(text)` alone would read a bare date as UTC midnight.
import { formatTimestamp, maxTimestampBytes, parseTimestamp } from '../util/timestamp.js';
import type { CommandContext } from './context.js';

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Reads `2024-01-10`, `2024-01-10T12:00`, `2024-01-10T12:00:00.5` (local
 * time) or the same with `Z` or `+01:00`. Returns null for anything else,
 * including dates that do not exist (`2024-02-30`, `12:00:60`) and years
 * before 1000.
 */
export function parseIsoTime(text: string): Date | null {
  const m = ISO.exec(text);
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  if (Number(y) < 1000) return null; // Date maps years 0-99 to 1900-1999
  const ms = Number(frac.padEnd(3, '0').slice(0, 3));
  const fields = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
  // Reject overflow (Feb 30, 25:00) by checking the fields survive a round trip.
  const check = new Date(Date.UTC(...fields, ms));
  if (check.getUTCMonth() !== fields[1] || check.getUTCDate() !== fields[2] || check.getUTCHours() !== fields[3]
    || check.getUTCMinutes() !== fields[4] || check.getUTCSeconds() !== fields[5]) return null;
  if (zone === undefined) return new Date(...fields, ms);
  const offset = zone === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(-2)));
  return new Date(check.getTime() - offset * 60_000);
}

/**
 * The time given with --now, or undefined without it.
 * @throws UsageError for a value that is not an ISO 8601 time.
 */
export function nowOption(ctx: CommandContext): Date | undefined {
  const raw = ctx.options['now'];
  if (raw === undefined) return undefined;
  const text = String(raw);
  const date = parseIsoTime(text);
  if (!date) {
    throw ctx.usageError(
      `invalid --now ${JSON.stringify(text)}: expected an ISO 8601 time such as 2024-01-10T12:00:00 (local time) or 2024-01-10T11:00:00Z`,
    );
  }
  return date;
}

/** Longest `--at` text quoted back in an error. */
const QUOTED_MAX = 80;

/**
 * The time given with `--at` (or `--now`, which reads ISO 8601 only), or
 * undefined without either: ISO 8601 as {@link parseIsoTime} reads it, or a
 * date as snapshot names carry it (the DTFORMAT `dtformat()` gives: local
 * time unless it has `%z`; the configuration is read only for such a date).
 * Any date will do, also one before the newest snapshot (everything is then
 * younger, and kept).
 * @throws UsageError for both options at once, one given twice, or a value that is no such date.
 */
export async function atOption(ctx: CommandContext, dtformat: () => Promise<string>): Promise<Date | undefined> {
  const raw = ctx.options['at'];
  if (raw === undefined) return nowOption(ctx);
  if (ctx.options['now'] !== undefined) throw ctx.usageError('--at and --now both set the time of the purge: give one');
  if (Array.isArray(raw)) throw ctx.usageError('--at is given more than once');
  const text = String(raw); // as typed (main.ts undoes mri's numbers)
  const iso = parseIsoTime(text);
  if (iso) return iso;
  const format = await dtformat();
  const date = text.length <= Math.max(64, maxTimestampBytes(format)) ? parseTimestamp(text, format) : null;
  if (date === null || Number.isNaN(date.getTime())) {
    const shown = JSON.stringify(text.length > QUOTED_MAX ? `${text.slice(0, QUOTED_MAX)}...` : text);
    throw ctx.usageError(
      `invalid --at ${shown}: expected a date as in snapshot names (DTFORMAT ${format}, e.g. ${formatTimestamp(new Date(2024, 0, 10, 12), format)}) ` +
        'or ISO 8601 such as 2024-01-10T12:00:00 (local time) or 2024-01-10T11:00:00Z',
    );
  }
  return date;
}

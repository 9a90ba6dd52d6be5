// Names on disk, compatible with the original buttervolume:
//   volume       <name>                    (allow-list below)
//   snapshot     <volume>@<timestamp>      timestamp = local time in DTFORMAT
//   send marker  <volume>@<timestamp>@<host>
import { isIPv4, isIPv6 } from '../util/ip.js';

import { StoreError } from './errors.js';
import { compareCodePoints } from '../util/code-point.js';
import { formatTimestamp, maxTimestampBytes, parseTimestamp } from '../util/timestamp.js';

function fail(code: string, message: string): never {
  throw new StoreError(code, message);
}

/** Quotes a name for a message; long names are cut so messages stay one line. */
function show(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

/** A snapshot (`vol@ts`) or send marker (`vol@ts@host`) name split into its parts. */
export interface ParsedSnapshotName {
  volume: string;
  timestamp: string;
  /** null when `timestamp` does not parse with the DTFORMAT (e.g. `vol@invalid`). */
  date: Date | null;
  /** Everything after the second `@`, or null for a plain snapshot. */
  host: string | null;
}

/**
 * `<volume>@<timestamp>` for a snapshot taken at `date` (local time).
 * @throws StoreError `ERR_INVALID_VOLUME_NAME`, `ERR_INVALID_SNAPSHOT_NAME` (too long), `ERR_INVALID_DTFORMAT`.
 */
export function snapshotName(volume: string, date: Date, dtformat: string): string {
  return validateSnapshotName(`${validateVolumeName(volume)}@${formatTimestamp(date, dtformat)}`);
}

/**
 * Splits a name at its first two `@`; null when there is no `@`. The volume
 * part is not validated: this reads whatever is on disk.
 */
export function parseSnapshotName(name: string, dtformat: string): ParsedSnapshotName | null {
  const first = name.indexOf('@');
  if (first < 0) return null;
  const rest = name.slice(first + 1);
  const second = rest.indexOf('@');
  const timestamp = second < 0 ? rest : rest.slice(0, second);
  return {
    volume: name.slice(0, first),
    timestamp,
    date: parseTimestamp(timestamp, dtformat),
    host: second < 0 ? null : rest.slice(second + 1),
  };
}

/**
 * True for `<volume>@<timestamp>@<host>`: exactly three non-empty `@` parts,
 * the original's test when it looks for the last snapshot sent to a host.
 */
export function isSendMarker(name: string): boolean {
  const parts = name.split('@');
  return parts.length === 3 && parts.every((p) => p !== '');
}

const VOLUME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * Returns `name` if it is a safe volume name: 1 to 255 bytes of
 * `[A-Za-z0-9_.-]`, starting with a letter or digit (so never `.`, `..` or an
 * option-like `-x`), without `@` (the snapshot separator), `/` or NUL.
 * @throws StoreError `ERR_INVALID_VOLUME_NAME` saying what is wrong.
 */
export function validateVolumeName(name: unknown): string {
  const code = 'ERR_INVALID_VOLUME_NAME';
  if (typeof name !== 'string') fail(code, `volume name must be a string, got ${name === null ? 'null' : typeof name}`);
  if (name === '') fail(code, 'volume name is empty');
  if (name.includes('\0')) fail(code, `volume name ${show(name)} contains a NUL character`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > 255) fail(code, `volume name ${show(name)} is ${bytes} bytes long, the limit is 255`);
  if (name === '.' || name === '..') fail(code, `volume name ${show(name)} is reserved`);
  if (name.includes('@')) fail(code, `volume name ${show(name)} contains "@", which separates a volume from its snapshot date`);
  if (name.includes('/')) fail(code, `volume name ${show(name)} contains "/"`);
  if (!VOLUME_RE.test(name)) {
    const bad = [...name].find((c) => !/[A-Za-z0-9_.-]/.test(c));
    fail(code, bad === undefined
      ? `volume name ${show(name)} must start with a letter or a digit`
      : `volume name ${show(name)} contains ${JSON.stringify(bad)}: only letters, digits, "_", "." and "-" are allowed`);
  }
  return name;
}

/** Most bytes of one file name on Linux (and btrfs). */
const NAME_MAX = 255;

/** Room kept for the host of a send marker `<volume>@<date>@<host>`. */
export const MARKER_HOST_BYTES = 64;

// `.bv-restore.<volume>.<12 hex>`: the longest work name (layout.ts).
const WORK_NAME_OVERHEAD = '.bv-restore..'.length + 12;
// `volume-<volume>.lock`: the scheduler's per-volume lock file.
const LOCK_NAME_OVERHEAD = 'volume-.lock'.length;

/**
 * The longest volume name (in bytes) whose derived names all fit in 255
 * bytes with DTFORMAT `dtFormat`: snapshots `<volume>@<date>`, send markers
 * `<volume>@<date>@<host>` for a host of up to {@link MARKER_HOST_BYTES}
 * bytes, work names and lock files. 163 with the default DTFORMAT.
 */
export function maxVolumeNameBytes(dtFormat: string): number {
  const date = maxTimestampBytes(dtFormat);
  return Math.min(NAME_MAX - 1 - date - 1 - MARKER_HOST_BYTES, NAME_MAX - WORK_NAME_OVERHEAD, NAME_MAX - LOCK_NAME_OVERHEAD);
}

/**
 * Returns `name` if it may name a NEW volume (Create, Clone, Restore's
 * target): a valid volume name no longer than {@link maxVolumeNameBytes}.
 * Longer existing names (made by the original) still work where they fit.
 * @throws StoreError `ERR_INVALID_VOLUME_NAME` saying what is wrong.
 */
export function validateNewVolumeName(name: unknown, dtFormat: string): string {
  const valid = validateVolumeName(name);
  const bytes = Buffer.byteLength(valid, 'utf8');
  const max = maxVolumeNameBytes(dtFormat);
  if (bytes > max) {
    fail('ERR_INVALID_VOLUME_NAME', `volume name ${show(valid)} is ${bytes} bytes long, the limit is ${max} (its snapshot and send marker names must fit in ${NAME_MAX} bytes)`);
  }
  return valid;
}

/**
 * The newest plain snapshot `<volume>@<date>` among `names` (send markers
 * are not candidates), by the date in the name; names whose date does not
 * parse rank below every dated one, and ties go to the greater name (code
 * point order). The one rule for "the newest snapshot" (restore, Get, replicate).
 */
export function newestSnapshot(names: readonly string[], volume: string, dtFormat: string): string | null {
  let best: string | null = null;
  let bestTime = -Infinity;
  for (const name of names) {
    if (!name.startsWith(`${volume}@`) || isSendMarker(name)) continue;
    const parsed = parseSnapshotName(name, dtFormat);
    if (!parsed || parsed.host !== null) continue;
    const time = parsed.date?.getTime() ?? -Infinity;
    if (best === null || time > bestTime || (time === bestTime && compareCodePoints(name, best) > 0)) {
      best = name;
      bestTime = time;
    }
  }
  return best;
}

/**
 * Returns `name` if it is `<valid volume>@<rest>`: `rest` non-empty, without
 * `/` or NUL, the whole at most 255 bytes. `rest` need not parse as a date
 * (the original can remove `vol@invalid`).
 * @throws StoreError `ERR_INVALID_SNAPSHOT_NAME` saying what is wrong.
 */
export function validateSnapshotName(name: unknown): string {
  const code = 'ERR_INVALID_SNAPSHOT_NAME';
  if (typeof name !== 'string') fail(code, `snapshot name must be a string, got ${name === null ? 'null' : typeof name}`);
  if (name.includes('\0')) fail(code, `snapshot name ${show(name)} contains a NUL character`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > 255) fail(code, `snapshot name ${show(name)} is ${bytes} bytes long, the limit is 255`);
  const at = name.indexOf('@');
  if (at < 0) fail(code, `snapshot name ${show(name)} has no "@" (expected <volume>@<date>)`);
  try {
    validateVolumeName(name.slice(0, at));
  } catch (e) {
    fail(code, `snapshot name ${show(name)}: ${(e as Error).message}`);
  }
  const rest = name.slice(at + 1);
  if (rest === '') fail(code, `snapshot name ${show(name)} has nothing after "@"`);
  if (rest.includes('/')) fail(code, `snapshot name ${show(name)} contains "/"`);
  return name;
}

// Underscores are not DNS, but /etc/hosts and ssh aliases use them (the
// original's README even says `replicate:remote_host`): accepted.
const LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;

/**
 * Returns `host` if it is a host name (labels of letters, digits, `_` and inner
 * hyphens, at most 63 each, 253 in all, last label not all digits) or an IPv4
 * or IPv6 literal (no brackets, no zone). `user@host` is refused: the user is
 * configuration, not part of a marker name.
 * @throws StoreError `ERR_INVALID_HOST` saying what is wrong.
 */
export function validateHostName(host: unknown): string {
  const code = 'ERR_INVALID_HOST';
  if (typeof host !== 'string') fail(code, `host must be a string, got ${host === null ? 'null' : typeof host}`);
  if (host === '') fail(code, 'host is empty');
  if (host.length > 253) fail(code, `host ${show(host)} is ${host.length} characters long, the limit is 253`);
  if (host.includes('@')) fail(code, `host ${show(host)} contains "@": give the host only, without a user`);
  if (isIPv4(host) || isIPv6(host)) return host;
  const labels = host.split('.');
  const bad = labels.find((l) => !LABEL_RE.test(l));
  if (bad !== undefined) {
    fail(code, `host ${show(host)} is not a DNS name or an IP address: label ${JSON.stringify(bad)} must be 1 to 63 letters, digits, "_" or inner "-"`);
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) fail(code, `host ${show(host)} is neither a valid IPv4 address nor a DNS name`);
  return host;
}

// What a volume made with `-o from=` was made from: its source (a snapshot
// or a volume), whether it is a read-only view and whether it is ephemeral.
// One small JSON file per such volume in the state directory
// (`<stateDir>/from/<volume>.json`, beside the mount table and the cluster
// records: trusted, unlike the volume's own content), written atomically and
// durably before the volume appears, and removed with the volume. It is what
// protects the source from deletion and what an ephemeral volume is reset
// to, so both survive a restart. A record whose volume does not exist (a
// crash between the two) counts for nothing and is removed at the next start.
import { join } from 'node:path';

import { writeFileAtomic } from '../btrfs/atomic-file.js';
import { isMissing } from '../util/err-code.js';
import { readdir, readTextIfAny, rm } from '../util/fs-async.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { lockFileName } from './file-lock.js';
import { validateSnapshotName, validateVolumeName } from './names.js';

/** `-o from=` and what goes with it, as parsed at Create. */
export interface FromOptions {
  /** A snapshot `<volume>@<date>` or a volume. */
  source: string;
  /** A read-only view of a snapshot (`readonly=true`). */
  readonly: boolean;
  /** Reset to the source at every first Mount (`ephemeral=true`). */
  ephemeral: boolean;
}

export interface FromRecord extends FromOptions {
  version: 1;
  /** The volume this record is of (the file name may be shortened). */
  volume: string;
  /** Whether `source` is a snapshot (else a volume). */
  kind: 'snapshot' | 'volume';
  /** When the volume was made (ISO time, for people). */
  created: string;
}

function dir(c: StoreContext): string {
  return join(c.layout.paths.stateDir, 'from');
}

function recordFile(c: StoreContext, volume: string): string {
  return join(dir(c), lockFileName(volume).replace(/\.lock$/, '.json'));
}

function checkRecord(value: unknown, file: string): FromRecord {
  const r = value as Partial<FromRecord> | null;
  let ok =
    typeof r === 'object' &&
    r !== null &&
    r.version === 1 &&
    typeof r.volume === 'string' &&
    typeof r.source === 'string' &&
    (r.kind === 'snapshot' || r.kind === 'volume') &&
    typeof r.readonly === 'boolean' &&
    typeof r.ephemeral === 'boolean';
  if (ok) {
    try {
      validateVolumeName(r!.volume);
      if (r!.kind === 'snapshot') validateSnapshotName(r!.source);
      else validateVolumeName(r!.source);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new StoreError('ERR_FROM_RECORD', `${file} is not a record of what a volume was made from: remove it (the volume then no longer protects its source, nor is reset to it)`);
  return r as FromRecord;
}

function parseRecord(text: string, file: string): FromRecord {
  let value: unknown = null;
  try {
    value = JSON.parse(text);
  } catch {
    // refused as not a record
  }
  return checkRecord(value, file);
}

/** The record of `volume`, or null for a volume not made with from=. */
export async function readFromRecord(c: StoreContext, volume: string): Promise<FromRecord | null> {
  const file = recordFile(c, volume);
  const text = await readTextIfAny(file);
  if (text === null) return null;
  const record = parseRecord(text, file);
  // A shortened file name shared by two long names: only its own volume's counts.
  return record.volume === volume ? record : null;
}

/** Writes the record of `record.volume` (on disk before it resolves). */
export async function writeFromRecord(c: StoreContext, record: FromRecord): Promise<void> {
  await writeFileAtomic(recordFile(c, record.volume), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600, durable: true, followSymlink: false });
}

/** Removes the record of `volume` (its volume is gone, or was never made). */
export async function removeFromRecord(c: StoreContext, volume: string): Promise<void> {
  await rm(recordFile(c, volume), { force: true });
}

/**
 * Every record. A damaged one refuses (ERR_FROM_RECORD, naming the file),
 * as damage is never read as "nothing depends on this snapshot": the
 * deletions that ask are refused until it is removed or fixed.
 */
export async function listFromRecords(c: StoreContext): Promise<FromRecord[]> {
  const names = await readdir(dir(c)).catch((err: unknown) => (isMissing(err) ? ([] as string[]) : Promise.reject(err)));
  const records: FromRecord[] = [];
  for (const name of names) {
    // Dot names: what an atomic write cut short left.
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const file = join(dir(c), name);
    const text = await readTextIfAny(file);
    if (text === null) continue; // removed meanwhile
    records.push(parseRecord(text, file));
  }
  return records;
}

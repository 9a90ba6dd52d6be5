// The Create options of a volume made from a snapshot or a volume:
// `from=<snapshot or volume>`, `readonly=true|false`, `ephemeral=true|false`
// (docs/volumes-from.md). Hostile input: the name goes through the store's
// name validators, and every combination that cannot be honoured is refused
// with a message saying why.
import { StoreError } from './errors.js';
import type { FromOptions } from './from-record.js';
import { isSendMarker, validateSnapshotName, validateVolumeName } from './names.js';

/** The option keys this module reads. */
export const FROM_KEYS = ['from', 'readonly', 'ephemeral'] as const;

function bad(message: string): never {
  throw new StoreError('ERR_INVALID_OPTION', message);
}

function flag(key: string, raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (value !== 'true' && value !== 'false') bad(`Invalid option for ${key}: ${raw}. Set to "true" or "false".`);
  return value === 'true';
}

/** The source named by `from=`: a snapshot `<volume>@<date>` (not a send marker) or a volume. */
function source(raw: string): string {
  try {
    if (!raw.includes('@')) return validateVolumeName(raw);
    validateSnapshotName(raw);
  } catch (err) {
    bad(`Invalid option for from: ${(err as Error).message}`);
  }
  if (isSendMarker(raw)) bad(`Invalid option for from: ${JSON.stringify(raw.slice(0, 80))} is a send marker; name the snapshot itself (<volume>@<date>)`);
  return raw;
}

/**
 * Reads from=, readonly= and ephemeral= among Docker's `Opts` (keys in any
 * case, values strings or booleans: parseCreateOptions checked their types);
 * undefined when from= is absent.
 */
export function parseFromOptions(opts: Readonly<Record<string, unknown>>): FromOptions | undefined {
  const given = new Map<string, string>();
  for (const [key, raw] of Object.entries(opts)) given.set(key.toLowerCase(), String(raw));
  const from = given.get('from');
  if (from === undefined) {
    for (const key of ['readonly', 'ephemeral']) if (given.has(key)) bad(`Invalid options: ${key} goes with from= (the snapshot or volume the new volume is made from)`);
    return undefined;
  }
  const result: FromOptions = {
    source: source(from),
    readonly: given.has('readonly') ? flag('readonly', given.get('readonly')!) : false,
    ephemeral: given.has('ephemeral') ? flag('ephemeral', given.get('ephemeral')!) : false,
  };
  if (result.readonly && result.ephemeral) bad('Invalid options: readonly=true and ephemeral=true: a read-only view never changes, there is nothing to reset; choose one');
  if (result.readonly && !result.source.includes('@')) {
    bad(`Invalid options: readonly=true needs from= a snapshot (<volume>@<date>): ${result.source} is a volume, which changes; snapshot it first (buttervolume snapshot ${result.source})`);
  }
  // size= (store/quota.ts) is a limit, not an attribute of the files: it goes with from= too.
  const others = [...given.keys()].filter((k) => !(FROM_KEYS as readonly string[]).includes(k) && k !== 'size');
  if (others.length > 0) {
    bad(`Invalid options: ${others.join(', ')} with from=: a volume made from ${result.source} takes its content and its files' attributes from it; from= goes with readonly and ephemeral only`);
  }
  return result;
}

// The driver options of VolumeDriver.Create (`docker volume create -o k=v`).
// Values arrive as strings (compose YAML booleans as "True"): parsed
// case-insensitively. Unknown options are refused, naming them (the original
// silently ignored them).
import type { Compression } from '../btrfs/index.js';
import { StoreError } from './errors.js';

export interface CreateOptions {
  /** false: NOCOW volume (databases). Default true, as the original since 3.8. */
  copyOnWrite: boolean;
  /**
   * The btrfs.compression property of the volume ('none': never compress,
   * whatever the mount options say); null: not set, the mount option applies.
   */
  compression: Compression | null;
}

const COMPRESSIONS: Record<string, Compression | null> = { zlib: 'zlib', lzo: 'lzo', zstd: 'zstd', none: 'none' };

function bad(message: string): never {
  throw new StoreError('ERR_INVALID_OPTION', message);
}

/** Parses Docker's `Opts` (absent, null or a string map). */
export function parseCreateOptions(opts: unknown): CreateOptions {
  const result: CreateOptions = { copyOnWrite: true, compression: null };
  if (opts === undefined || opts === null) return result;
  if (typeof opts !== 'object' || Array.isArray(opts)) bad('Opts must be an object of strings');
  for (const [key, raw] of Object.entries(opts)) {
    if (typeof raw !== 'string' && typeof raw !== 'boolean') bad(`Invalid option for ${key}: must be a string`);
    const value = String(raw).trim().toLowerCase();
    switch (key.toLowerCase()) {
      case 'copyonwrite':
        if (value !== 'true' && value !== 'false') bad(`Invalid option for copyonwrite: ${raw}. Set to "true" or "false".`);
        result.copyOnWrite = value === 'true';
        break;
      case 'compression':
        if (!(value in COMPRESSIONS)) bad(`Invalid option for compression: ${raw}. Set to "zlib", "lzo", "zstd" or "none".`);
        result.compression = COMPRESSIONS[value]!;
        break;
      default:
        bad(`Unknown option: ${key} (known options: copyonwrite, compression)`);
    }
  }
  if (!result.copyOnWrite && result.compression && result.compression !== 'none') {
    bad('Invalid options: compression needs copyonwrite=true (btrfs does not compress NOCOW files)');
  }
  return result;
}

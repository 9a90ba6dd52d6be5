// The driver options of VolumeDriver.Create (`docker volume create -o k=v`).
// Values arrive as strings (compose YAML booleans as "True"): parsed
// case-insensitively. Unknown options are refused, naming them (the original
// silently ignored them).
import type { Compression } from '../btrfs/index.js';
import { parseDuration } from '../util/duration.js';
import { StoreError } from './errors.js';
import { parseFromOptions } from './from-options.js';
import { parseVolumeSize } from './quota.js';
import type { FromOptions } from './from-record.js';

/** What makes a volume follow its service between nodes (see docs/cluster.md). */
export interface ClusterOptions {
  /** The nodes that hold copies (peer specs as for send: `node2`, `node3:2222`); this node among them is skipped; none: a volume with an rpo only. */
  replicas: string[];
  /** The recovery point objective in seconds: while in use, snapshot (and push to the replicas) at least this often; null: none. */
  rpo: number | null;
  /** When a peer that may hold a newer state cannot be reached: refuse (manual) or go on after FAILOVER_AFTER (auto). */
  failover: 'manual' | 'auto';
}

export interface CreateOptions {
  /** false: NOCOW volume (databases). Default true, as the original since 3.8. */
  copyOnWrite: boolean;
  /**
   * The btrfs.compression property of the volume ('none': never compress,
   * whatever the mount options say); null: not set, the mount option applies.
   */
  compression: Compression | null;
  /** Present when `replicas` (or `rpo`, `failover`) was given. */
  cluster?: ClusterOptions;
  /** Present when `from` was given: made from a snapshot or a volume (with `readonly`, `ephemeral`; from-options.ts). */
  from?: FromOptions;
  /** Present when `size` was given: the limit of the volume's referenced bytes (quota.ts; needs QUOTAS). */
  size?: number;
}

/** Most replicas of one volume. */
export const MAX_REPLICAS = 16;
const PEER_SPEC = /^[A-Za-z0-9_.@:[\]-]{1,300}$/;

const COMPRESSIONS: Record<string, Compression | null> = { zlib: 'zlib', lzo: 'lzo', zstd: 'zstd', none: 'none' };

function bad(message: string): never {
  throw new StoreError('ERR_INVALID_OPTION', message);
}

/** Parses Docker's `Opts` (absent, null or a string map). */
export function parseCreateOptions(opts: unknown): CreateOptions {
  const result: CreateOptions = { copyOnWrite: true, compression: null };
  if (opts === undefined || opts === null) return result;
  const cluster: Partial<ClusterOptions> = {};
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
      case 'replicas': {
        // Docker passes `-o replicas=a,b` as one string (in a service's --mount spec, CSV-quoted).
        const specs = String(raw).split(',').map((s) => s.trim()).filter((s) => s !== '');
        if (specs.length === 0) bad('Invalid option for replicas: name the nodes, comma-separated (node1,node2)');
        if (specs.length > MAX_REPLICAS) bad(`Invalid option for replicas: at most ${MAX_REPLICAS} nodes`);
        for (const spec of specs) if (!PEER_SPEC.test(spec)) bad(`Invalid option for replicas: ${JSON.stringify(spec.slice(0, 80))} is not a host (name, name:port, user@name)`);
        if (new Set(specs).size !== specs.length) bad('Invalid option for replicas: a node is named twice');
        cluster.replicas = specs;
        break;
      }
      case 'rpo': {
        const seconds = parseDuration(String(raw));
        if (seconds === null || seconds < 10) bad(`Invalid option for rpo: ${raw}. Set a duration of 10s or more (30s, 5m, 1h).`);
        cluster.rpo = seconds;
        break;
      }
      case 'failover':
        if (value !== 'manual' && value !== 'auto') bad(`Invalid option for failover: ${raw}. Set to "manual" or "auto".`);
        cluster.failover = value;
        break;
      case 'size':
        result.size = parseVolumeSize(String(raw), 'option for size', 'ERR_INVALID_OPTION');
        break;
      case 'from':
      case 'readonly':
      case 'ephemeral':
        break; // parseFromOptions, below
      default:
        bad(`Unknown option: ${key} (known options: copyonwrite, compression, size, replicas, rpo, failover, from, readonly, ephemeral)`);
    }
  }
  const from = parseFromOptions(opts as Record<string, unknown>);
  if (from) result.from = from;
  if (result.size !== undefined && from?.readonly) bad('Invalid options: size does not go with readonly=true (a read-only view never grows)');
  if (cluster.replicas === undefined && cluster.failover !== undefined) bad('Invalid options: failover goes with replicas (the nodes that hold copies)');
  if (cluster.replicas !== undefined || cluster.rpo !== undefined) {
    result.cluster = { replicas: cluster.replicas ?? [], rpo: cluster.rpo ?? null, failover: cluster.failover ?? 'manual' };
  }
  if (!result.copyOnWrite && result.compression && result.compression !== 'none') {
    bad('Invalid options: compression needs copyonwrite=true (btrfs does not compress NOCOW files)');
  }
  return result;
}

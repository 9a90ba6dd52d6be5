// Size limits and usage (QUOTAS, `-o size=`, docs/quotas.md). A volume's
// limit is its qgroup's limit on referenced bytes, kept by the kernel and
// nowhere else: it is given to a new subvolume in the very ioctl that makes
// it (create, clone, restore's work copy), so no crash leaves a volume
// without it. Restore and clone carry it over (restore: the target's;
// clone: the source's); a received snapshot has none (it never grows).
//
// "Used" is the qgroup's referenced bytes, read after a commit (what was
// written since counts at the next one). With simple quotas an extent is
// charged to the volume that wrote it for as long as it exists anywhere:
// old data a snapshot keeps still counts, and a clone or a restored volume
// starts near 0. With full qgroups it is what the volume references.
import * as btrfs from '../btrfs/index.js';
import type { QuotaSetting } from '../config.js';
import { errCode } from '../util/err-code.js';
import { forEachLimited } from '../util/limiter.js';
import { formatSize, parseSize } from '../util/size.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { notFound } from './guards.js';
import { isSendMarker, validateVolumeName } from './names.js';

/** Sizes a limit may have: 1M to 8191T. */
export const MIN_SIZE = 1024 ** 2;
export const MAX_SIZE = 8191 * 1024 ** 4;

/** Usage and limit of a volume, as Get shows them when quotas are on (both null when the filesystem's quotas are not on yet). */
export interface QuotaUsage {
  /** Bytes used (the qgroup's referenced bytes). */
  used: number | null;
  /** The limit (`-o size=`, resize), or null: none. */
  size: number | null;
}

/** What deleting a snapshot would free. */
export interface SnapshotSize {
  name: string;
  /** Bytes only this snapshot keeps. */
  exclusive: number;
  /** How it was found: the qgroup (full qgroups) or the files' extents (otherwise). */
  source: 'qgroup' | 'extents';
}

/** The outcome of {@link prepareQuotas}. */
export interface QuotaPreparation {
  setting: QuotaSetting;
  /** Whether this call turned them on. */
  enabled: boolean;
  status: btrfs.QuotaStatus | null;
}

/**
 * A size as `-o size=` and resize take it (`10G`, `512M`, plain bytes),
 * checked against the bounds; `what` names it in the message.
 * @throws StoreError `code` (ERR_INVALID_OPTION or ERR_INVALID_SIZE).
 */
export function parseVolumeSize(text: string, what: string, code: 'ERR_INVALID_OPTION' | 'ERR_INVALID_SIZE'): number {
  const bytes = parseSize(text);
  const hint = `Set a size from ${formatSize(MIN_SIZE)} to ${formatSize(MAX_SIZE)}: a number of bytes or with a binary unit K, M, G, T (10G, 512M).`;
  if (bytes === null) throw new StoreError(code, `Invalid ${what}: ${text}. ${hint}`);
  if (!(bytes >= MIN_SIZE && bytes <= MAX_SIZE)) throw new StoreError(code, `Invalid ${what}: ${text} is ${bytes < MIN_SIZE ? 'too small' : 'too large'}. ${hint}`);
  return bytes;
}

/** The size resize takes: as {@link parseVolumeSize}, or `none` (no limit: null). @throws StoreError ERR_INVALID_SIZE. */
export function parseResizeSize(text: string): number | null {
  return text.trim().toLowerCase() === 'none' ? null : parseVolumeSize(text, 'size', 'ERR_INVALID_SIZE');
}

const statusOf = (c: StoreContext): Promise<btrfs.QuotaStatus> => btrfs.quotaStatus(c.layout.paths.volumesPath);

/**
 * The daemon's start: turns the QUOTAS kind of quotas on for the volumes'
 * filesystem when none is on. Nothing with QUOTAS=off.
 * @throws StoreError `ERR_QUOTAS_MISMATCH` (the other kind is on), `ERR_QUOTAS_UNSUPPORTED` (no simple quotas in this kernel).
 */
export async function prepareQuotas(c: StoreContext): Promise<QuotaPreparation> {
  if (c.quotas === 'off') return { setting: 'off', enabled: false, status: null };
  const before = await statusOf(c);
  if (before.mode === c.quotas) return { setting: c.quotas, enabled: false, status: before };
  if (before.mode !== 'off') throw mismatch(c, before.mode);
  let after: btrfs.QuotaStatus;
  try {
    after = await btrfs.enableQuotas(c.layout.paths.volumesPath, c.quotas);
  } catch (err) {
    if (c.quotas === 'simple' && errCode(err) === 'EINVAL' && (err as btrfs.BtrfsError).syscall === 'BTRFS_IOC_QUOTA_CTL') {
      throw new StoreError(
        'ERR_QUOTAS_UNSUPPORTED',
        'QUOTAS=simple: this kernel has no btrfs simple quotas (Linux 6.7 or later); set QUOTAS=qgroup for full qgroups (slower with many snapshots, see docs/quotas.md) or QUOTAS=off',
        { cause: err },
      );
    }
    throw err;
  }
  if (after.mode !== c.quotas) throw mismatch(c, after.mode); // another process turned the other kind on meanwhile
  return { setting: c.quotas, enabled: true, status: after };
}

function mismatch(c: StoreContext, on: btrfs.QuotaMode): StoreError {
  const kind = (m: btrfs.QuotaMode) => (m === 'simple' ? 'simple quotas' : 'full qgroups');
  return new StoreError(
    'ERR_QUOTAS_MISMATCH',
    `QUOTAS=${c.quotas}, but the filesystem of VOLUMES_PATH ${c.layout.paths.volumesPath} has ${kind(on)} on: set QUOTAS=${on}, or turn them off first (btrfs quota disable ${c.layout.paths.volumesPath}: every limit is lost)`,
  );
}

/**
 * Refuses `what` unless quotas of the QUOTAS kind are on.
 * @throws StoreError `ERR_QUOTAS_OFF` (QUOTAS=off), `ERR_QUOTAS_NOT_ON` (not on the filesystem yet), `ERR_QUOTAS_MISMATCH`.
 */
export async function requireQuotas(c: StoreContext, what: string): Promise<void> {
  if (c.quotas === 'off') {
    throw new StoreError('ERR_QUOTAS_OFF', `${what} needs quotas, and QUOTAS is off: set QUOTAS=simple (or qgroup) for the daemon, which turns them on at its start (docs/quotas.md)`);
  }
  const status = await statusOf(c);
  if (status.mode === 'off') {
    throw new StoreError('ERR_QUOTAS_NOT_ON', `${what} needs quotas, and they are not on for ${c.layout.paths.volumesPath} yet: start the daemon (buttervolume run) with QUOTAS=${c.quotas}, it turns them on`);
  }
  if (status.mode !== c.quotas) throw mismatch(c, status.mode);
}

/**
 * The limit a subvolume made from `path` should get (`qgroupLimit` of
 * createSubvolume/snapshot): its limit, or null for none; undefined when
 * quotas are not in use (the kernel's default then).
 */
export async function limitOf(c: StoreContext, path: string): Promise<number | null | undefined> {
  if (c.quotas === 'off') return undefined;
  try {
    return (await btrfs.qgroupOf(path))?.maxReferenced ?? null;
  } catch (err) {
    if (errCode(err) === 'ENOTCONN') return undefined; // quotas not on (a CLI before the daemon's first start)
    throw err;
  }
}

/** What a new subvolume with no limit of its own gets: none (also not its source's), or the kernel's default with quotas off. */
export const noLimit = (c: StoreContext): null | undefined => (c.quotas === 'off' ? undefined : null);

// Commits shared by the readers of one moment (Get of many volumes at once,
// a metrics scrape): a reader arriving while a commit runs waits for the
// next one (the running one may have started before what it must see was
// written), which every reader arriving meanwhile shares.
interface Commits {
  running: Promise<void> | null;
  next: Promise<void> | null;
}
const commits = new WeakMap<StoreContext, Commits>();

/** Flushes and commits the volumes' filesystem: what was written counts in the qgroups at a commit. */
function commit(c: StoreContext): Promise<void> {
  let s = commits.get(c);
  if (!s) commits.set(c, (s = { running: null, next: null }));
  const state = s;
  if (!state.running) {
    state.running = btrfs.syncFilesystem(c.layout.paths.volumesPath).finally(() => (state.running = null));
    return state.running;
  }
  state.next ??= state.running.catch(() => undefined).then(() => {
    state.next = null;
    return commit(c);
  });
  return state.next;
}

/**
 * How long Get waits for its commit: dockerd asks Get before it starts a
 * container, and a commit writes out every volume's dirty pages first (a
 * few ms idle, ~30 ms after 16 MiB, seconds after gigabytes). Past this,
 * Get answers what the last commit counted; the commit goes on.
 */
const USAGE_COMMIT_WAIT_MS = 1000;

/** Get's part: `{used, size}` with quotas on (null both when the filesystem's are not on yet), nothing with QUOTAS=off. */
export async function quotaUsage(c: StoreContext, path: string): Promise<QuotaUsage | Record<string, never>> {
  if (c.quotas === 'off') return {};
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, USAGE_COMMIT_WAIT_MS)));
  const committed = commit(c);
  committed.catch(() => undefined); // a failure after the wait is not Get's
  await Promise.race([committed, waited]).finally(() => clearTimeout(timer));
  try {
    const q = await btrfs.qgroupOf(path);
    return { used: q?.referenced ?? null, size: q?.maxReferenced ?? null };
  } catch (err) {
    if (errCode(err) === 'ENOTCONN') return { used: null, size: null };
    throw err;
  }
}

/** Options of {@link resize}. */
export interface ResizeOptions {
  /** Set a limit below what the volume already uses (it then only accepts deletions). Default false. */
  force?: boolean;
}

/**
 * Sets the limit of volume `name` to `size` bytes, or none (null). A limit
 * below what it uses is refused unless `force`.
 * @throws StoreError `ERR_VOLUME_NOT_FOUND`, `ERR_SIZE_BELOW_USAGE`, and those of {@link requireQuotas}.
 */
export async function resize(c: StoreContext, name: string, size: number | null, options: ResizeOptions = {}): Promise<QuotaUsage> {
  validateVolumeName(name);
  if (size !== null && !(Number.isSafeInteger(size) && size >= MIN_SIZE && size <= MAX_SIZE)) {
    throw new StoreError('ERR_INVALID_SIZE', `Invalid size: ${size}. Set a size from ${formatSize(MIN_SIZE)} to ${formatSize(MAX_SIZE)}.`);
  }
  await requireQuotas(c, 'resize');
  // Shared: resize changes no content; restore (exclusive) reads the limit it carries over under the same lock.
  return c.locks.with(name, 'shared', async () => {
    const path = c.layout.volume(name);
    if (!(await btrfs.isSubvolume(path))) throw notFound(`${name}: no such volume`);
    await commit(c);
    const used = (await btrfs.qgroupOf(path))?.referenced ?? 0;
    if (size !== null && size < used && !options.force) {
      throw new StoreError(
        'ERR_SIZE_BELOW_USAGE',
        `${name}: cannot limit it to ${formatSize(size)}, it already uses ${formatSize(used)} (${used} bytes); delete data first, or resize with --force (writes then fail until it is below the limit)`,
      );
    }
    await btrfs.setQgroupLimit(path, size);
    return { used, size };
  });
}

/**
 * What deleting each read-only snapshot of `volume` (of every volume without
 * one) would free, in name order (send markers left out). From the qgroups
 * when full qgroups are on and consistent; otherwise from the snapshots'
 * files (FIEMAP): simple quotas charge an extent to the volume that wrote
 * it, so a snapshot's own qgroup says nothing of what it alone keeps.
 */
export async function snapshotSizes(c: StoreContext, volume?: string): Promise<SnapshotSize[]> {
  const prefix = volume === undefined ? '' : `${validateVolumeName(volume)}@`;
  const dir = c.layout.paths.snapshotsPath;
  const snapshots = (await btrfs.listSubvolumes(dir, { prefix })).filter((s) => s.readonly && s.name.includes('@') && !isSendMarker(s.name));
  if (snapshots.length === 0) return [];
  await btrfs.syncFilesystem(dir); // what the volumes changed since counts
  const status = await btrfs.quotaStatus(dir);
  if (status.mode === 'qgroup' && !status.inconsistent && !status.rescanning) {
    const groups = await btrfs.qgroupsById(dir, snapshots.map((s) => s.id));
    if (groups.every((g) => g !== null)) return snapshots.map((s, i) => ({ name: s.name, exclusive: groups[i]!.exclusive, source: 'qgroup' }));
  }
  const sizes = new Map<string, number>();
  await forEachLimited(snapshots, 2, async (s) => {
    try {
      sizes.set(s.name, (await btrfs.extentUsage(s.path)).exclusive);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err; // deleted meanwhile: no longer listed
    }
  });
  return snapshots.filter((s) => sizes.has(s.name)).map((s) => ({ name: s.name, exclusive: sizes.get(s.name)!, source: 'extents' }));
}

/** The store's quota operations (VolumeStore.quotas). */
export interface QuotaApi {
  /** QUOTAS: the kind of quotas the store relies on. */
  readonly setting: QuotaSetting;
  /** The daemon's start: turns the QUOTAS kind on when none is (see {@link prepareQuotas}). */
  prepare(): Promise<QuotaPreparation>;
  /** Sets or clears (null) a volume's limit (see {@link resize}). */
  resize(name: string, size: number | null, options?: ResizeOptions): Promise<QuotaUsage>;
  /** What deleting each snapshot would free (see {@link snapshotSizes}). */
  snapshotSizes(volume?: string): Promise<SnapshotSize[]>;
}

export function quotaApi(c: StoreContext): QuotaApi {
  return {
    setting: c.quotas,
    prepare: () => prepareQuotas(c),
    resize: (name, size, options) => resize(c, name, size, options),
    snapshotSizes: (volume) => snapshotSizes(c, volume),
  };
}

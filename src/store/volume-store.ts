// The volume store: every operation on volumes and snapshots, used alike by
// the plugin server, the CLI and the scheduler. All filesystem work goes
// through buttervolume/btrfs (no process is spawned). Operations on one
// volume are serialised across processes by VolumeLocks: exclusive for what
// replaces or deletes the volume (create, remove, restore), shared for the
// rest (snapshot, mount, clone source, purge).
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import * as btrfs from '../btrfs/index.js';
import type { SpaceReserve } from '../config.js';
import type { Logger } from '../log.js';
import { compareCodePoints } from '../util/code-point.js';
import { holdFileLock } from './file-lock.js';
import { mkdir, readdir, rm } from '../util/fs-async.js';
import { isRunning, pidExists } from '../util/process-stamp.js';
import type { CreateOptions } from './create-options.js';
import { StoreError } from './errors.js';
import { Layout, parseReceiveTemp, parseTempName, type StorePaths } from './layout.js';
import { VolumeLocks, type LockMode } from './locks.js';
import { isMountId, MountTable, type MountCount } from './mounts.js';
import {
  isSendMarker,
  newestSnapshot,
  snapshotName,
  validateNewVolumeName,
  validateSnapshotName,
  validateVolumeName,
} from './names.js';
import { planPurge } from './purge-plan.js';
import { replicationKeep } from './replication-keep.js';
import { errCode } from '../util/err-code.js';

export interface StoreOptions extends StorePaths {
  /** strftime format of the date in snapshot names (the original's DTFORMAT). */
  dtFormat: string;
  /** The clock (tests inject one). */
  now?: () => Date;
  /** Free space a received snapshot must leave on its filesystem (RECEIVE_RESERVE). Default: none. */
  receiveReserve?: SpaceReserve;
}

export interface VolumeSummary {
  name: string;
  mountpoint: string;
}

export interface VolumeStatus {
  /** Read-only snapshots `<name>@<date>` (send markers not counted). */
  snapshots: number;
  lastSnapshot: string | null;
  mounts: number;
  /** Present (true) only when the mount table was damaged for this volume: it may be mounted more than `mounts` times. */
  mountsUnknown?: true;
  copyOnWrite: boolean;
  compression: string | null;
}

export interface VolumeDetails extends VolumeSummary {
  createdAt: Date;
  status: VolumeStatus;
}

export interface RestoreResult {
  /** The snapshot the volume was restored from. */
  snapshot: string;
  /** The restored volume. */
  volume: string;
  /** Read-only snapshot of the volume as it was before, or null if it did not exist. */
  backup: string | null;
}

export interface OpenOptions {
  /** Remove what interrupted operations left behind (see {@link VolumeStore.recover}). Default false. */
  recover?: boolean;
  /**
   * This process owns the store: it alone records mounts (the daemon).
   * Holds the store's owner lock until {@link VolumeStore.close}: a second
   * owner of the same store is refused (`ERR_STORE_IN_USE`). Default false.
   */
  owner?: boolean;
  /** Where damaged state and what recovery could not clean are reported. */
  logger?: Pick<Logger, 'warning' | 'error'>;
}

export interface PurgeOptions {
  dryRun?: boolean;
  /** Evaluate the pattern at this time instead of now. */
  now?: Date;
}

const DELETE_CONCURRENCY = 4;


function notFound(message: string, cause?: unknown): StoreError {
  return new StoreError('ERR_VOLUME_NOT_FOUND', message, cause === undefined ? undefined : { cause });
}

export class VolumeStore {
  readonly layout: Layout;
  readonly dtFormat: string;
  readonly receiveReserve: SpaceReserve;
  private readonly locks: VolumeLocks;
  private readonly now: () => Date;
  private readonly logger: Pick<Logger, 'warning' | 'error'> | undefined;
  private mounts!: MountTable;
  private ownerLock: btrfs.Lock | null = null;

  private constructor(options: StoreOptions, logger: OpenOptions['logger']) {
    this.layout = new Layout(options);
    this.dtFormat = options.dtFormat;
    this.receiveReserve = options.receiveReserve ?? { bytes: 0 };
    this.locks = new VolumeLocks(this.layout.locksDir);
    this.now = options.now ?? (() => new Date());
    this.logger = logger;
  }

  /**
   * Opens the store: creates VOLUMES_PATH and SNAPSHOTS_PATH when missing and
   * refuses paths that are not on btrfs. See {@link OpenOptions}.
   * @throws StoreError `ERR_NOT_BTRFS`, `ERR_STORE_IN_USE` (another owner).
   */
  static async open(options: StoreOptions, { recover = false, owner = false, logger }: OpenOptions = {}): Promise<VolumeStore> {
    const store = new VolumeStore(options, logger);
    // Both at once, and statfs first (one trip to the pool where they exist,
    // as they almost always do; mkdir, stat and statfs where not): every CLI
    // command waits for this. A failure is reported in that order
    // (VOLUMES_PATH first), whichever check ends first.
    const checks = await Promise.allSettled([options.volumesPath, options.snapshotsPath].map(ensureBtrfsDir));
    for (const c of checks) if (c.status === 'rejected') throw c.reason;
    if (owner) {
      const file = join(options.stateDir, 'owner.lock');
      store.ownerLock = await holdFileLock(file);
      if (!store.ownerLock) {
        throw new StoreError('ERR_STORE_IN_USE', `another buttervolume daemon already serves the volumes in ${options.volumesPath} (it holds ${file}): stop it first`);
      }
    }
    try {
      store.mounts = await MountTable.open(store.layout.mountsFile, {
        owner,
        report: (message) => logger?.error(`${message}; restore and remove of such volumes are refused meanwhile`),
      });
      if (recover) await store.recover();
    } catch (err) {
      store.close();
      throw err;
    }
    return store;
  }

  /** Releases the owner lock (idempotent). The store must not record mounts afterwards. */
  close(): void {
    this.ownerLock?.release();
    this.ownerLock = null;
  }

  /**
   * Removes the hidden work subvolumes (`.bv-*`) that a crash left in
   * VOLUMES_PATH. Each holds either new data that was never swapped in, or
   * old data already kept as a snapshot: the volume itself is always whole.
   * One holding nested subvolumes is kept (they were never kept elsewhere)
   * and reported; anything that cannot be cleaned is reported and skipped:
   * nothing a volume contains can stop the daemon from starting. Waits for
   * the volume's lock, so an operation still running in another process
   * finishes first. Returns the names removed.
   */
  async recover(): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.layout.paths.volumesPath)) {
      const temp = parseTempName(name);
      if (!temp) continue;
      const path = this.layout.volume(name);
      try {
        await this.locks.with(temp.volume, 'exclusive', async () => {
          if (await btrfs.isSubvolume(path)) {
            const nested = await btrfs.nestedSubvolumes(path);
            if (nested.length > 0) {
              this.logger?.warning(`kept ${path}: left by an interrupted operation, it holds nested subvolumes (${describeNested(nested)}) that exist nowhere else; move them out, then delete it`);
              return;
            }
            await btrfs.deleteSubvolume(path).catch(ignoreMissing);
          } else {
            await rm(path, { recursive: true, force: true });
          }
          removed.push(name);
        });
      } catch (err) {
        this.logger?.error(`cannot remove ${path}, left by an interrupted operation: ${(err as Error).message}; skipped`);
      }
    }
    removed.push(...(await this.recoverReceives()));
    return removed;
  }

  /** Partial received subvolumes of processes that are gone (a receive killed half-way). */
  private async recoverReceives(): Promise<string[]> {
    const removed: string[] = [];
    const dirs = [this.layout.paths.snapshotsPath, ...(this.layout.paths.receivePaths ?? [])];
    for (const dir of dirs) {
      const names = await readdir(dir).catch((err: unknown) => {
        if (errCode(err) === 'ENOENT') return [] as string[];
        throw err;
      });
      for (const name of names) {
        const temp = parseReceiveTemp(name);
        if (!temp || receiveRunning(temp)) continue;
        const path = join(dir, name);
        try {
          // Immutable or append-only root (what older versions let a stream set): no delete before it is cleared.
          await btrfs.clearImmutable(path).catch(ignoreMissing);
          await btrfs.deleteSubvolume(path).catch(ignoreMissing);
          removed.push(name);
        } catch (err) {
          this.logger?.error(`cannot remove ${path}, left by an interrupted receive: ${(err as Error).message}; skipped`);
        }
      }
    }
    return removed;
  }

  /** Runs `fn` holding the lock of `volume` (for operations built outside the store: replication). */
  withVolumeLock<T>(volume: string, mode: LockMode, fn: () => Promise<T>): Promise<T> {
    return this.locks.with(validateVolumeName(volume), mode, fn);
  }

  // ---- volumes ---------------------------------------------------------------

  /** Whether volume `name` exists (a subvolume in VOLUMES_PATH). */
  exists(name: string): Promise<boolean> {
    return btrfs.isSubvolume(this.layout.volume(validateVolumeName(name)));
  }

  /**
   * Creates volume `name`; an existing volume is left as it is (Docker's
   * Create is idempotent, options are then ignored, like the original).
   * Built under a hidden name and renamed into place, so a crash never
   * leaves a volume without the NOCOW/compression it was asked with.
   */
  async create(name: string, options: CreateOptions): Promise<{ created: boolean }> {
    validateNewVolumeName(name, this.dtFormat);
    return this.locks.with(name, 'exclusive', async () => {
      const path = this.layout.volume(name);
      if (await btrfs.isSubvolume(path)) return { created: false };
      const temp = this.layout.temp('create', name);
      await btrfs.createSubvolume(temp, { nocow: !options.copyOnWrite });
      try {
        if (options.compression) await btrfs.setCompression(temp, options.compression);
        await btrfs.renameNoReplace(temp, path);
      } catch (err) {
        await btrfs.deleteSubvolume(temp).catch(() => undefined);
        if (errCode(err) === 'EEXIST') {
          throw new StoreError('ERR_VOLUME_EXISTS', `${name}: a file or directory with this name is in the way`, { cause: err });
        }
        throw err;
      }
      return { created: true };
    });
  }

  /**
   * Deletes volume `name` with any subvolume nested in it (found and deleted
   * by id: nothing its content does can redirect the delete); its snapshots
   * are kept. Refused while mounted, or when its mount state is unknown.
   */
  async remove(name: string): Promise<void> {
    validateVolumeName(name);
    await this.locks.with(name, 'exclusive', async () => {
      const path = this.layout.volume(name);
      if (!(await btrfs.isSubvolume(path))) throw notFound(`${name}: no such volume`);
      await this.refuseIfMounted(name, 'remove');
      await btrfs.deleteSubvolume(path, { recursive: true });
      await this.mounts.forget(name).catch((err: Error) => this.logger?.error(`removed ${name}, but its mount record stays: ${err.message}`));
    });
  }

  /** Every volume, by name. Entries that are not valid volume names are skipped. */
  async list(): Promise<VolumeSummary[]> {
    // Names only: as root one tree search, whatever the number of volumes.
    const names = await btrfs.listSubvolumeNames(this.layout.paths.volumesPath);
    // A volume name has no "/" and is never "." or "..": layout.volume(name)
    // is a concatenation (path.join per volume was a tenth of List's time).
    const dir = join(this.layout.paths.volumesPath, '/');
    return names.filter(isVolumeName).map((name) => ({ name, mountpoint: dir + name }));
  }

  /** The mountpoint of an existing volume. */
  async path(name: string): Promise<string> {
    const path = this.layout.volume(validateVolumeName(name));
    if (!(await btrfs.isSubvolume(path))) throw notFound(`${name}: no such volume`);
    return path;
  }

  /** Name, mountpoint, creation time and status of volume `name`. */
  async get(name: string): Promise<VolumeDetails> {
    const path = await this.path(name);
    try {
      const [info, snapshots, mounts, nocow, compression] = await Promise.all([
        btrfs.subvolumeInfo(path),
        this.readonlySnapshots(name),
        this.mounts.activeCount(name),
        btrfs.getNocow(path),
        btrfs.getCompression(path),
      ]);
      return {
        name,
        mountpoint: path,
        createdAt: info.otime,
        status: {
          snapshots: snapshots.length,
          lastSnapshot: newestSnapshot(snapshots, name, this.dtFormat),
          mounts: mounts.count,
          ...(mounts.unknown ? { mountsUnknown: true as const } : {}),
          copyOnWrite: !nocow,
          compression,
        },
      };
    } catch (err) {
      // Removed while we looked: it is no longer there.
      if (errCode(err) === 'ENOENT' || errCode(err) === 'EINVAL') throw notFound(`${name}: no such volume`, err);
      throw err;
    }
  }

  /** Records a mount of `name` by caller `id`; returns the mountpoint. A failed write counts nothing. */
  async mount(name: string, id: string): Promise<string> {
    validateVolumeName(name);
    const caller = checkMountId(id);
    return this.locks.with(name, 'shared', async () => {
      const path = await this.path(name);
      await this.mounts.mount(name, caller);
      return path;
    });
  }

  /** Records an unmount; unknown names and ids succeed, as in the original. */
  async unmount(name: string, id: string): Promise<void> {
    if (!isVolumeName(name)) return;
    await this.mounts.unmount(name, checkMountId(id));
  }

  /** Number of active mounts of `name` (the known part when its state is unknown). */
  async mountCount(name: string): Promise<number> {
    return (await this.mountState(name)).count;
  }

  /** What is known of the mounts of `name`. */
  mountState(name: string): Promise<MountCount> {
    return this.mounts.activeCount(validateVolumeName(name));
  }

  // ---- snapshots -------------------------------------------------------------

  /** Takes a read-only snapshot of volume `name`; returns its name `<name>@<date>`. */
  async snapshot(name: string): Promise<string> {
    validateVolumeName(name);
    return this.locks.with(name, 'shared', () => this.snapshotLocked(name));
  }

  /**
   * Snapshot names, in name order (chronological with the default DTFORMAT):
   * those of volume `volume` (send markers included, like the original), or
   * all of them without it.
   */
  async snapshots(volume?: string): Promise<string[]> {
    const prefix = volume === undefined ? undefined : `${validateVolumeName(volume)}@`;
    const entries = await readdir(this.layout.paths.snapshotsPath, { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name.includes('@'))
      .map((e) => e.name)
      .filter((n) => prefix === undefined || n.startsWith(prefix))
      .sort(compareCodePoints);
  }

  /** Deletes snapshot `name`. */
  async removeSnapshot(name: string): Promise<void> {
    validateSnapshotName(name);
    const volume = name.slice(0, name.indexOf('@'));
    await this.locks.with(volume, 'shared', async () => {
      try {
        await btrfs.deleteSubvolume(this.layout.snapshot(name));
      } catch (err) {
        // Missing, or not a subvolume: either way there is no such snapshot
        // (asking the kernel once costs less than checking first).
        if (errCode(err) === 'ENOENT' || errCode(err) === 'EINVAL') {
          throw new StoreError('ERR_SNAPSHOT_NOT_FOUND', 'No such snapshot', { cause: err });
        }
        throw err;
      }
    });
  }

  /**
   * Restores a snapshot into a volume: `name` is a snapshot, or a volume
   * meaning its newest snapshot; `target` defaults to the snapshot's volume.
   * The current volume is first kept as a read-only snapshot (`backup`).
   * The new content is built under a hidden name and swapped in with
   * RENAME_EXCHANGE: at every instant the volume holds the old data or the
   * new data, never nothing. Refused while the target is mounted.
   */
  async restore(name: string, target?: string): Promise<RestoreResult> {
    const given = name.includes('@') ? validateSnapshotName(name) : validateVolumeName(name);
    const volume = target ?? given.split('@')[0]!;
    validateVolumeName(volume);
    // A new volume must have a name that fits (an existing one, made by the original, may be longer).
    const path = this.layout.volume(volume);
    if (!(await btrfs.isSubvolume(path))) validateNewVolumeName(volume, this.dtFormat);
    return this.locks.with(volume, 'exclusive', async () => {
      // Chosen under the lock: a snapshot taken or removed meanwhile counts.
      const snapshot = name.includes('@') ? given : await this.newestSnapshotOf(given);
      const source = this.layout.snapshot(snapshot);
      if (!(await btrfs.isSubvolume(source))) throw new StoreError('ERR_SNAPSHOT_NOT_FOUND', 'No such snapshot');
      const exists = await btrfs.isSubvolume(path);
      if (!exists) validateNewVolumeName(volume, this.dtFormat);
      await this.refuseIfMounted(volume, 'restore');
      if (exists) await this.refuseIfNested(volume, path);
      const temp = this.layout.temp('restore', volume);
      await btrfs.snapshot(source, temp);
      let swapped = false;
      try {
        if (!exists) {
          await btrfs.renameNoReplace(temp, path);
          swapped = true;
          return { snapshot, volume, backup: null };
        }
        const backup = await this.snapshotLocked(volume);
        await btrfs.renameExchange(temp, path);
        swapped = true;
        return { snapshot, volume, backup };
      } finally {
        if (!(exists === false && swapped)) await this.dropWork(temp);
      }
    });
  }

  /** Creates volume `target` as a writable snapshot of volume `name`. */
  async clone(name: string, target: string): Promise<string> {
    validateVolumeName(name);
    validateNewVolumeName(target, this.dtFormat);
    if (name === target) throw new StoreError('ERR_VOLUME_EXISTS', `${target}: volume already exists`);
    return this.withLocks([[name, 'shared'], [target, 'exclusive']], async () => {
      const source = this.layout.volume(name);
      if (!(await btrfs.isSubvolume(source))) throw notFound('No such volume');
      try {
        await btrfs.snapshot(source, this.layout.volume(target));
      } catch (err) {
        if (errCode(err) === 'EEXIST') throw new StoreError('ERR_VOLUME_EXISTS', `${target}: volume already exists`, { cause: err });
        throw err;
      }
      return target;
    });
  }

  /**
   * Deletes the snapshots of `volume` that the retention `pattern` does not
   * keep (the original's algorithm), except those the replication chain
   * needs. Returns the names deleted (or that would be, with dryRun).
   */
  async purge(volume: string, pattern: string, options: PurgeOptions = {}): Promise<string[]> {
    validateVolumeName(volume);
    // Plan on subvolumes only: a stray directory named like a snapshot would
    // make every purge of the volume fail.
    const plan = async () => {
      const entries = await btrfs.listSubvolumes(this.layout.paths.snapshotsPath, { prefix: `${volume}@` });
      const names = entries.map((e) => e.name);
      const received = entries.filter((e) => e.receivedUuid !== null).map((e) => e.name);
      const now = options.now ?? this.now();
      return planPurge({ names, volume, pattern, now, dtformat: this.dtFormat, keep: replicationKeep(names, received) });
    };
    if (options.dryRun) return plan();
    return this.locks.with(volume, 'shared', async () => {
      const doomed = await plan();
      let deleted = 0;
      try {
        await forEachLimited(doomed, DELETE_CONCURRENCY, async (name) => {
          await btrfs.deleteSubvolume(this.layout.snapshot(name)).catch(ignoreMissing);
          deleted++;
        });
      } catch (err) {
        throw new StoreError('ERR_PURGE_FAILED', `purge of ${volume} stopped after deleting ${deleted} of ${doomed.length} snapshots: ${(err as Error).message}`, { cause: err });
      }
      return doomed;
    });
  }

  // ---- internals -------------------------------------------------------------

  private async snapshotLocked(name: string): Promise<string> {
    const source = this.layout.volume(name);
    // Two snapshots within one tick of the DTFORMAT's finest unit get one
    // name: wait for the next tick (at most a second, as DTFORMAT shows seconds).
    const deadline = Date.now() + 1500;
    for (;;) {
      const snap = snapshotName(name, this.now(), this.dtFormat);
      try {
        await btrfs.snapshot(source, this.layout.snapshot(snap), { readonly: true });
        return snap;
      } catch (err) {
        if ((errCode(err) === 'ENOENT' || errCode(err) === 'EINVAL' || errCode(err) === 'ENOTDIR') && (err as btrfs.BtrfsError).path === source) {
          throw notFound(`No such volume: ${name}`, err);
        }
        if (errCode(err) !== 'EEXIST') throw err;
        if (Date.now() > deadline) {
          throw new StoreError('ERR_SNAPSHOT_EXISTS', `${snap}: a snapshot of this name already exists (the clock did not move on?)`, { cause: err });
        }
        await sleep(Math.min(50, Math.max(1, deadline - Date.now())));
      }
    }
  }

  /** The snapshot names of `volume` that really are subvolumes (one listing, names only). */
  private async snapshotSubvolumes(volume: string): Promise<string[]> {
    return btrfs.listSubvolumeNames(this.layout.paths.snapshotsPath, { prefix: `${volume}@` });
  }

  /** The read-only snapshots `<volume>@...` (markers not counted): what Get counts. Other volumes' are not read. */
  private async readonlySnapshots(volume: string): Promise<string[]> {
    const entries = await btrfs.listSubvolumes(this.layout.paths.snapshotsPath, { prefix: `${volume}@` });
    return entries.filter((e) => e.readonly && !isSendMarker(e.name)).map((e) => e.name);
  }

  private async newestSnapshotOf(volume: string): Promise<string> {
    const newest = newestSnapshot(await this.snapshotSubvolumes(volume), volume, this.dtFormat);
    if (newest === null) throw new StoreError('ERR_NO_SNAPSHOT', `${volume}: no snapshot to restore`);
    return newest;
  }

  /** Deletes a work subvolume of restore; keeps it (and says so) if nested subvolumes appeared in it. */
  private async dropWork(temp: string): Promise<void> {
    try {
      await btrfs.deleteSubvolume(temp);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return;
      // ENOTEMPTY: nested subvolumes were created in the old volume after the check.
      this.logger?.error(`kept ${temp} (${(err as Error).message}): it may hold data that exists nowhere else; recover() reports it at each start`);
    }
  }

  /** Restore keeps the old volume as a snapshot, and snapshots do not hold nested subvolumes. */
  private async refuseIfNested(name: string, path: string): Promise<void> {
    const nested = await btrfs.nestedSubvolumes(path);
    if (nested.length === 0) return;
    throw new StoreError(
      'ERR_NESTED_SUBVOLUMES',
      `${name}: cannot restore a volume holding nested subvolumes (${describeNested(nested)}): a snapshot does not keep them, so restoring would lose them; move or delete them first`,
    );
  }

  private async refuseIfMounted(name: string, what: string): Promise<void> {
    const { count, unknown } = await this.mounts.activeCount(name);
    if (unknown) {
      throw new StoreError(
        'ERR_VOLUME_STATE_UNKNOWN',
        `${name}: cannot ${what} it: whether it is mounted is unknown (the mount table ${this.mounts.file} was damaged; see the daemon's log); refused until the next reboot`,
      );
    }
    if (count > 0) {
      throw new StoreError(
        'ERR_VOLUME_IN_USE',
        `${name}: cannot ${what} a volume in use (mounted ${count} time${count > 1 ? 's' : ''}); stop its containers first`,
      );
    }
  }

  /** Takes several volume locks in name order (no deadlock between two multi-lock operations). */
  private withLocks<T>(locks: Array<[string, LockMode]>, fn: () => Promise<T>): Promise<T> {
    const sorted = [...locks].sort(([a], [b]) => compareCodePoints(a, b));
    const run = (i: number): Promise<T> =>
      i === sorted.length ? fn() : this.locks.with(sorted[i]![0], sorted[i]![1], () => run(i + 1));
    return run(0);
  }
}

function describeNested(nested: readonly btrfs.NestedSubvolume[]): string {
  const shown = nested.slice(0, 5).map((n) => n.path);
  return nested.length > 5 ? `${shown.join(', ')} and ${nested.length - 5} more` : shown.join(', ');
}

function isVolumeName(name: string): boolean {
  try {
    validateVolumeName(name);
    return true;
  } catch {
    return false;
  }
}

function checkMountId(id: unknown): string {
  if (!isMountId(id)) {
    throw new StoreError('ERR_INVALID_MOUNT_ID', 'ID must be a non-empty string of at most 256 characters');
  }
  return id;
}

/**
 * Runs `task` over `items`, `limit` at a time. After the first failure no new
 * item starts; the running ones finish; then the first error is thrown (so
 * nothing keeps deleting once the caller has released its lock).
 */
async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      try {
        await task(items[next++]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/**
 * Whether the receive that made a temporary name may still run: its process
 * runs (same boot, PID and start time). An old-form name (PID only) of our
 * own PID is not ours, as we no longer make them: a previous life of this
 * PID (the plugin's node is PID 1 at every start).
 */
function receiveRunning(temp: NonNullable<ReturnType<typeof parseReceiveTemp>>): boolean {
  if ('stamp' in temp) return isRunning(temp.stamp);
  return temp.pid !== process.pid && pidExists(temp.pid);
}

function ignoreMissing(err: unknown): void {
  if (errCode(err) !== 'ENOENT') throw err;
}

/** Makes `dir` if missing; refuses it when it is not on btrfs. */
async function ensureBtrfsDir(dir: string): Promise<void> {
  let onBtrfs: boolean;
  try {
    onBtrfs = await btrfs.isBtrfs(dir);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
    await mkdir(dir, { recursive: true });
    onBtrfs = await btrfs.isBtrfs(dir);
  }
  if (!onBtrfs) throw new StoreError('ERR_NOT_BTRFS', `not a btrfs filesystem: ${dir}`);
}

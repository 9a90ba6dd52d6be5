// The volume store: every operation on volumes and snapshots, used alike by
// the plugin server, the CLI and the scheduler. All filesystem work goes
// through buttervolume/btrfs (no process is spawned). Operations on one
// volume are serialised across processes by VolumeLocks: exclusive for what
// replaces or deletes the volume (create, remove, restore), shared for the
// rest (snapshot, mount, clone source, purge).
import { mkdir, readdir, rm } from 'node:fs/promises';

import { setTimeout as sleep } from 'node:timers/promises';

import * as btrfs from '../btrfs/index.js';
import type { CreateOptions } from './create-options.js';
import { StoreError } from './errors.js';
import { Layout, parseTempName, type StorePaths } from './layout.js';
import { VolumeLocks, type LockMode } from './locks.js';
import { MountTable } from './mounts.js';
import { isSendMarker, parseSnapshotName, snapshotName, validateSnapshotName, validateVolumeName } from './names.js';
import { planPurge } from './purge-plan.js';
import { replicationKeep } from './replication-keep.js';

export interface StoreOptions extends StorePaths {
  /** strftime format of the date in snapshot names (the original's DTFORMAT). */
  dtFormat: string;
  /** The clock (tests inject one). */
  now?: () => Date;
}

export interface VolumeSummary {
  name: string;
  mountpoint: string;
}

export interface VolumeStatus {
  snapshots: number;
  lastSnapshot: string | null;
  mounts: number;
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

export interface PurgeOptions {
  dryRun?: boolean;
  /** Evaluate the pattern at this time instead of now. */
  now?: Date;
}

const DELETE_CONCURRENCY = 4;

const code = (err: unknown): string | undefined => (err as { code?: string } | null)?.code;

function notFound(message: string): StoreError {
  return new StoreError('ERR_VOLUME_NOT_FOUND', message);
}

export class VolumeStore {
  readonly layout: Layout;
  readonly dtFormat: string;
  private readonly locks: VolumeLocks;
  private readonly mounts: MountTable;
  private readonly now: () => Date;

  private constructor(options: StoreOptions) {
    this.layout = new Layout(options);
    this.dtFormat = options.dtFormat;
    this.locks = new VolumeLocks(this.layout.locksDir);
    this.mounts = new MountTable(this.layout.mountsFile);
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Opens the store: creates VOLUMES_PATH and SNAPSHOTS_PATH when missing and
   * refuses paths that are not on btrfs. With `recover`, also cleans what an
   * interrupted operation left behind (see {@link recover}).
   */
  static async open(options: StoreOptions, { recover = false } = {}): Promise<VolumeStore> {
    const store = new VolumeStore(options);
    for (const dir of [options.volumesPath, options.snapshotsPath]) {
      await mkdir(dir, { recursive: true });
      if (!(await btrfs.isBtrfs(dir))) throw new StoreError('ERR_NOT_BTRFS', `not a btrfs filesystem: ${dir}`);
    }
    if (recover) await store.recover();
    return store;
  }

  /**
   * Removes the hidden work subvolumes (`.bv-*`) that a crash left in
   * VOLUMES_PATH. Each holds either new data that was never swapped in, or
   * old data already kept as a snapshot: the volume itself is always whole.
   * Waits for the volume's lock, so an operation still running in another
   * process finishes first. Returns the names removed.
   */
  async recover(): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.layout.paths.volumesPath)) {
      const temp = parseTempName(name);
      if (!temp) continue;
      await this.locks.with(temp.volume, 'exclusive', async () => {
        const path = this.layout.volume(name);
        if (await btrfs.isSubvolume(path)) await btrfs.deleteSubvolume(path, { recursive: true }).catch(ignoreMissing);
        else await rm(path, { recursive: true, force: true });
        removed.push(name);
      });
    }
    return removed;
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
    validateVolumeName(name);
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
        if (code(err) === 'EEXIST') {
          throw new StoreError('ERR_VOLUME_EXISTS', `${name}: a file or directory with this name is in the way`, { cause: err });
        }
        throw err;
      }
      return { created: true };
    });
  }

  /** Deletes volume `name` (with any subvolume nested in it); its snapshots are kept. */
  async remove(name: string): Promise<void> {
    validateVolumeName(name);
    await this.locks.with(name, 'exclusive', async () => {
      const path = this.layout.volume(name);
      if (!(await btrfs.isSubvolume(path))) throw notFound(`${name}: no such volume`);
      await this.refuseIfMounted(name, 'remove');
      await btrfs.deleteSubvolume(path, { recursive: true });
      await this.mounts.forget(name);
    });
  }

  /** Every volume, by name. Entries that are not valid volume names are skipped. */
  async list(): Promise<VolumeSummary[]> {
    const entries = await btrfs.listSubvolumes(this.layout.paths.volumesPath);
    return entries.filter((e) => isVolumeName(e.name)).map((e) => ({ name: e.name, mountpoint: e.path }));
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
    const [info, snapshots, mounts, nocow, compression] = await Promise.all([
      btrfs.subvolumeInfo(path),
      this.snapshots(name),
      this.mounts.activeCount(name),
      btrfs.getNocow(path),
      btrfs.getCompression(path),
    ]);
    const plain = snapshots.filter((s) => !isSendMarker(s));
    return {
      name,
      mountpoint: path,
      createdAt: info.otime,
      status: {
        snapshots: plain.length,
        lastSnapshot: this.newest(plain),
        mounts,
        copyOnWrite: !nocow,
        compression,
      },
    };
  }

  /** Records a mount of `name` by caller `id`; returns the mountpoint. */
  async mount(name: string, id: string): Promise<string> {
    validateVolumeName(name);
    return this.locks.with(name, 'shared', async () => {
      const path = await this.path(name);
      await this.mounts.mount(name, checkMountId(id));
      return path;
    });
  }

  /** Records an unmount; unknown names and ids succeed, as in the original. */
  async unmount(name: string, id: string): Promise<void> {
    if (!isVolumeName(name)) return;
    await this.mounts.unmount(name, checkMountId(id));
  }

  /** Number of active mounts of `name`. */
  mountCount(name: string): Promise<number> {
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
      .sort(byCodePoint);
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
        if (code(err) === 'ENOENT' || code(err) === 'EINVAL') {
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
    const snapshot = name.includes('@') ? validateSnapshotName(name) : await this.newestSnapshotOf(name);
    const volume = target ?? snapshot.slice(0, snapshot.indexOf('@'));
    validateVolumeName(volume);
    return this.locks.with(volume, 'exclusive', async () => {
      const source = this.layout.snapshot(snapshot);
      if (!(await btrfs.isSubvolume(source))) throw new StoreError('ERR_SNAPSHOT_NOT_FOUND', 'No such snapshot');
      await this.refuseIfMounted(volume, 'restore');
      const path = this.layout.volume(volume);
      const temp = this.layout.temp('restore', volume);
      await btrfs.snapshot(source, temp);
      try {
        if (!(await btrfs.isSubvolume(path))) {
          await btrfs.renameNoReplace(temp, path);
          return { snapshot, volume, backup: null };
        }
        const backup = await this.snapshotLocked(volume);
        await btrfs.renameExchange(temp, path);
        return { snapshot, volume, backup };
      } finally {
        // Either the new data that was not swapped in, or the old data, now
        // kept as `backup`. Best effort: recover() removes it otherwise.
        await btrfs.deleteSubvolume(temp, { recursive: true }).catch(() => undefined);
      }
    });
  }

  /** Creates volume `target` as a writable snapshot of volume `name`. */
  async clone(name: string, target: string): Promise<string> {
    validateVolumeName(name);
    validateVolumeName(target);
    if (name === target) throw new StoreError('ERR_VOLUME_EXISTS', `${target}: volume already exists`);
    return this.withLocks([[name, 'shared'], [target, 'exclusive']], async () => {
      const source = this.layout.volume(name);
      if (!(await btrfs.isSubvolume(source))) throw notFound('No such volume');
      try {
        await btrfs.snapshot(source, this.layout.volume(target));
      } catch (err) {
        if (code(err) === 'EEXIST') throw new StoreError('ERR_VOLUME_EXISTS', `${target}: volume already exists`, { cause: err });
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
      const names = await this.snapshotSubvolumes(volume);
      const now = options.now ?? this.now();
      return planPurge({ names, volume, pattern, now, dtformat: this.dtFormat, keep: replicationKeep(names) });
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
    for (let attempt = 0; ; attempt++) {
      const snap = snapshotName(name, this.now(), this.dtFormat);
      try {
        await btrfs.snapshot(source, this.layout.snapshot(snap), { readonly: true });
        return snap;
      } catch (err) {
        if ((code(err) === 'ENOENT' || code(err) === 'EINVAL') && (err as btrfs.BtrfsError).path === source) {
          throw notFound(`No such volume: ${name}`);
        }
        // Same timestamp as a snapshot taken an instant ago: take the next one.
        if (code(err) !== 'EEXIST' || attempt >= 20) throw err;
        await sleep(1);
      }
    }
  }

  /** The snapshot names of `volume` that really are subvolumes (slower than snapshots()). */
  private async snapshotSubvolumes(volume: string): Promise<string[]> {
    const prefix = `${volume}@`;
    const entries = await btrfs.listSubvolumes(this.layout.paths.snapshotsPath);
    return entries.map((e) => e.name).filter((n) => n.startsWith(prefix));
  }

  private async newestSnapshotOf(volume: string): Promise<string> {
    const candidates = (await this.snapshotSubvolumes(volume)).filter((s) => !isSendMarker(s));
    const newest = this.newest(candidates);
    if (newest === null) throw new StoreError('ERR_NO_SNAPSHOT', `${volume}: no snapshot to restore`);
    return newest;
  }

  /** The newest of `names` by the date in the name (name order for ties and undated names). */
  private newest(names: string[]): string | null {
    let best: string | null = null;
    let bestTime = -Infinity;
    for (const name of names) {
      const time = parseSnapshotName(name, this.dtFormat)?.date?.getTime() ?? -Infinity;
      if (best === null || time > bestTime || (time === bestTime && byCodePoint(name, best) > 0)) {
        best = name;
        bestTime = time;
      }
    }
    return best;
  }

  private async refuseIfMounted(name: string, what: string): Promise<void> {
    const count = await this.mounts.activeCount(name);
    if (count > 0) {
      throw new StoreError(
        'ERR_VOLUME_IN_USE',
        `${name}: cannot ${what} a volume in use (mounted ${count} time${count > 1 ? 's' : ''}); stop its containers first`,
      );
    }
  }

  /** Takes several volume locks in name order (no deadlock between two multi-lock operations). */
  private withLocks<T>(locks: Array<[string, LockMode]>, fn: () => Promise<T>): Promise<T> {
    const sorted = [...locks].sort(([a], [b]) => byCodePoint(a, b));
    const run = (i: number): Promise<T> =>
      i === sorted.length ? fn() : this.locks.with(sorted[i]![0], sorted[i]![1], () => run(i + 1));
    return run(0);
  }
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
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
  if (typeof id !== 'string' || id === '' || id.length > 256 || /[\0\n]/.test(id)) {
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

function ignoreMissing(err: unknown): void {
  if (code(err) !== 'ENOENT') throw err;
}


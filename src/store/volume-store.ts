// The volume store: every operation on volumes and snapshots, used alike by
// the plugin server, the CLI, the scheduler and replication, and the only
// way they touch volumes and snapshots. All filesystem work goes through
// buttervolume/btrfs (no process is spawned). Operations on one volume are
// serialised across processes by VolumeLocks: exclusive for what replaces
// or deletes the volume (create, remove, restore), shared for the rest
// (snapshot, mount, clone source, purge, receive).
//
// This class is the API; the volumes and mounts are here, the rest in a
// module each: snapshots.ts, restore.ts, purge.ts, recovery.ts, replicas.ts.
import { join } from 'node:path';
import type { Readable } from 'node:stream';

import * as btrfs from '../btrfs/index.js';
import type { QuotaSetting, SpaceReserve } from '../config.js';
import type { Logger } from '../log.js';
import { errCode } from '../util/err-code.js';
import type { StoreContext } from './context.js';
import type { CreateOptions } from './create-options.js';
import { ensureBtrfsDir } from './dirs.js';
import { StoreError } from './errors.js';
import { holdFileLock } from './file-lock.js';
import { checkMountId, isVolumeName, notFound, refuseIfMounted } from './guards.js';
import { Layout, type StorePaths } from './layout.js';
import type { LocalSnapshot } from './lineage.js';
import { VolumeLocks, type LockMode } from './locks.js';
import { MountTable, type MountCount } from './mounts.js';
import { createFrom, forgetFrom, fromStatus, isEphemeral, mountEphemeral, refuseIfSource, type FromStatus } from './volume-from.js';
import { volumeFreshness, type Freshness } from './freshness.js';
import { liveChanged, type LiveMark } from './live-change.js';
import { newestSnapshot, validateNewVolumeName, validateVolumeName } from './names.js';
import { purge, purgeWithPlan, type PurgeOptions } from './purge.js';
import type { PurgePlan } from './purge-plan.js';
import { quotaApi, quotaUsage, requireQuotas, type QuotaApi, type QuotaUsage } from './quota.js';
import { recover } from './recovery.js';
import * as replicas from './replicas.js';
import { clone, restore, type RestoreOptions, type RestoreResult } from './restore.js';
import { readRecord, removeRecord, updateRecord, type ClusterRecord } from './cluster-record.js';
import type { ClusterOptions } from './create-options.js';
import { readonlySnapshotNames, removeSnapshot, snapshotNames, takeSnapshot } from './snapshots.js';

export type { PurgeOptions } from './purge.js';
export type { PatternRule, Protection, ProtectionRule, PurgeDecision, PurgePlan, SlotBounds, Verdict } from './purge-plan.js';
export type { Place } from './replicas.js';
export type { RestoreOptions, RestoreResult } from './restore.js';
export type { ClusterRecord, ClusterState, Ownership } from './cluster-record.js';
export type { Freshness } from './freshness.js';
export type { LiveMark } from './live-change.js';

export interface StoreOptions extends StorePaths {
  /** strftime format of the date in snapshot names (the original's DTFORMAT). */
  dtFormat: string;
  now?: () => Date; // the clock (tests inject one)
  /** Free space a received snapshot must leave on its filesystem (RECEIVE_RESERVE). Default: none. */
  receiveReserve?: SpaceReserve;
  /** QUOTAS: what `-o size=`, resize and Used rely on (quota.ts). Default 'off'. */
  quotas?: QuotaSetting;
  sendReadAhead?: boolean; // SEND_READ_AHEAD (default true): btrfs send()'s readAhead for the streams made here
}

export interface VolumeSummary {
  name: string;
  mountpoint: string;
}

export interface VolumeStatus extends Partial<FromStatus>, Partial<QuotaUsage> {
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

export class VolumeStore {
  /** Where things are: for the store's modules and for tests; the other layers use the operations. */
  readonly layout: Layout;
  readonly dtFormat: string;
  private readonly c: StoreContext;
  private ownerLock: btrfs.Lock | null = null;
  /** Size limits and usage: turning quotas on, resize, what deleting snapshots frees (quota.ts). */
  readonly quotas: QuotaApi;

  private constructor(c: StoreContext) {
    this.c = c;
    this.layout = c.layout;
    this.dtFormat = c.dtFormat;
    this.quotas = quotaApi(c);
  }

  /**
   * Opens the store: creates VOLUMES_PATH and SNAPSHOTS_PATH when missing and
   * refuses paths that are not on btrfs. See {@link OpenOptions}.
   * @throws StorePathError `ERR_NOT_BTRFS`, `ERR_STORE_PATH`; StoreError `ERR_STORE_IN_USE` (another owner).
   */
  static async open(options: StoreOptions, { recover: recoverNow = false, owner = false, logger }: OpenOptions = {}): Promise<VolumeStore> {
    // Both at once, and statfs first (one trip to the pool where they exist,
    // as they almost always do; mkdir, stat and statfs where not): every CLI
    // command waits for this. A failure is reported in that order
    // (VOLUMES_PATH first), whichever check ends first.
    const checks = await Promise.allSettled([
      ensureBtrfsDir(options.volumesPath, 'VOLUMES_PATH'),
      ensureBtrfsDir(options.snapshotsPath, 'SNAPSHOTS_PATH'),
    ]);
    for (const c of checks) if (c.status === 'rejected') throw c.reason;
    let ownerLock: btrfs.Lock | null = null;
    if (owner) {
      const file = join(options.stateDir, 'owner.lock');
      ownerLock = await holdFileLock(file);
      if (!ownerLock) {
        throw new StoreError('ERR_STORE_IN_USE', `another buttervolume daemon already serves the volumes in ${options.volumesPath} (it holds ${file}): stop it first`);
      }
    }
    try {
      const layout = new Layout(options);
      const mounts = await MountTable.open(layout.mountsFile, {
        owner,
        report: (message) => logger?.error(`${message}; restore and remove of such volumes are refused meanwhile`),
      });
      const store = new VolumeStore({
        layout,
        locks: new VolumeLocks(layout.locksDir),
        mounts,
        dtFormat: options.dtFormat,
        now: options.now ?? (() => new Date()),
        receiveReserve: options.receiveReserve ?? { bytes: 0 },
        quotas: options.quotas ?? 'off',
        sendReadAhead: options.sendReadAhead ?? true,
        logger,
      });
      store.ownerLock = ownerLock;
      if (recoverNow) await store.recover();
      return store;
    } catch (err) {
      ownerLock?.release();
      throw err;
    }
  }

  /** Releases the owner lock (idempotent). The store must not record mounts afterwards. */
  close(): void {
    this.ownerLock?.release();
    this.ownerLock = null;
  }

  /** Removes what interrupted operations left behind (see recovery.ts); returns the names removed. */
  recover(): Promise<string[]> {
    return recover(this.c);
  }

  /** Runs `fn` holding the lock of `volume` (for operations built outside the store: sync). */
  withVolumeLock<T>(volume: string, mode: LockMode, fn: () => Promise<T>): Promise<T> {
    return this.c.locks.with(validateVolumeName(volume), mode, fn);
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
    if (options.size !== undefined) await requireQuotas(this.c, 'the option size=');
    if (options.from) return createFrom(this.c, name, options.from, options.size);
    return this.c.locks.with(name, 'exclusive', async () => {
      const path = this.layout.volume(name);
      if (await btrfs.isSubvolume(path)) {
        // Options are ignored, as the original, but a volume's cluster options are recorded (Swarm creates the volume on each node it runs on).
        const cluster = options.cluster;
        if (cluster && JSON.stringify((await readRecord(this.c, name))?.options) !== JSON.stringify(cluster)) await this.writeNewRecord(name, cluster, false);
        return { created: false };
      }
      const temp = this.layout.temp('create', name);
      await btrfs.createSubvolume(temp, { nocow: !options.copyOnWrite, qgroupLimit: options.size });
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
      if (options.cluster) await this.writeNewRecord(name, options.cluster, true);
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
    await this.c.locks.with(name, 'exclusive', async () => {
      const path = this.layout.volume(name);
      if (!(await btrfs.isSubvolume(path))) throw notFound(`${name}: no such volume`);
      await refuseIfMounted(this.c, name, 'remove');
      await refuseIfSource(this.c, name, 'remove');
      await btrfs.deleteSubvolume(path, { recursive: true });
      await this.c.mounts.forget(name).catch((err: Error) => this.c.logger?.error(`removed ${name}, but its mount record stays: ${err.message}`));
      await removeRecord(this.c, name).catch((err: Error) => this.c.logger?.error(`removed ${name}, but its cluster record stays: ${err.message}`));
      await forgetFrom(this.c, name).catch((err: Error) => this.c.logger?.error(`removed ${name}, but the record of what it was made from stays: ${err.message}`));
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
      const [info, snapshots, mounts, nocow, compression, from, usage] = await Promise.all([
        btrfs.subvolumeInfo(path),
        readonlySnapshotNames(this.c, name),
        this.c.mounts.activeCount(name),
        btrfs.getNocow(path),
        btrfs.getCompression(path),
        fromStatus(this.c, name),
        quotaUsage(this.c, path),
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
          ...from,
          ...usage,
        },
      };
    } catch (err) {
      // Removed while we looked: it is no longer there.
      if (errCode(err) === 'ENOENT' || errCode(err) === 'EINVAL') throw notFound(`${name}: no such volume`, err);
      throw err;
    }
  }

  // ---- mounts ----------------------------------------------------------------

  /** Records a mount of `name` by caller `id` (the first of an ephemeral volume resets it: volume-from.ts); returns the mountpoint. A failed write counts nothing. */
  async mount(name: string, id: string): Promise<string> {
    validateVolumeName(name);
    const caller = checkMountId(id);
    if (await isEphemeral(this.c, name)) return mountEphemeral(this.c, name, caller);
    return this.c.locks.with(name, 'shared', async () => {
      const path = await this.path(name);
      await this.c.mounts.mount(name, caller);
      return path;
    });
  }

  /** Records an unmount; unknown names and ids succeed, as in the original. */
  async unmount(name: string, id: string): Promise<void> {
    if (!isVolumeName(name)) return;
    await this.c.mounts.unmount(name, checkMountId(id));
  }

  /** Number of active mounts of `name` (the known part when its state is unknown). */
  async mountCount(name: string): Promise<number> {
    return (await this.mountState(name)).count;
  }

  /** What is known of the mounts of `name`. */
  mountState(name: string): Promise<MountCount> {
    return this.c.mounts.activeCount(validateVolumeName(name));
  }

  // ---- snapshots (snapshots.ts, restore.ts, purge.ts) --------------------------

  /** Takes a read-only snapshot of volume `name`; returns its name `<name>@<date>`. */
  async snapshot(name: string): Promise<string> {
    validateVolumeName(name);
    return this.c.locks.with(name, 'shared', () => takeSnapshot(this.c, name));
  }

  /**
   * Snapshot names, in name order (chronological with the default DTFORMAT):
   * those of volume `volume` (send markers included, like the original), or
   * all of them without it.
   */
  snapshots(volume?: string): Promise<string[]> {
    return snapshotNames(this.c, volume);
  }

  /** Deletes snapshot `name`. */
  removeSnapshot(name: string): Promise<void> {
    return removeSnapshot(this.c, name);
  }

  /** Restores a snapshot (or a volume's newest) into a volume; see restore.ts. */
  restore(name: string, target?: string, options?: RestoreOptions): Promise<RestoreResult> {
    return restore(this.c, name, target, options);
  }

  /** Creates volume `target` as a writable snapshot of volume `name`. */
  clone(name: string, target: string): Promise<string> {
    return clone(this.c, name, target);
  }

  /**
   * Deletes the snapshots of `volume` that the retention `pattern` does not
   * keep (the original's algorithm), except those the replication chain
   * needs. Returns the names deleted (or that would be, with dryRun).
   */
  purge(volume: string, pattern: string, options: PurgeOptions = {}): Promise<string[]> {
    return purge(this.c, volume, pattern, options);
  }

  /** {@link purge}, returning the plan it carried out (deleted exactly its DELETE decisions): every snapshot with KEEP or DELETE and why. */
  purgeWithPlan(volume: string, pattern: string, options: PurgeOptions = {}): Promise<PurgePlan> {
    return purgeWithPlan(this.c, volume, pattern, options);
  }

  // ---- replication (replicas.ts) -----------------------------------------------

  /** The snapshots of `volume` with their identities (markers included), in name order. */
  listSnapshots(volume: string, place?: replicas.Place): Promise<LocalSnapshot[]> {
    return replicas.listSnapshots(this.c, volume, place);
  }

  /** Receives snapshot `name` of `volume` from a send stream; nothing else is accepted. */
  receiveSnapshot(volume: string, name: string, input: Readable, place?: replicas.Place): Promise<btrfs.ReceiveResult> {
    return replicas.receiveSnapshot(this.c, volume, name, input, place);
  }

  /** The send stream of a snapshot of `volume`, incremental from `parent` or full (or metadata only: an estimate's). */
  snapshotStream(volume: string, snapshot: string, parent: string | null, place?: replicas.Place, options?: { metadataOnly?: boolean }): Promise<Readable> {
    return replicas.snapshotStream(this.c, volume, snapshot, parent, place, options);
  }

  /** Writes the send marker `<snapshot>@<label>` and drops that host's older ones; returns its name. */
  markSent(snapshot: string, label: string): Promise<string> {
    return replicas.markSent(this.c, snapshot, label);
  }

  /** The snapshot a `replicate:<host>` job may send again instead of taking one, or null. */
  unsentSnapshot(volume: string, host: string): Promise<string | null> {
    return replicas.unsentSnapshot(this.c, volume, host);
  }

  /** The root of a live volume as an fd opened beneath its directory (the caller closes it). */
  openLiveVolume(volume: string, place?: replicas.Place): Promise<number> {
    return replicas.openLiveVolume(this.c, volume, place);
  }

  /** Flushes and commits the volumes' filesystem. */
  flushVolumes(): Promise<void> {
    return replicas.flushVolumes(this.c);
  }

  // ---- a volume that follows its service (cluster-record.ts) ------------------------

  /** What this node knows of `volume` as a replicated volume, or null for a volume that is not one. */
  clusterRecord(volume: string): Promise<ClusterRecord | null> {
    return readRecord(this.c, validateVolumeName(volume));
  }

  /** Whether `volume`'s newest snapshot is within its rpo (`-o rpo=`); null for a volume without one. */
  async freshness(volume: string, now?: number): Promise<Freshness | null> {
    await this.path(volume);
    return volumeFreshness(this.c, volume, now);
  }

  /** Whether `volume`'s content changed since `since` (reads, which move its ctransid, do not count: live-change.ts). */
  async liveChanged(volume: string, since: LiveMark): Promise<boolean> {
    await this.path(volume);
    return liveChanged(this.c, volume, since);
  }

  /** Changes the cluster record of `volume` (one change at a time; `change` returns null to keep it). */
  updateClusterRecord(volume: string, change: (r: ClusterRecord | null) => ClusterRecord | null | Promise<ClusterRecord | null>): Promise<ClusterRecord | null> {
    return updateRecord(this.c, validateVolumeName(volume), change);
  }

  /**
   * The live volume's ctransid, after flushing and committing what is in the
   * page cache (a write not yet written back would not count): it moves on
   * any change of the volume's content.
   * @throws StoreError `ERR_VOLUME_NOT_FOUND`.
   */
  async liveCtransid(volume: string): Promise<number> {
    const path = await this.path(volume);
    await btrfs.syncFilesystem(path);
    return (await btrfs.subvolumeInfo(path)).ctransid;
  }

  /**
   * The cluster record of a volume created with cluster options. A record may
   * be here already, made by what peers pushed before the volume existed here
   * (its newest state, its holder): it keeps that, and gets the options and,
   * for a new volume, its live volume as created (nothing yet, epoch 0).
   */
  private async writeNewRecord(volume: string, options: ClusterOptions, created: boolean): Promise<void> {
    const ctransid = (await btrfs.subvolumeInfo(this.layout.volume(volume))).ctransid;
    await updateRecord(this.c, volume, (r) =>
      r ? { ...r, options, ...(created ? { live: { epoch: 0, ctransid } } : {}) } : { version: 1, options, state: null, live: { epoch: 0, ctransid }, owner: null, superseded: [] },
    );
  }
}

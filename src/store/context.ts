// What the store's operations share: where things are, the volume locks, the
// mount table, the clock and the settings. One per open store, made by
// VolumeStore.open and handed to the modules that hold its operations
// (snapshots.ts, restore.ts, purge.ts, recovery.ts, replicas.ts).
import type { QuotaSetting, SpaceReserve } from '../config.js';
import type { Logger } from '../log.js';
import type { Layout } from './layout.js';
import type { VolumeLocks } from './locks.js';
import type { MountTable } from './mounts.js';

export interface StoreContext {
  readonly layout: Layout;
  readonly locks: VolumeLocks;
  readonly mounts: MountTable;
  /** strftime format of the date in snapshot names (the original's DTFORMAT). */
  readonly dtFormat: string;
  readonly now: () => Date;
  /** Free space a received snapshot must leave on its filesystem (RECEIVE_RESERVE). */
  readonly receiveReserve: SpaceReserve;
  /** QUOTAS: the kind of quotas limits and usage rely on ('off': none; see quota.ts). */
  readonly quotas: QuotaSetting;
  /** SEND_READ_AHEAD: btrfs send()'s readAhead for the snapshot streams made here. */
  readonly sendReadAhead: boolean;
  /** Where damaged state and what recovery could not clean are reported. */
  readonly logger: Pick<Logger, 'warning' | 'error'> | undefined;
}

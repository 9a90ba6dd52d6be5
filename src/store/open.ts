// The store as configured: used by the daemon, the CLI and the scheduler so
// that all of them agree on paths, lock files and the mount table.
import { join } from 'node:path';

import type { Config } from '../config.js';
import { VolumeStore, type OpenOptions } from './volume-store.js';

/**
 * Where lock files and the mount table live: `<VOLUMES_PATH>/.buttervolume`.
 * Beside the volumes, so every process that sees the volumes sees the same
 * state: the daemon, the CLI on the host, and a managed plugin (whose
 * RUNPATH is private to its container). The name is never a volume: it
 * starts with "." and is a plain directory.
 */
export function stateDirOf(config: Config): string {
  return join(config.volumesPath, '.buttervolume');
}

/**
 * Opens the store of `config`. The daemon opens it as its `owner` (the one
 * writer of the mount table) and with `recover` (cleans leftovers of
 * interrupted operations); every other process reads.
 */
export function openStore(config: Config, options: OpenOptions & { now?: () => Date } = {}): Promise<VolumeStore> {
  const { now, ...open } = options;
  return VolumeStore.open(
    {
      volumesPath: config.volumesPath,
      snapshotsPath: config.snapshotsPath,
      testRemotePath: config.testRemotePath,
      stateDir: stateDirOf(config),
      dtFormat: config.dtFormat,
      receiveReserve: config.receiveReserve,
      quotas: config.quotas,
      sendReadAhead: config.sendReadAhead,
      ...(now ? { now } : {}),
    },
    open,
  );
}

// What replication works with, read in one place: the store, the logger, and
// the SSH settings (SSH_PORT, SSH_PATH) and TEST_REMOTE_PATH of the config.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { VolumeStore } from '../store/volume-store.js';

export interface ReplicationContext {
  config: Config;
  store: VolumeStore;
  logger: Logger;
}

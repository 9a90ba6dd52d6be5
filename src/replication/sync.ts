// sync <volume> <host>...: the original's rsync pull without rsync (see
// sync-source.ts for the serving side).
import type { ConnectOptions } from './client.js';
import type { ReplicationContext } from './context.js';
import type { Peer } from './peer.js';
import { ReplicationError } from './protocol.js';

export interface SyncOptions {
  /** From the peers' TEST_REMOTE_PATH/<volume>. */
  test?: boolean;
}

export interface SyncResult {
  volume: string;
  /** Per host: what was done, or why it failed. */
  hosts: Array<{ host: string; ok: boolean; error?: string; copied?: number }>;
}

export async function syncVolume(ctx: ReplicationContext, volume: string, peers: readonly Peer[], connect: ConnectOptions, options: SyncOptions): Promise<SyncResult> {
  void ctx;
  void connect;
  void options;
  throw new ReplicationError('ERR_NOT_AVAILABLE', `sync of ${volume} from ${peers.map((p) => p.label).join(', ')} is not available yet`);
}

// `buttervolume send <host> <snapshot>` (host first, as the original).
import { validateHostName, validateSnapshotName } from '../../store/names.js';
import type { CommandContext } from '../context.js';
import { replicationUnavailable } from '../replication.js';

/** Checks the host and the snapshot name, then fails: replication is not available yet. */
export async function run(_ctx: CommandContext, [host, snapshot]: readonly string[]): Promise<void> {
  validateHostName(host);
  validateSnapshotName(snapshot);
  throw replicationUnavailable();
}

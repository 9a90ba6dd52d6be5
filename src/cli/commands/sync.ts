// `buttervolume sync <volume> <host> [<host>...]`.
import { validateHostName, validateVolumeName } from '../../store/names.js';
import type { CommandContext } from '../context.js';
import { replicationUnavailable } from '../replication.js';

/** Checks the volume and host names, then fails: replication is not available yet. */
export async function run(_ctx: CommandContext, [volume, ...hosts]: readonly string[]): Promise<void> {
  validateVolumeName(volume);
  hosts.forEach(validateHostName);
  throw replicationUnavailable();
}

// `buttervolume sync [--test] <volume> <host> [<host>...]`: a local snapshot
// first (for recovery, as the original), then a pull from each host.
import { checkPeerSpec } from '../../replication/peer.js';
import { validateVolumeName } from '../../store/names.js';
import type { CommandContext } from '../context.js';
import { about } from '../errors.js';

/** Pulls the volume's files from each host; fails naming the hosts that failed. */
export async function run(ctx: CommandContext, [volume, ...hosts]: readonly string[]): Promise<void> {
  if (hosts.length === 0) throw ctx.usageError('missing argument <host>');
  validateVolumeName(volume);
  hosts.forEach((h) => checkPeerSpec(h));
  const replicator = await ctx.replicator();
  const result = await replicator.snapshotAndSync(volume!, hosts, { test: ctx.options['test'] === true }).catch((err: unknown) => {
    if ((err as { snapshot?: string }).snapshot !== undefined) throw err;
    return about({ volume: volume! })(err); // the snapshot failed: the volume is named
  });
  ctx.out.result([], result);
}

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
  hosts.forEach((h) => replicator.peer(h)); // with SSH_PORT: every host is good before the snapshot
  const store = await ctx.store();
  const snapshot = await store.snapshot(volume!).catch(about({ volume: volume! }));
  const result = await replicator.sync(volume!, hosts, { test: ctx.options['test'] === true });
  ctx.out.result([], { snapshot, ...result });
}

// `buttervolume sync [--test] <volume> <host> [<host>...]`: a local snapshot
// first (for recovery, as the original), then a pull from each host.
import type { CommandContext } from '../context.js';
import { about } from '../errors.js';

/** Pulls the volume's files from each host; fails naming the hosts that failed. */
export async function run(ctx: CommandContext, [volume, ...hosts]: readonly string[]): Promise<void> {
  if (hosts.length === 0) throw ctx.usageError('missing argument <host>');
  const store = await ctx.store();
  const snapshot = await store.snapshot(volume!).catch(about({ volume: volume! }));
  const replicator = await ctx.replicator();
  const result = await replicator.sync(volume!, hosts, { test: ctx.options['test'] === true });
  ctx.out.result([], { snapshot, ...result });
}

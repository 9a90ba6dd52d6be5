// `buttervolume receive [--test] <host> <volume>`: prints the snapshot fetched.
import { checkPeerSpec } from '../../replication/peer.js';
import { validateVolumeName } from '../../store/names.js';
import type { CommandContext } from '../context.js';

/** Fetches the newest snapshot of the volume the host holds and this host lacks. */
export async function run(ctx: CommandContext, [host, volume]: readonly string[]): Promise<void> {
  checkPeerSpec(host);
  validateVolumeName(volume);
  const replicator = await ctx.replicator();
  const result = await replicator.pull(host!, volume!, { test: ctx.options['test'] === true });
  ctx.out.result(result.fetched === null ? [] : [result.fetched], result);
}

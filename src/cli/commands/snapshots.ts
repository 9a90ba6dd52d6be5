// `buttervolume snapshots [<volume>]`: one name per line, oldest first.
// Without a volume every snapshot is listed (the original listed nothing:
// its client asked for the snapshots of a volume called "None").
import type { CommandContext } from '../context.js';

/** Lists snapshot names of `volume`, or of every volume. */
export async function run(ctx: CommandContext, [volume]: readonly string[]): Promise<void> {
  const store = await ctx.store();
  const snapshots = await store.snapshots(volume);
  ctx.out.result(snapshots, { volume: volume ?? null, snapshots });
}

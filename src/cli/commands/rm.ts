// `buttervolume rm <snapshot>`: prints nothing, as the original.
import type { CommandContext } from '../context.js';
import { about } from '../errors.js';

/** Deletes one snapshot. */
export async function run(ctx: CommandContext, [snapshot]: readonly string[]): Promise<void> {
  const store = await ctx.store();
  await store.removeSnapshot(snapshot!).catch(about({ snapshot: snapshot! }));
}

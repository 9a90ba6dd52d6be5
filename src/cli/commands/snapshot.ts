// `buttervolume snapshot <volume>`: prints the snapshot name, as the original.
import type { CommandContext } from '../context.js';
import { about } from '../errors.js';

/** Takes a read-only snapshot of the volume; prints `<volume>@<date>`. */
export async function run(ctx: CommandContext, [volume]: readonly string[]): Promise<void> {
  const store = await ctx.store();
  const snapshot = await store.snapshot(volume!).catch(about({ volume: volume! }));
  ctx.out.result([snapshot], { volume, snapshot });
}

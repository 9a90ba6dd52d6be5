// `buttervolume clone <volume> <new_volume>`: prints the new volume's name.
import type { CommandContext } from '../context.js';
import { about } from '../errors.js';

/** Creates `target` as a writable snapshot of `volume`. */
export async function run(ctx: CommandContext, [volume, target]: readonly string[]): Promise<void> {
  const store = await ctx.store();
  const created = await store.clone(volume!, target!).catch(about({ volume: volume! }));
  ctx.out.result([created], { source: volume, volume: created });
}

// `buttervolume restore <snapshot|volume> [<target>]`: prints the name of the
// snapshot that keeps the replaced volume, or nothing when there was none.
import type { CommandContext } from '../context.js';
import { about } from '../errors.js';

/** Restores a snapshot (a volume name means its newest snapshot) into a volume. */
export async function run(ctx: CommandContext, [name, target]: readonly string[]): Promise<void> {
  const store = await ctx.store();
  // Without "@" the store looks for the newest snapshot: there "not found" is ERR_NO_SNAPSHOT, worded by the store.
  const subject = name!.includes('@') ? { snapshot: name! } : {};
  const result = await store.restore(name!, target).catch(about(subject));
  ctx.out.result(result.backup === null ? [] : [result.backup], result);
}

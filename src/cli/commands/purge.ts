// `buttervolume purge [--dryrun] [--now <time>] <pattern> <volume>`. The
// original printed nothing and wrote the dry run's decisions to the plugin's
// log; here a dry run prints them, one name per line.
import type { CommandContext } from '../context.js';
import { nowOption } from '../time.js';

/** Deletes (or with --dryrun lists) the snapshots the pattern does not keep. */
export async function run(ctx: CommandContext, [pattern, volume]: readonly string[]): Promise<void> {
  const now = nowOption(ctx) ?? new Date();
  const dryRun = ctx.options['dryrun'] === true;
  const store = await ctx.store();
  // Oldest first, like `snapshots` (the store returns the original's deletion order).
  // What the pattern would delete but a volume made from it needs (`-o from=`): kept, and said on stderr.
  const kept: Array<{ snapshot: string; reason: string }> = [];
  const snapshots = (await store.purge(volume!, pattern!, { dryRun, now, onKept: (snapshot, reason) => kept.push({ snapshot, reason }) })).sort();
  if (!ctx.out.json) for (const k of kept) process.stderr.write(`buttervolume: purge: kept ${k.snapshot}: ${k.reason}\n`);
  ctx.out.result(dryRun ? snapshots : [], { volume, pattern, now: now.toISOString(), dryRun, snapshots, ...(kept.length > 0 ? { kept } : {}) });
}

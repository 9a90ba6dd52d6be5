// `buttervolume purge [--dryrun] [--explain] [--at <date>|--now <time>] <pattern> <volume>`.
// The original printed nothing and wrote the dry run's decisions to the
// plugin's log; here a dry run prints them, one name per line. --explain
// prints every snapshot with KEEP or DELETE and why: the plan the purge
// carries out (or, with --dryrun, would), not a second reckoning of it.
import type { PurgeDecision } from '../../store/volume-store.js';
import type { CommandContext } from '../context.js';
import { atOption } from '../time.js';

/** One line of --explain: `KEEP|DELETE<tab><snapshot><tab><why>`. */
export function explainLine(d: PurgeDecision): string {
  return `${d.decision}\t${d.name}\t${d.reason}`;
}

/** Deletes (or with --dryrun lists) the snapshots the pattern does not keep; --explain: every snapshot and why. */
export async function run(ctx: CommandContext, [pattern, volume]: readonly string[]): Promise<void> {
  const now = (await atOption(ctx, async () => (await ctx.config()).dtFormat)) ?? new Date();
  const dryRun = ctx.options['dryrun'] === true;
  const store = await ctx.store();
  const head = { volume, pattern, now: now.toISOString(), dryRun };
  if (ctx.options['explain'] !== true) {
    // What the pattern would delete but a volume made from it needs (`-o from=`): kept, and said on stderr.
    const kept: Array<{ snapshot: string; reason: string }> = [];
    // Oldest first, like `snapshots` (the store returns the original's deletion order).
    const snapshots = (await store.purge(volume!, pattern!, { dryRun, now, onKept: (snapshot, reason) => kept.push({ snapshot, reason }) })).sort();
    if (!ctx.out.json) for (const k of kept) process.stderr.write(`buttervolume: purge: kept ${k.snapshot}: ${k.reason}\n`);
    ctx.out.result(dryRun ? snapshots : [], { ...head, snapshots, ...(kept.length > 0 ? { kept } : {}) });
    return;
  }
  const plan = await store.purgeWithPlan(volume!, pattern!, { dryRun, now });
  ctx.out.result(plan.decisions.map(explainLine), { ...head, snapshots: [...plan.doomed].sort(), decisions: plan.decisions });
}

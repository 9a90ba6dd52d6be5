// `buttervolume snapshots [<volume>]`: one name per line, oldest first;
// with --size, each with what deleting it would free (store/quota.ts).
// Without a volume every snapshot is listed (the original listed nothing:
// its client asked for the snapshots of a volume called "None").
import type { CommandContext } from '../context.js';

/** Lists snapshot names of `volume`, or of every volume; with --size, what deleting each would free. */
export async function run(ctx: CommandContext, [volume]: readonly string[]): Promise<void> {
  const store = await ctx.store();
  if (ctx.options['size'] === true) {
    const [sizes, { formatSize }] = await Promise.all([store.quotas.snapshotSizes(volume), import('../../util/size.js')]);
    const lines = sizes.map((s) => `${s.name} ${formatSize(s.exclusive)}`);
    ctx.out.result(lines, { volume: volume ?? null, snapshots: sizes.map((s) => ({ name: s.name, exclusive: s.exclusive, source: s.source })) });
    return;
  }
  const snapshots = await store.snapshots(volume);
  ctx.out.result(snapshots, { volume: volume ?? null, snapshots });
}

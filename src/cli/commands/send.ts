// `buttervolume send [--test] [--limit <rate>] [--compress] <host> <snapshot>`
// (host first, as the original). Prints nothing, as the original; a progress
// line on stderr when it is a terminal.
import { checkPeerSpec } from '../../replication/peer.js';
import { validateSnapshotName } from '../../store/names.js';
import type { CommandContext } from '../context.js';
import { about } from '../errors.js';

/** Sends the snapshot to the host. */
export async function run(ctx: CommandContext, [host, snapshot]: readonly string[]): Promise<void> {
  checkPeerSpec(host); // the arguments before the configuration: a script's typo shows as such
  validateSnapshotName(snapshot);
  const { parseRate, progressLine } = await import('../../replication/transfer.js');
  const raw = ctx.options['limit'];
  const limit = raw === undefined ? undefined : parseRate(String(raw));
  if (limit === null) throw ctx.usageError(`invalid --limit ${JSON.stringify(String(raw))}: expected bytes per second such as 10M or 512K`);
  const progress = process.stderr.isTTY && ctx.options['progress'] !== false;
  const replicator = await ctx.replicator();
  const result = await replicator
    .send(snapshot!, host!, {
      test: ctx.options['test'] === true,
      compress: ctx.options['compress'] === true,
      ...(limit ? { limit } : {}),
      ...(progress ? { onProgress: (p) => process.stderr.write(`\r\x1b[K${progressLine(p)}${p.done ? '\n' : ''}`) } : {}),
    })
    .catch(about({ snapshot: snapshot! }));
  ctx.out.result([], result);
}

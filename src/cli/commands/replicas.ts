// `buttervolume replicas [--json] <volume>`: what each replica of a volume
// that follows its service holds now (asked by the daemon).
import { validateVolumeName } from '../../store/names.js';
import type { CommandContext } from '../context.js';
import { callDaemon } from '../daemon-call.js';

interface Replica {
  peer: string;
  node: string | null;
  reachable: boolean;
  error?: string;
  epoch: number | null;
  snapshot: string | null;
  age: string | null;
  mounted: number;
}

/** Prints the volume's state here and each replica's. */
export async function run(ctx: CommandContext, [volume]: readonly string[]): Promise<void> {
  validateVolumeName(volume);
  const answer = await callDaemon(await ctx.config(), 'VolumeDriver.Volume.Replicas', { Name: volume });
  const replicas = (answer.Replicas ?? []) as Replica[];
  const lines = [
    `${String(answer.Volume)} on ${String(answer.Node)}: ${String(answer.State)}, state ${String(answer.Epoch)}, held by ${String(answer.Holder ?? 'nobody')}`,
    ...replicas.map((r) =>
      r.reachable
        ? `  ${r.peer} (${r.node}): state ${r.epoch}${r.snapshot ? ` ${r.snapshot}` : ''}${r.age ? `, ${r.age} old` : ''}${r.mounted > 0 ? ', in use there' : ''}`
        : `  ${r.peer}: unreachable (${r.error ?? 'no answer'})`,
    ),
  ];
  const { Err: _err, ...doc } = answer;
  ctx.out.result(lines, doc);
}

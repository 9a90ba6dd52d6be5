// `buttervolume failover [--json] <volume>`: take a volume that follows its
// service over on this node although its holder cannot be reached: from the
// newest state the other replicas hold (what the holder wrote since its last
// push is given up; it never serves its copy as current again). Carried out
// by the daemon; the task's next start (Swarm retries it) then mounts.
import { validateVolumeName } from '../../store/names.js';
import type { CommandContext } from '../context.js';
import { callDaemon } from '../daemon-call.js';

export async function run(ctx: CommandContext, [volume]: readonly string[]): Promise<void> {
  validateVolumeName(volume);
  const answer = await callDaemon(await ctx.config(), 'VolumeDriver.Volume.Failover', { Name: volume });
  const { Err: _err, ...doc } = answer;
  ctx.out.result([`${String(answer.Volume)} is taken over by ${String(answer.Node)} at state ${String(answer.Epoch)}`], doc);
}

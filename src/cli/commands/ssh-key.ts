// `buttervolume ssh-key`: this host's public key (made when there is none),
// the line a peer adds to its authorized_keys.
import { hostname } from 'node:os';

import type { CommandContext } from '../context.js';

export async function run(ctx: CommandContext): Promise<void> {
  const config = await ctx.config();
  const { clientKey } = await import('../../replication/keys.js');
  const key = await clientKey(config.sshPath);
  ctx.out.lines([`${key.publicLine} buttervolume@${hostname()}`]);
}

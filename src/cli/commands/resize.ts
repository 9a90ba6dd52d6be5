// `buttervolume resize <volume> <size>`: sets (or with `none` removes) the
// size limit of a volume, in-process like the other commands.
import { formatSize } from '../../util/size.js';
import type { CommandContext } from '../context.js';
import { about, CliError } from '../errors.js';

/** Sets the limit of `volume` to `size` (`10G`, bytes, `none`). */
export async function run(ctx: CommandContext, [volume, given]: readonly string[]): Promise<void> {
  const [store, { parseResizeSize }] = await Promise.all([ctx.store(), import('../../store/quota.js')]);
  let size: number | null;
  try {
    size = parseResizeSize(given!);
  } catch (err) {
    throw new CliError((err as Error).message, { cause: err, code: 'ERR_INVALID_SIZE' });
  }
  const result = await store.quotas.resize(volume!, size, { force: ctx.options['force'] === true }).catch(about({ volume: volume! }));
  const shown = result.size === null ? 'none' : formatSize(result.size);
  ctx.out.result([`${volume!} ${shown} (used ${formatSize(result.used ?? 0)})`], { volume, size: result.size, used: result.used });
}

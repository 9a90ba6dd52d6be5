// RECEIVE_RESERVE in bytes for one receive: a percentage is of the size of
// the filesystem the snapshot goes to, read when the receive starts.
import type { SpaceReserve } from '../config.js';
import { statfs } from '../util/fs-async.js';

export async function reserveBytes(dir: string, reserve: SpaceReserve): Promise<number> {
  if ('bytes' in reserve) return reserve.bytes;
  if (reserve.percent === 0) return 0;
  const fs = await statfs(dir);
  return Math.floor((fs.blocks * fs.bsize * reserve.percent) / 100);
}

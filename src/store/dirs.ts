// The store's directories: made when missing, refused when not on btrfs.
// The daemon names the variable in its own words from `variable` and `path`.
import * as btrfs from '../btrfs/index.js';
import { errCode } from '../util/err-code.js';
import { mkdir } from '../util/fs-async.js';
import { nameErrorClass } from '../util/error-name.js';
import { StoreError } from './errors.js';

/** A store directory that cannot be used: `ERR_NOT_BTRFS`, or `ERR_STORE_PATH` when it cannot be made. */
export class StorePathError extends StoreError {
  constructor(
    code: 'ERR_NOT_BTRFS' | 'ERR_STORE_PATH',
    message: string,
    /** The setting that names it: VOLUMES_PATH, SNAPSHOTS_PATH. */
    readonly variable: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Makes `dir` if missing; refuses it when it is not on btrfs. */
export async function ensureBtrfsDir(dir: string, variable: string): Promise<void> {
  let onBtrfs: boolean;
  try {
    onBtrfs = await btrfs.isBtrfs(dir);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
    try {
      await mkdir(dir, { recursive: true });
    } catch (mkdirError) {
      throw new StorePathError('ERR_STORE_PATH', `cannot create ${dir}: ${(mkdirError as Error).message}`, variable, dir, { cause: mkdirError });
    }
    onBtrfs = await btrfs.isBtrfs(dir);
  }
  if (!onBtrfs) throw new StorePathError('ERR_NOT_BTRFS', `not a btrfs filesystem: ${dir}`, variable, dir);
}

nameErrorClass(StorePathError, 'StorePathError');

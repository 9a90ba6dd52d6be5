// The checks the store's operations share before they touch a volume: it
// exists, it is not mounted (or its mount state is not unknown), it holds no
// nested subvolume a snapshot would lose; names and mount ids are valid.
import type * as btrfs from '../btrfs/index.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { isMountId } from './mounts.js';
import { validateVolumeName } from './names.js';

export function notFound(message: string, cause?: unknown): StoreError {
  return new StoreError('ERR_VOLUME_NOT_FOUND', message, cause === undefined ? undefined : { cause });
}

export function isVolumeName(name: string): boolean {
  try {
    validateVolumeName(name);
    return true;
  } catch {
    return false;
  }
}

export function checkMountId(id: unknown): string {
  if (!isMountId(id)) {
    throw new StoreError('ERR_INVALID_MOUNT_ID', 'ID must be a non-empty string of at most 256 characters');
  }
  return id;
}

export function describeNested(nested: readonly btrfs.NestedSubvolume[]): string {
  const shown = nested.slice(0, 5).map((n) => n.path);
  return nested.length > 5 ? `${shown.join(', ')} and ${nested.length - 5} more` : shown.join(', ');
}

/** Refuses `what` on volume `name` while it is mounted, or while whether it is mounted is unknown. */
export async function refuseIfMounted(c: StoreContext, name: string, what: string): Promise<void> {
  const { count, unknown } = await c.mounts.activeCount(name);
  if (unknown) {
    throw new StoreError(
      'ERR_VOLUME_STATE_UNKNOWN',
      `${name}: cannot ${what} it: whether it is mounted is unknown (the mount table ${c.mounts.file} was damaged; see the daemon's log); refused until the next reboot`,
    );
  }
  if (count > 0) {
    throw new StoreError('ERR_VOLUME_IN_USE', `${name}: cannot ${what} a volume in use (mounted ${count} time${count > 1 ? 's' : ''}); stop its containers first`);
  }
}

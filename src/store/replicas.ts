// The store's side of replication: what snapshots a directory holds (with
// the identities send and receive match on), receiving one into it under the
// name it must have, and the send markers `<snapshot>@<host>`. Used by the
// replication service (the peer's requests) and the sender.
import { join } from 'node:path';
import type { Readable } from 'node:stream';

import * as btrfs from '../btrfs/index.js';
import type { Logger } from '../log.js';
import { compareCodePoints } from '../util/code-point.js';
import { StoreError } from './errors.js';
import { isSendMarker, validateSnapshotName, validateVolumeName } from './names.js';
import { reserveBytes } from './receive-reserve.js';
import type { VolumeStore } from './volume-store.js';
import { errCode } from '../util/err-code.js';

/** A read-only snapshot and what send and receive match on. */
export type SnapshotIdentity = Pick<
  btrfs.ListedSubvolume,
  'name' | 'path' | 'uuid' | 'receivedUuid' | 'parentUuid' | 'ctransid' | 'stransid' | 'rtransid' | 'otime' | 'readonly'
>;

/** The subvolumes `<volume>@...` of `dir` (markers included), oldest first by name. */
export async function snapshotsIn(dir: string, volume: string): Promise<SnapshotIdentity[]> {
  validateVolumeName(volume);
  const prefix = `${volume}@`;
  const entries = await btrfs.listSubvolumes(dir, { prefix }).catch((err: unknown) => {
    if (errCode(err) === 'ENOENT') return [];
    throw err;
  });
  return entries
    .map((e) => ({
      name: e.name,
      path: e.path,
      uuid: e.uuid,
      receivedUuid: e.receivedUuid,
      parentUuid: e.parentUuid,
      ctransid: e.ctransid,
      stransid: e.stransid,
      rtransid: e.rtransid,
      otime: e.otime,
      readonly: e.readonly,
    }))
    .sort((a, b) => compareCodePoints(a.name, b.name));
}

/**
 * Receives one snapshot of `volume` named `name` from `input` into `dir`
 * (SNAPSHOTS_PATH, or TEST_REMOTE_PATH for a test request), under the
 * volume's shared lock. The stream must carry exactly that one snapshot:
 * the receiver refuses any other name before creating it (a stream cannot
 * plant a send marker, say, even when it fails afterwards). The store's
 * RECEIVE_RESERVE is kept free. Parents and clone sources come from `dir` only.
 * @throws StoreError `ERR_INVALID_SNAPSHOT_NAME`; SendStreamError
 *   `ERR_RECEIVE_UNEXPECTED`, `ERR_RECEIVE_NO_SPACE`; what receive() throws
 *   (EEXIST when the name is taken...).
 */
export async function receiveSnapshot(
  store: VolumeStore,
  dir: string,
  volume: string,
  name: string,
  input: Readable,
): Promise<btrfs.ReceiveResult> {
  validateVolumeName(volume);
  validateSnapshotName(name);
  if (!name.startsWith(`${volume}@`) || isSendMarker(name)) {
    throw new StoreError('ERR_INVALID_SNAPSHOT_NAME', `${name} is not a snapshot of ${volume}`);
  }
  return store.withVolumeLock(volume, 'shared', async () => {
    const reserve = await reserveBytes(dir, store.receiveReserve).catch((err: unknown) => {
      input.destroy(); // as receive() does when it fails: the sender is released
      throw err;
    });
    const result = await btrfs.receive(dir, input, { expectName: name, reserveBytes: reserve });
    // The receiver refused anything else already: a last check, never expected to fire.
    if (result.subvolumes.length !== 1 || result.name !== name) {
      for (const s of result.subvolumes) await btrfs.deleteSubvolume(s.path).catch(() => undefined);
      throw new StoreError('ERR_RECEIVE_UNEXPECTED', `the stream held ${result.subvolumes.map((s) => s.name).join(', ')}, not just ${name}: deleted`);
    }
    return result;
  });
}

/**
 * Records that `snapshot` was sent to the host labelled `label`: the
 * original's marker `<snapshot>@<label>`, a read-only snapshot of it (purge
 * keeps the newest marker of each host and its snapshot, so the next send
 * stays incremental). Older markers of that host for the volume go (the
 * original meant to delete them and did not). Idempotent.
 * @throws StoreError `ERR_INVALID_SNAPSHOT_NAME` (the marker's name would be over 255 bytes).
 */
export async function markSent(store: VolumeStore, snapshot: string, label: string, logger?: Pick<Logger, 'warning'>): Promise<string> {
  validateSnapshotName(snapshot);
  const marker = validateSnapshotName(`${snapshot}@${label}`);
  const volume = snapshot.slice(0, snapshot.indexOf('@'));
  return store.withVolumeLock(volume, 'shared', async () => {
    const dir = store.layout.paths.snapshotsPath;
    try {
      await btrfs.snapshot(join(dir, snapshot), join(dir, marker), { readonly: true });
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
    }
    for (const old of await snapshotsIn(dir, volume)) {
      if (!isSendMarker(old.name) || old.name === marker || !old.name.endsWith(`@${label}`)) continue;
      if (old.name.slice(old.name.lastIndexOf('@') + 1) !== label) continue;
      await btrfs.deleteSubvolume(old.path).catch((err: Error) => logger?.warning(`cannot delete the old marker ${old.name}: ${err.message}`));
    }
    return marker;
  });
}

// Whether a live volume changed since a state of it, as a user means it:
// its content, names, owners, modes or times other than access times. The
// subvolume's ctransid moves on any change of its tree, reads included: a
// read sets an access time (relatime: the first read after a write), which
// is written as a change. When the ctransid moved, the live volume is
// compared with the state itself: a send stream from the state to a
// read-only snapshot of the live volume that holds nothing but UTIMES says
// nothing else changed. Conservative: anything it cannot tell is a change.
import * as btrfs from '../btrfs/index.js';
import { ignoreMissing } from '../util/err-code.js';
import { readdir } from '../util/fs-async.js';
import type { StoreContext } from './context.js';

// Send stream framing (btrfs send's own output, from our kernel: not checked
// as a received stream is): "btrfs-stream\0", a u32 version, then commands of
// a u32 payload length, a u16 command, a u32 CRC and the payload.
const STREAM_HEADER = 17;
const COMMAND_HEADER = 10;
/** SNAPSHOT, UTIMES, END: what a stream between two states that differ only in times holds. */
const TIMES_ONLY = new Set([2, 20, 21]);

/** What a live volume is compared with: its ctransid then, and the state's snapshot (null: the volume as created, empty; undefined: not known, the ctransid decides). */
export interface LiveMark {
  ctransid: number;
  snapshot: string | null | undefined;
}

/** Whether `volume`'s live content changed since `since` (see the header). */
export async function liveChanged(c: StoreContext, volume: string, since: LiveMark): Promise<boolean> {
  const live = c.layout.volume(volume);
  await btrfs.syncFilesystem(live);
  if ((await btrfs.subvolumeInfo(live)).ctransid === since.ctransid) return false;
  if (since.snapshot === undefined) return true;
  if (since.snapshot === null) return (await readdir(live)).length > 0;
  const state = c.layout.snapshot(since.snapshot);
  if (!(await btrfs.isSubvolume(state).catch(() => false))) return true;
  return c.locks.with(volume, 'shared', async () => {
    const probe = c.layout.temp('check', volume);
    await btrfs.snapshot(live, probe, { readonly: true });
    try {
      return await onlyTimesDiffer(state, probe).then((same) => !same, () => true);
    } finally {
      await btrfs.deleteSubvolume(probe).catch(ignoreMissing);
    }
  });
}

/** Whether the stream from `parent` to `snapshot` changes nothing but times (UTIMES); stops at the first other command. */
async function onlyTimesDiffer(parent: string, snapshot: string): Promise<boolean> {
  const stream = btrfs.send(snapshot, { parent });
  // Its 'close' comes once the send ioctl has returned (btrfs/send.ts): only
  // then may the probe be deleted (EPERM while a send uses it).
  const closed = new Promise((resolve) => stream.once('close', resolve));
  stream.on('error', () => undefined); // (a stream stopped early fails with EPIPE after the loop)
  let pending: Buffer = Buffer.alloc(0);
  let at = STREAM_HEADER; // the next command's offset in `pending`, once the header is there
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= at + COMMAND_HEADER) {
        if (!TIMES_ONLY.has(pending.readUInt16LE(at + 4))) return false;
        at += COMMAND_HEADER + pending.readUInt32LE(at);
      }
      // Keep only what the next command needs: a UTIMES-only stream of many files stays small in memory.
      if (at > pending.length) {
        at -= pending.length;
        pending = Buffer.alloc(0);
      } else if (at > STREAM_HEADER) {
        pending = pending.subarray(at);
        at = 0;
      }
    }
    return true;
  } finally {
    stream.destroy();
    await closed;
  }
}

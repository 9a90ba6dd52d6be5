// How big a send stream will be, for a progress line's ETA: a metadata-only
// send (NO_FILE_DATA: UPDATE_EXTENT commands instead of data) of the same
// snapshot and parent, whose extents add up to the data to come. Cheap next
// to the real send (no data is read), bounded in memory, and read here with
// a minimal walk of the framing (it is our own kernel's output, and only an
// estimate: anything unexpected gives up with null).
import type { Readable } from 'node:stream';

const MAX_METADATA_BYTES = 64 * 1024 * 1024;
const UPDATE_EXTENT = 22;
const ATTR_SIZE = 4;

/** Sum of the SIZE attributes of the UPDATE_EXTENT commands of a v2 stream in `buf`; null if it does not frame. */
function extentBytes(buf: Buffer): number | null {
  if (buf.length < 17 || buf.toString('latin1', 0, 12) !== 'btrfs-stream') return null;
  let total = 0;
  for (let pos = 17; pos < buf.length; ) {
    if (pos + 10 > buf.length) return null;
    const len = buf.readUInt32LE(pos);
    const cmd = buf.readUInt16LE(pos + 4);
    const end = pos + 10 + len;
    if (end > buf.length) return null;
    if (cmd === UPDATE_EXTENT) {
      for (let at = pos + 10; at + 4 <= end; ) {
        const type = buf.readUInt16LE(at);
        const size = buf.readUInt16LE(at + 2);
        if (type === ATTR_SIZE && size === 8 && at + 12 <= end) total += Number(buf.readBigUInt64LE(at + 4));
        at += 4 + size;
      }
    }
    pos = end;
  }
  return total;
}

/**
 * The estimated size in bytes of a send stream, from its metadata-only v2
 * stream `stream` (VolumeStore.snapshotStream with metadataOnly), or null
 * when it cannot be told.
 */
export async function estimateSendSize(stream: Readable): Promise<number | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > MAX_METADATA_BYTES) {
      stream.destroy();
      return null;
    }
    chunks.push(chunk as Buffer);
  }
  const data = extentBytes(Buffer.concat(chunks));
  return data === null ? null : size + data;
}

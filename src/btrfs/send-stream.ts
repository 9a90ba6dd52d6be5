// Reading send streams in memory: the debugging view of what the native
// reader (native/core/send_stream.h) hands to a receiver.
import { typeError } from './args.js';
import { native } from './binding.js';
import type { DumpedCommand } from './types.js';

export type { DumpedCommand, SendCommandName, SendTime, SendU64 } from './types.js';


/**
 * Every command of the send stream(s) in `data`, checked as a receiver
 * checks them (framing, CRC32C, attributes, paths). Several streams back to
 * back (`btrfs send a b`) and several subvolumes in one stream (`send -e`)
 * are read; the END of each stream is listed. Synchronous: it parses memory.
 * Equivalent: `btrfs receive --dump` (which stops after the first stream).
 * @throws TypeError when `data` is not a Uint8Array (a Buffer is one).
 * @throws SendStreamError ERR_SEND_STREAM_TRUNCATED, ERR_SEND_STREAM_CHECKSUM,
 * ERR_SEND_STREAM_INVALID, ERR_SEND_STREAM_UNSUPPORTED (version 3+, --no-data).
 */
export function dumpSendStream(data: Uint8Array): DumpedCommand[] {
  if (!(data instanceof Uint8Array)) {
    throw typeError(`data must be a Uint8Array, got ${data === null ? 'null' : typeof data}`, 'ERR_INVALID_ARG_TYPE');
  }
  return native.dumpSendStream(data);
}

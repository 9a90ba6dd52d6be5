// receive(): btrfs send streams from a Node Readable, applied in-process by
// the native receiver (native/core/receive.h) on a thread of its own. The
// input is written into a pipe the receiver reads: its backpressure is the
// pipe's. Destroying or erroring the input aborts the receive, and the
// partial subvolume is deleted.
import type { SocketConstructorOpts } from 'node:net';
import { basename, join } from 'node:path';
// node:net is taken when a receive starts, not imported: see send.ts.
import type { Readable } from 'node:stream';

import { checkOptions, checkPath } from './args.js';
import { native } from './binding.js';
import type { ReceivedSubvolume, ReceiveOptions, ReceiveResult } from './types.js';

let sequence = 0;

/** `.bv-receive.<pid>.<n>`: the default prefix of temporary names (unique in this process). */
function defaultPrefix(): string {
  return `.bv-receive.${process.pid}.${++sequence}`;
}

/**
 * Receives every stream of `input` into directory `destDir`, each as a
 * read-only received subvolume named as its stream says, and resolves once
 * all are in place. Each is built under a temporary name (`tempPrefix`.N,
 * default `.bv-receive.<pid>.<n>`) and renamed only when complete; on any
 * failure the partial one is deleted (those completed before stay) and the
 * input is destroyed (its source, a send say, is released). Parents
 * and clone sources are taken only from subvolumes directly in `destDir`
 * and `allowedDirs`, and a parent must be read-only, received from the very
 * state the stream names and unchanged since. Equivalent: `btrfs receive
 * destDir` (which checks none of this). Needs CAP_SYS_ADMIN.
 * @throws SendStreamError (a corrupt or truncated stream; ERR_RECEIVE_* when
 *   the destination cannot take it: no parent, modified parent, clone source
 *   not allowed, aborted input), BtrfsError (a syscall failed; `command` and
 *   `commandName` say at which command), EEXIST when a name is taken.
 */
export async function receive(destDir: string, input: Readable, options?: ReceiveOptions): Promise<ReceiveResult> {
  const dest = checkPath(destDir, 'destDir');
  const opts = checkOptions<ReceiveOptions>(options, { allowedDirs: 'array', tempPrefix: 'string', forceDecompress: 'boolean' }, 'receive');
  const allowed = (opts.allowedDirs ?? []).map((d, i) => checkPath(d, `allowedDirs[${i}]`));
  const prefix = opts.tempPrefix ?? defaultPrefix();
  if (prefix.includes('/') || !prefix.startsWith('.')) {
    throw Object.assign(new TypeError('tempPrefix must be one hidden name component (starting with ".")'), { code: 'ERR_INVALID_ARG_VALUE' });
  }
  if (typeof input?.pipe !== 'function') throw Object.assign(new TypeError('input must be a Readable stream'), { code: 'ERR_INVALID_ARG_TYPE' });
  const job = native.receive(dest, allowed, prefix, opts.forceDecompress ?? false);
  const { Socket } = process.getBuiltinModule('node:net');
  // A high-water mark above a chunk's size: with net's default (16 KiB) every
  // chunk of an ssh2 channel (32 KiB packets) made write() return false, and
  // pipe() paused and resumed the input once per chunk.
  // (net.Socket passes it on to stream.Duplex; @types/node does not list it.)
  const sink = new Socket({ fd: job.fd, readable: false, writable: true, writableHighWaterMark: 1 << 20 } as SocketConstructorOpts);
  let inputError: Error | undefined;
  const abort = (err?: Error) => {
    inputError ??= err;
    job.abort();
    sink.destroy(); // EOF for the receiver, which then sees the abort
  };
  // The receiver may stop reading (an error of its own) and close its end: writes then fail, its error tells why.
  sink.on('error', () => abort());
  input.on('error', (err) => abort(err));
  input.on('close', () => {
    if (!input.readableEnded) abort();
  });
  // The chunks of one turn of the event loop reach the pipe in one writev
  // instead of one write(2) each (ssh2 delivers 32 KiB packets, a few per
  // socket read): fewer system calls and wake-ups of the receiving thread.
  let corked = false;
  const uncork = () => {
    corked = false;
    sink.uncork();
  };
  const cork = () => {
    if (corked) return;
    corked = true;
    sink.cork();
    setImmediate(uncork);
  };
  input.on('data', cork); // before pipe()'s listener: the sink is corked when it writes
  input.pipe(sink);
  let subvolumes: ReceivedSubvolume[];
  try {
    const received = await job.done;
    subvolumes = received.map((r) => ({ ...r, path: join(dest, r.name) }));
  } catch (err) {
    // What is left of the input is of no use: release its source (a send blocked on a full pipe ends).
    if (!input.readableEnded) input.destroy();
    // Aborted because the input failed (a send that errored, a peer gone): that failure is the error.
    if (inputError && (err as { code?: string }).code === 'ERR_RECEIVE_ABORTED') throw inputError;
    throw err;
  } finally {
    input.off('data', cork);
    input.unpipe(sink);
    sink.destroy();
  }
  const last = subvolumes[subvolumes.length - 1];
  if (!last) throw new Error(`internal: no subvolume received into ${basename(dest)}`);
  return { ...last, subvolumes };
}

// receive(): btrfs send streams from a Node Readable, applied in-process by
// the native receiver (native/core/receive.h) on a thread of its own. The
// input's Buffers are queued for it as they come (no pipe, no copy on this
// thread); the input is paused while the queue is full. Destroying or
// erroring the input aborts the receive, and the partial subvolume is
// deleted.
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';

import { processStamp } from '../util/process-stamp.js';
import { checkOptions, checkPath, typeError } from './args.js';
import { native } from './binding.js';
import type { ReceivedSubvolume, ReceiveOptions, ReceiveResult } from './types.js';
import { errCode } from '../util/err-code.js';

let sequence = 0;

/**
 * `.bv-receive.<pid>.<start>.<boot>.<n>`: the default prefix of temporary
 * names (unique in this process; the stamp tells a leftover of a process
 * gone from a receive still running, see util/process-stamp.ts).
 */
function defaultPrefix(): string {
  const { pid, start, boot } = processStamp();
  return `.bv-receive.${pid}.${start}.${boot}.${++sequence}`;
}

/**
 * Receives every stream of `input` into directory `destDir`, each as a
 * read-only received subvolume named as its stream says, and resolves once
 * all are in place. Each is built under a temporary name (`tempPrefix`.N,
 * default `.bv-receive.<pid>.<start>.<boot>.<n>`) and renamed only when complete; on any
 * failure the partial one is deleted (those completed before stay) and the
 * input is destroyed (its source, a send say, is released). The input's
 * Buffers are read where they are, on the receiving thread: like any
 * consumer that queues chunks, it needs them left unchanged once emitted
 * (Node's streams do). Parents
 * and clone sources are taken only from subvolumes directly in `destDir`
 * and `allowedDirs`, and a parent must be read-only, received from the very
 * state the stream names and unchanged since. Equivalent: `btrfs receive
 * destDir` (which checks none of this). `expectName` allows one subvolume
 * of that name only; `reserveBytes` keeps that much free space on the
 * filesystem. Needs CAP_SYS_ADMIN.
 * @throws SendStreamError (a corrupt or truncated stream; ERR_RECEIVE_* when
 *   the destination cannot take it: no parent, modified parent, clone source
 *   not allowed, aborted input, another subvolume than expectName, not enough
 *   free space left), BtrfsError (a syscall failed; `command` and
 *   `commandName` say at which command), EEXIST when a name is taken.
 */
export async function receive(destDir: string, input: Readable, options?: ReceiveOptions): Promise<ReceiveResult> {
  const dest = checkPath(destDir, 'destDir');
  const opts = checkOptions<ReceiveOptions>(
    options,
    { allowedDirs: 'array', tempPrefix: 'string', forceDecompress: 'boolean', expectName: 'string', reserveBytes: 'number' },
    'receive',
  );
  const allowed = (opts.allowedDirs ?? []).map((d, i) => checkPath(d, `allowedDirs[${i}]`));
  const prefix = opts.tempPrefix ?? defaultPrefix();
  if (prefix.includes('/') || !prefix.startsWith('.')) {
    throw typeError('tempPrefix must be one hidden name component (starting with ".")', 'ERR_INVALID_ARG_VALUE');
  }
  const expectName = opts.expectName ?? null;
  if (expectName !== null && (expectName === '' || expectName.includes('/') || expectName.includes('\0') || expectName === '.' || expectName === '..')) {
    throw typeError('expectName must be one name component', 'ERR_INVALID_ARG_VALUE');
  }
  const reserve = opts.reserveBytes ?? 0;
  if (!Number.isSafeInteger(reserve) || reserve < 0) {
    throw typeError(`reserveBytes must be a whole number of bytes >= 0, got ${reserve}`, 'ERR_INVALID_ARG_VALUE');
  }
  if (typeof input?.pipe !== 'function') throw typeError('input must be a Readable stream', 'ERR_INVALID_ARG_TYPE');
  let inputError: Error | undefined;
  // The receiver has taken its queue down to half: the input may flow again.
  const job = native.receive(dest, allowed, prefix, opts.forceDecompress ?? false, expectName, reserve, () => input.resume());
  const abort = (err?: Error) => {
    inputError ??= err;
    job.abort();
  };
  let streamBytes = 0;
  const onData = (chunk: unknown) => {
    if (!(chunk instanceof Uint8Array)) {
      // Not bytes (an encoding set, an object stream): nothing to receive from.
      abort(typeError(`receive's input must give Buffers, not ${typeof chunk === 'string' ? 'strings' : typeof chunk}`, 'ERR_INVALID_ARG_TYPE'));
      return;
    }
    streamBytes += chunk.byteLength;
    if (!job.push(chunk)) input.pause();
  };
  const onEnd = () => job.end();
  const onError = (err: Error) => abort(err);
  const onClose = () => {
    if (!input.readableEnded) abort();
  };
  input.on('error', onError);
  input.on('close', onClose);
  input.on('end', onEnd);
  input.on('data', onData);
  // An input already over: pipe() would have ended its destination too.
  if (input.readableEnded) job.end();
  else if (input.destroyed) abort();
  // A 'data' listener does not restart an input paused before (a request line read off it, say): as pipe() does.
  else input.resume();
  let subvolumes: ReceivedSubvolume[];
  try {
    const received = await job.done;
    subvolumes = received.map((r) => ({ ...r, path: join(dest, r.name) }));
  } catch (err) {
    // What is left of the input is of no use: release its source (a send blocked on a full pipe ends).
    if (!input.readableEnded) input.destroy();
    // Aborted because the input failed (a send that errored, a peer gone): that failure is the error.
    if (inputError && errCode(err) === 'ERR_RECEIVE_ABORTED') throw inputError;
    throw err;
  } finally {
    input.off('data', onData);
    input.off('end', onEnd);
    input.off('close', onClose);
    // onError stays: an error the input emits later has nowhere else to go (it is dropped, not thrown).
    job.release();
  }
  const last = subvolumes[subvolumes.length - 1];
  if (!last) throw new Error(`internal: no subvolume received into ${basename(dest)}`);
  return { ...last, subvolumes, streamBytes };
}

// send(): a read-only snapshot as a btrfs send stream, in a Node Readable.
// BTRFS_IOC_SEND runs on a native thread of its own, writing into a pipe
// that a net.Socket reads; the pipe is the backpressure. The Readable ends
// only once the ioctl has returned successfully; a failure destroys it with
// the BtrfsError. Destroying it closes the pipe, the kernel's next write
// fails with EPIPE and the thread ends.
// node:net and node:stream are taken when a send starts, not imported: this
// module is part of the package's index, and the CLI's short commands (one
// bundle) and the daemon's start need neither.
import type { Readable } from 'node:stream';

import { checkOptions, checkPath } from './args.js';
import { native } from './binding.js';
import type { SendOptions } from './types.js';

/** The highest send stream version this kernel offers (/sys/fs/btrfs/features/send_stream_version). */
export function sendProtocolMax(): number {
  return native.sendProtocolMax();
}

function typeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_VALUE' });
}

/**
 * The send stream of the read-only snapshot at `snapshotPath`: full, or
 * incremental from `parent` (also used as a clone source), with more
 * `cloneSources` if given. Protocol: the highest the kernel offers unless
 * `protocol` says 1 or 2; `compressed` (protocol 2) sends compressed extents
 * as they are on disk. Equivalent: `btrfs send [-p parent] [-c src]...
 * [--proto N] [--compressed-data]`. Needs CAP_SYS_ADMIN.
 * @throws TypeError for bad arguments. The stream errors with a BtrfsError
 *   (syscall `BTRFS_IOC_SEND`): EPERM (not read-only, or not root), EPROTO
 *   (protocol), ENOENT, ENOTDIR.
 */
export function send(snapshotPath: string, options?: SendOptions): Readable {
  const snapshot = checkPath(snapshotPath, 'snapshotPath');
  const opts = checkOptions<SendOptions>(options, { parent: 'string', cloneSources: 'array', protocol: 'number', compressed: 'boolean', noData: 'boolean' }, 'send');
  const parent = opts.parent === undefined ? null : checkPath(opts.parent, 'parent');
  const clones = (opts.cloneSources ?? []).map((c, i) => checkPath(c, `cloneSources[${i}]`));
  const protocol = opts.protocol ?? 0;
  if (![0, 1, 2].includes(protocol)) throw typeError(`protocol must be 1 or 2 (or 0 for the highest), got ${protocol}`);
  if (opts.compressed && protocol === 1) throw typeError('compressed needs protocol 2');
  const job = native.send(snapshot, parent, clones, protocol, opts.compressed ?? false, opts.noData ?? false);
  return streamOf(job.fd, job.done);
}

/** A Readable over the pipe `fd` that ends only once `done` resolved. */
function streamOf(fd: number, done: Promise<void>): Readable {
  const { Socket } = process.getBuiltinModule('node:net');
  const { Readable } = process.getBuiltinModule('node:stream');
  const pipe = new Socket({ fd, readable: true, writable: false });
  let destroyed = false;
  let drained = false;
  const out = new Readable({
    highWaterMark: 1 << 20,
    read() {
      pipe.resume();
    },
    destroy(err, callback) {
      destroyed = true;
      pipe.destroy(); // the kernel gets EPIPE on its next write
      // The thread is gone once `done` settles: report only after, so no fd or thread outlives the stream.
      done.then(
        () => callback(err),
        () => callback(err),
      );
    },
  });
  pipe.on('data', (chunk: Buffer) => {
    if (!out.push(chunk)) pipe.pause();
  });
  const settle = () => {
    if (!drained || destroyed) return;
    done.then(
      () => {
        if (!destroyed) out.push(null);
      },
      (err: Error) => {
        if (!destroyed) out.destroy(err);
      },
    );
  };
  pipe.on('end', () => {
    drained = true;
    settle();
  });
  pipe.on('error', (err) => {
    if (!destroyed) out.destroy(err);
  });
  // A failure before the pipe ends (the snapshot cannot be opened...) is reported at once.
  done.catch((err: Error) => {
    if (!destroyed) out.destroy(err);
  });
  return out;
}

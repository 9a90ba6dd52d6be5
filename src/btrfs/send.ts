// send(): a read-only snapshot as a btrfs send stream, in a Node Readable.
// BTRFS_IOC_SEND runs on a native thread of its own, writing into a pipe
// that the returned stream (a net.Socket) reads; the pipe is the
// backpressure. The stream ends only once the ioctl has returned
// successfully; a failure destroys it with the BtrfsError. Destroying it
// closes the pipe, the kernel's next write fails with EPIPE and the thread
// ends.
// node:net and node:stream are taken when a send starts, not imported: this
// module is part of the package's index, and the CLI's short commands (one
// bundle) and the daemon's start need neither.
import type { Readable } from 'node:stream';

import { checkOptions, checkPath, typeError } from './args.js';
import { native } from './binding.js';
import type { SendOptions } from './types.js';

/** The highest send stream version this kernel offers (/sys/fs/btrfs/features/send_stream_version). */
export function sendProtocolMax(): number {
  return native.sendProtocolMax();
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
  const opts = checkOptions<SendOptions>(options, { parent: 'string', cloneSources: 'array', protocol: 'number', compressed: 'boolean', noData: 'boolean', readAhead: 'boolean' }, 'send');
  const parent = opts.parent === undefined ? null : checkPath(opts.parent, 'parent');
  const clones = (opts.cloneSources ?? []).map((c, i) => checkPath(c, `cloneSources[${i}]`));
  const protocol = opts.protocol ?? 0;
  if (![0, 1, 2].includes(protocol)) throw typeError(`protocol must be 1 or 2 (or 0 for the highest), got ${protocol}`, 'ERR_INVALID_ARG_VALUE');
  if (opts.compressed && protocol === 1) throw typeError('compressed needs protocol 2', 'ERR_INVALID_ARG_VALUE');
  const job = native.send(snapshot, parent, clones, protocol, opts.compressed ?? false, opts.noData ?? false, opts.readAhead ?? true);
  return streamOf(job);
}

/**
 * The stream over the pipe `fd`: a net.Socket reading it, whose end is held
 * back until `done` resolved, and which `done`'s failure destroys. One
 * stream, not a Readable wrapping a Socket: the kernel writes each command
 * on its own, so a stream arrives in thousands of small chunks, and a
 * second layer for each of them made an incremental send 1.13x slower
 * (docs/benchmarks.md, 2026-12-02).
 */
function streamOf(job: SendJob): Readable {
  return new (sendSocketClass())(job);
}

type SendJob = ReturnType<typeof native.send>;
type SendSocketClass = new (job: SendJob) => Readable;

// How often the read-ahead hears how far the reader is (bytes).
const ADVANCE_EVERY = 1 << 20;
let SendSocket: SendSocketClass | undefined;

/** The Socket subclass, made at the first send (node:net is loaded only then). */
function sendSocketClass(): SendSocketClass {
  if (SendSocket) return SendSocket;
  const { Socket } = process.getBuiltinModule('node:net');
  class SendStream extends Socket {
    readonly #done: Promise<void>;
    readonly #job: SendJob;
    #taken = 0;
    #told = 0;

    constructor(job: SendJob) {
      // (readableHighWaterMark reaches the Duplex underneath; @types/node omits it)
      const options: ConstructorParameters<typeof Socket>[0] & { readableHighWaterMark: number } = { fd: job.fd, readable: true, writable: false, readableHighWaterMark: 1 << 20 };
      super(options);
      this.#job = job;
      this.#done = job.done;
      // A failure, before the pipe ends (the snapshot cannot be opened...) or after, is the stream's error.
      job.done.catch((err: Error) => {
        if (!this.destroyed) this.destroy(err);
      });
    }

    /** Bytes asked for ahead of the kernel's send so far (tests, benches). */
    get prefetched(): number {
      return this.#job.prefetched();
    }

    // The pipe's end (null) is passed on only once the ioctl has returned
    // successfully: a send that failed half-way never looks complete (its
    // failure destroys the stream, above). Each chunk moves the read-ahead's
    // bound (told every MiB).
    override push(chunk: unknown, encoding?: BufferEncoding): boolean {
      if (chunk !== null) {
        this.#taken += (chunk as Uint8Array).byteLength;
        if (this.#taken - this.#told >= ADVANCE_EVERY) {
          this.#told = this.#taken;
          this.#job.advance(this.#taken);
        }
        return super.push(chunk, encoding);
      }
      this.#done.then(
        () => {
          if (!this.destroyed) super.push(null);
        },
        () => undefined,
      );
      return false;
    }

    // Closing the pipe makes the kernel's next write fail with EPIPE and the
    // thread end; the stream reports destroyed only after, so no fd or
    // thread outlives it.
    override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
      super._destroy(err, (error) => {
        this.#done.then(
          () => callback(error),
          () => callback(error),
        );
      });
    }

    // net.Socket emits 'close' itself, once the pipe's handle is closed, not
    // after _destroy's callback: held back until the ioctl has returned too,
    // so that whoever waits for 'close' (pipeline, a caller about to delete
    // the snapshot: EPERM while a send uses it) waits for the send.
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if (event !== 'close') return super.emit(event, ...args);
      const emitClose = () => super.emit('close', ...args);
      this.#done.then(emitClose, emitClose);
      return true;
    }
  }
  return (SendSocket = SendStream);
}

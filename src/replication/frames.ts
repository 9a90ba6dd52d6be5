// The framing of what goes over a request channel (see protocol.ts): JSON
// lines and length-prefixed chunks, read as they come (the channel's window
// is the backpressure: nothing is read ahead of what the caller asked for)
// and written waiting for 'drain'. One reader for every line: a request, an
// answer, the lines of a tree or files answer.
import type { Duplex, Readable, Writable } from 'node:stream';

import { abortChannel } from './idle-watch.js';
import { MAX_LINE_BYTES, ReplicationError } from './protocol.js';

/** Longest JSON line of a tree or files answer (a path and a symlink target, escaped). */
export const MAX_ENTRY_LINE_BYTES = 256 * 1024;

export interface FrameReaderOptions {
  /** A peer that sends nothing for this long while we wait for it is given up (ERR_PEER_TIMEOUT, the channel destroyed); default: no bound. */
  idleMs?: number;
  /** The code of a line that is too long or not JSON: ERR_PROTOCOL (an answer, the default) or ERR_BAD_REQUEST (a request). */
  invalid?: 'ERR_PROTOCOL' | 'ERR_BAD_REQUEST';
}

/** Reads lines and chunks from `input`, in order. */
export class FrameReader {
  readonly #it: AsyncIterator<Buffer>;
  #parts: Buffer[] = [];
  #length = 0;
  #ended = false;
  /** A read of the input is under way (a line given up on its deadline leaves one). */
  #reading = false;
  readonly #prefix: string;

  /** @param what names the input in errors (`<what>: the answer ended early`); '' for none. */
  constructor(
    private readonly input: Readable,
    what: string,
    private readonly options: FrameReaderOptions = {},
  ) {
    this.#prefix = what === '' ? '' : `${what}: `;
    // Not destroyed when we stop reading: release() hands what follows back to the stream.
    this.#it = input.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
  }

  #error(code: string, what: string): ReplicationError {
    return new ReplicationError(code, `${this.#prefix}${what}`);
  }

  /** The next piece of the input, within the idle time. */
  async #next(): Promise<IteratorResult<Buffer>> {
    this.#reading = true;
    try {
      return await this.#nextWithin();
    } finally {
      this.#reading = false;
    }
  }

  async #nextWithin(): Promise<IteratorResult<Buffer>> {
    const { idleMs } = this.options;
    if (idleMs === undefined) return this.#it.next();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const err = this.#error('ERR_PEER_TIMEOUT', `the peer sent nothing for ${Math.round(idleMs / 1000)} s (REPLICATION_IDLE_TIMEOUT)`);
        abortChannel(this.input as Duplex, err);
        reject(err);
      }, idleMs);
    });
    try {
      return await Promise.race([this.#it.next(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #fill(): Promise<void> {
    if (this.#ended) throw this.#error('ERR_PEER_CLOSED', 'the peer closed the channel');
    const next = await this.#next();
    if (next.done) {
      this.#ended = true;
      throw this.#error('ERR_PEER_CLOSED', 'the peer closed the channel');
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
    if (chunk.length === 0) return;
    this.#parts.push(chunk);
    this.#length += chunk.length;
  }

  /** The first `n` buffered bytes, removed (one copy at most). */
  #take(n: number): Buffer {
    const first = this.#parts[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#parts.shift();
      else this.#parts[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const part = this.#parts[0]!;
        const k = Math.min(part.length, n - at);
        part.copy(out, at, 0, k);
        at += k;
        if (k === part.length) this.#parts.shift();
        else this.#parts[0] = part.subarray(k);
      }
    }
    this.#length -= n;
    return out;
  }

  /** The next byte, left to be read. */
  async peek(): Promise<number> {
    while (this.#length < 1) await this.#fill();
    return this.#parts[0]![0]!;
  }

  /** Exactly `n` bytes. */
  async bytes(n: number): Promise<Buffer> {
    while (this.#length < n) await this.#fill();
    return n === 0 ? Buffer.alloc(0) : this.#take(n);
  }

  /**
   * The next JSON line, parsed; with `deadlineMs`, it must be complete by
   * then (a peer that opens a channel and trickles bytes holds it no longer).
   */
  async line(max = MAX_ENTRY_LINE_BYTES, deadlineMs?: number): Promise<unknown> {
    if (deadlineMs === undefined) return this.#line(max);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(this.#error('ERR_PEER_TIMEOUT', `no complete line within ${deadlineMs / 1000} s`)), deadlineMs);
    });
    try {
      return await Promise.race([this.#line(max), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #line(max: number): Promise<unknown> {
    const invalid = this.options.invalid ?? 'ERR_PROTOCOL';
    let scanned = 0;
    for (;;) {
      let at = 0;
      let nl = -1;
      for (const part of this.#parts) {
        if (at + part.length > scanned) {
          const i = part.indexOf(0x0a, Math.max(0, scanned - at));
          if (i >= 0) {
            nl = at + i;
            break;
          }
        }
        at += part.length;
      }
      if (nl >= 0) {
        if (nl > max) throw this.#error(invalid, `a line longer than ${max} bytes`);
        const text = this.#take(nl + 1).subarray(0, nl).toString('utf8');
        try {
          return JSON.parse(text);
        } catch {
          throw this.#error(invalid, 'a line that is not JSON');
        }
      }
      scanned = this.#length;
      if (scanned > max) throw this.#error(invalid, `a line longer than ${max} bytes`);
      await this.#fill();
    }
  }

  /** The next chunk's bytes, or null for the 0 length that ends a file. */
  async chunk(max: number): Promise<Buffer | null> {
    const n = (await this.bytes(4)).readUInt32BE(0);
    if (n === 0) return null;
    if (n > max) throw this.#error('ERR_PROTOCOL', `a chunk of ${n} bytes (at most ${max})`);
    return this.bytes(n);
  }

  /** Stops reading (the channel is closed by its owner). */
  async close(): Promise<void> {
    await this.#it.return?.().catch(() => undefined);
  }

  /**
   * Stops reading and puts back what was read past the last frame: the
   * stream reads on from there (a send stream after a request line, say).
   * After a line given up on its deadline a read is still pending: the
   * stream is of no more use then, and that read is not waited for.
   */
  async release(): Promise<void> {
    if (this.#reading) {
      void this.close();
      return;
    }
    await this.close();
    const rest = this.#parts;
    this.#parts = [];
    this.#length = 0;
    if (rest.length > 0 && !this.input.destroyed) this.input.unshift(rest.length === 1 ? rest[0]! : Buffer.concat(rest));
  }
}

/**
 * Reads one JSON line from `input` (a request, or the first answer to one)
 * and leaves what follows it in the stream for the caller. With
 * `timeoutMs`, the line must be complete by then.
 * @throws ReplicationError `ERR_BAD_REQUEST` (too long, not JSON), `ERR_PEER_CLOSED` (ended first),
 *   `ERR_PEER_TIMEOUT`; the input's own error.
 */
export async function readLine(input: Readable, max = MAX_LINE_BYTES, timeoutMs?: number): Promise<unknown> {
  const reader = new FrameReader(input, '', { invalid: 'ERR_BAD_REQUEST' });
  try {
    return await reader.line(max, timeoutMs);
  } finally {
    await reader.release();
  }
}

/** Writes one JSON line (not waiting for 'drain': a short answer). */
export function writeLine(out: Writable, value: unknown): void {
  out.write(`${JSON.stringify(value)}\n`);
}

/** Writes `data`, waiting for 'drain' when the channel's buffer is full. */
export async function send(out: Writable, data: Buffer | string): Promise<void> {
  if (out.destroyed || out.writableEnded) throw new ReplicationError('ERR_PEER_CLOSED', 'the peer closed the channel');
  if (out.write(data)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null) => {
      out.off('drain', onDrain).off('close', onClose).off('error', done);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new ReplicationError('ERR_PEER_CLOSED', 'the peer closed the channel'));
    out.on('drain', onDrain).on('close', onClose).on('error', done);
  });
}

/** Writes one JSON line. */
export function sendLine(out: Writable, value: unknown): Promise<void> {
  return send(out, `${JSON.stringify(value)}\n`);
}

/** Writes one chunk (u32 big-endian length, then the bytes); an empty one is the end of a file. */
export async function sendChunk(out: Writable, data: Buffer): Promise<void> {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(data.length, 0);
  await send(out, head);
  if (data.length > 0) await send(out, data);
}

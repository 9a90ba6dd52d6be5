// The framing of the sync answers (see protocol.ts) over a channel: JSON
// lines and length-prefixed chunks, read as they come (the channel's window
// is the backpressure: nothing is read ahead of what the caller asked for)
// and written waiting for 'drain'.
import type { Duplex, Readable, Writable } from 'node:stream';

import { abortChannel } from './idle-watch.js';
import { ReplicationError } from './protocol.js';

/** Longest JSON line of a tree or files answer (a path and a symlink target, escaped). */
export const MAX_ENTRY_LINE_BYTES = 256 * 1024;

/** Reads lines and chunks from `input`, in order. */
export class FrameReader {
  readonly #it: AsyncIterator<Buffer>;
  #parts: Buffer[] = [];
  #length = 0;
  #ended = false;

  /**
   * @param idleMs a peer that sends nothing for this long while we wait for
   *   it is given up (ERR_PEER_TIMEOUT, the channel destroyed); none: no bound.
   */
  constructor(
    private readonly input: Readable,
    private readonly what: string,
    private readonly idleMs?: number,
  ) {
    this.#it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** The next piece of the input, within the idle time. */
  async #next(): Promise<IteratorResult<Buffer>> {
    if (this.idleMs === undefined) return this.#it.next();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const err = new ReplicationError('ERR_PEER_TIMEOUT', `${this.what}: the peer sent nothing for ${Math.round(this.idleMs! / 1000)} s (REPLICATION_IDLE_TIMEOUT)`);
        abortChannel(this.input as Duplex, err);
        reject(err);
      }, this.idleMs);
    });
    try {
      return await Promise.race([this.#it.next(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #fill(): Promise<void> {
    if (this.#ended) throw new ReplicationError('ERR_PEER_CLOSED', `${this.what}: the answer ended early`);
    const next = await this.#next();
    if (next.done) {
      this.#ended = true;
      throw new ReplicationError('ERR_PEER_CLOSED', `${this.what}: the answer ended early`);
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

  /** Exactly `n` bytes. */
  async bytes(n: number): Promise<Buffer> {
    while (this.#length < n) await this.#fill();
    return n === 0 ? Buffer.alloc(0) : this.#take(n);
  }

  /** The next JSON line, parsed. */
  async line(max = MAX_ENTRY_LINE_BYTES): Promise<unknown> {
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
        const text = this.#take(nl + 1).subarray(0, nl).toString('utf8');
        try {
          return JSON.parse(text);
        } catch {
          throw new ReplicationError('ERR_PROTOCOL', `${this.what}: a line that is not JSON`);
        }
      }
      scanned = this.#length;
      if (scanned > max) throw new ReplicationError('ERR_PROTOCOL', `${this.what}: a line longer than ${max} bytes`);
      await this.#fill();
    }
  }

  /** The next chunk's bytes, or null for the 0 length that ends a file. */
  async chunk(max: number): Promise<Buffer | null> {
    const n = (await this.bytes(4)).readUInt32BE(0);
    if (n === 0) return null;
    if (n > max) throw new ReplicationError('ERR_PROTOCOL', `${this.what}: a chunk of ${n} bytes (at most ${max})`);
    return this.bytes(n);
  }

  /** Stops reading (the channel is closed by its owner). */
  async close(): Promise<void> {
    await this.#it.return?.().catch(() => undefined);
  }
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

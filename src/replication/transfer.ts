// What a transfer shows and how fast it may go: a byte counter with a
// progress line for a terminal (bytes, rate, elapsed, ETA from the stream's
// estimated size), and a bandwidth limit (a token bucket).
import { Transform, type TransformCallback } from 'node:stream';

/** A progress report, at most a few per second and one at the end. */
export interface Progress {
  bytes: number;
  /** Estimated total, or null when unknown. */
  total: number | null;
  elapsedMs: number;
  /** Bytes per second over the transfer so far. */
  rate: number;
  done: boolean;
}

export interface MeterOptions {
  /** Largest rate in bytes per second (0 or undefined: no limit). */
  limit?: number;
  total?: number | null;
  onProgress?: (p: Progress) => void;
  /** Minimum ms between two reports (default 250). */
  intervalMs?: number;
}

/** A pass-through stream counting (and optionally limiting) what goes through it. */
export class Meter extends Transform {
  bytes = 0;
  private readonly started = Date.now();
  private lastReport = 0;
  private allowance: number;
  private refilled = Date.now();

  constructor(private readonly options: MeterOptions = {}) {
    super({ highWaterMark: 1 << 20 });
    this.allowance = options.limit ?? 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.report(false);
    const limit = this.options.limit ?? 0;
    if (limit <= 0) return callback(null, chunk);
    // Token bucket of one second: a chunk waits until the budget has room for it.
    const now = Date.now();
    this.allowance = Math.min(limit, this.allowance + ((now - this.refilled) / 1000) * limit);
    this.refilled = now;
    this.allowance -= chunk.length;
    if (this.allowance >= 0) return callback(null, chunk);
    setTimeout(() => callback(null, chunk), Math.ceil((-this.allowance / limit) * 1000));
  }

  override _flush(callback: TransformCallback): void {
    this.report(true);
    callback();
  }

  private report(done: boolean): void {
    const { onProgress } = this.options;
    if (!onProgress) return;
    const now = Date.now();
    if (!done && now - this.lastReport < (this.options.intervalMs ?? 250)) return;
    this.lastReport = now;
    const elapsedMs = now - this.started;
    onProgress({ bytes: this.bytes, total: this.options.total ?? null, elapsedMs, rate: elapsedMs > 0 ? (this.bytes * 1000) / elapsedMs : 0, done });
  }
}

function size(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** `12.3 MiB of ~40.0 MiB, 8.1 MiB/s, 2s, ETA 3s` */
export function progressLine(p: Progress): string {
  const total = p.total && p.total > 0 ? ` of ~${size(p.total)}` : '';
  const eta = !p.done && p.total && p.rate > 0 && p.total > p.bytes ? `, ETA ${duration(((p.total - p.bytes) / p.rate) * 1000)}` : '';
  return `${size(p.bytes)}${total}, ${size(p.rate)}/s, ${duration(p.elapsedMs)}${eta}`;
}

/**
 * Reads a rate such as `10M` (bytes per second; K, M, G are powers of 1024,
 * a trailing "B" or "/s" is allowed). Null for anything else.
 */
export function parseRate(text: string): number | null {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmg]?)i?b?(?:\/s)?$/i.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]) * 1024 ** ['', 'k', 'm', 'g'].indexOf(m[2]!.toLowerCase());
  return n >= 1 ? Math.floor(n) : null;
}

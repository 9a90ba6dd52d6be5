// What commands print on stdout: text lines in the original's formats, or
// with --json one JSON document. Each result is written in one call, so a
// reader never sees half a listing from a command that failed afterwards.

import { writeSync } from 'node:fs';
import { errCode } from '../util/err-code.js';

/** Writes to stdout (tests may substitute it). */
export type Write = (text: string) => void;

/** What a failed write on stdout does: EPIPE (the reader went away) is not the command's failure. */
let onStdoutError: (err: NodeJS.ErrnoException) => void = (err) => {
  throw err;
};

/** Sets what a failed write on stdout does (main() does, once). */
export function handleStdoutErrors(handler: (err: NodeJS.ErrnoException) => void): void {
  onStdoutError = handler;
}

/**
 * Writes `text` on file descriptor 1 with write(2), as process.stdout does
 * for files, pipes and terminals on Linux (synchronously), without creating
 * process.stdout: that stream loads net, tty and stream, a tenth of the
 * start-up of `buttervolume snapshot v`. A descriptor left non-blocking by
 * whoever opened it (EAGAIN) gets the rest through process.stdout.
 */
export const writeStdout: Write = (text) => {
  if (stream) {
    stream.write(text);
    return;
  }
  const data = Buffer.from(text, 'utf8');
  let done = 0;
  try {
    while (done < data.length) done += writeSync(1, data, done);
  } catch (err) {
    if (errCode(err) !== 'EAGAIN') return onStdoutError(err as NodeJS.ErrnoException);
    stream = process.stdout.on('error', onStdoutError); // from now on, so that the order stays
    stream.write(data.subarray(done));
  }
};
let stream: NodeJS.WriteStream | undefined;

/** Prints a command's result as text lines or as JSON. */
export interface Output {
  /** Whether --json was given. */
  readonly json: boolean;
  /** Prints `lines`, each ended by `\n` (nothing at all for none). */
  lines(lines: readonly string[]): void;
  /** Prints `doc` as one JSON document on one line. */
  document(doc: unknown): void;
  /** Prints `doc` with --json, else `lines`. */
  result(lines: readonly string[], doc: unknown): void;
}

/** An {@link Output} writing to `write` (stdout by default). */
export function createOutput(json: boolean, write: Write = writeStdout): Output {
  const lines = (list: readonly string[]) => {
    if (list.length > 0) write(`${list.join('\n')}\n`);
  };
  const document = (doc: unknown) => write(`${JSON.stringify(doc)}\n`);
  return { json, lines, document, result: (list, doc) => (json ? document(doc) : lines(list)) };
}

// What commands print on stdout: text lines in the original's formats, or
// with --json one JSON document. Each result is written in one call, so a
// reader never sees half a listing from a command that failed afterwards.

/** Writes to stdout (tests may substitute it). */
export type Write = (text: string) => void;

const stdout: Write = (text) => {
  process.stdout.write(text);
};

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
export function createOutput(json: boolean, write: Write = stdout): Output {
  const lines = (list: readonly string[]) => {
    if (list.length > 0) write(`${list.join('\n')}\n`);
  };
  const document = (doc: unknown) => write(`${JSON.stringify(doc)}\n`);
  return { json, lines, document, result: (list, doc) => (json ? document(doc) : lines(list)) };
}

// Text that came from outside (a peer's error, a name in a log line) made
// safe to print: no control characters (a terminal escape sequence from a
// hostile peer must not reach the user's terminal or the log), bounded length.

/** `text` with control characters shown as `\uXXXX` and cut at `max` characters. */
export function printable(text: string, max = 1000): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}…(${clean.length} chars)` : clean;
}

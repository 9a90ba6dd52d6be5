// Unique-enough suffixes for temporary names. Not secret: node:crypto would
// cost the CLI's start-up a few milliseconds for nothing.
/** `length` random lowercase hex digits. */
export function randomHex(length: number): string {
  let out = '';
  while (out.length < length) out += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return out.slice(0, length);
}

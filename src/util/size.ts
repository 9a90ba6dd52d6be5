// Sizes as users write them in options and settings: a number of bytes, or
// a whole number with a binary unit (`512K`, `10G`, `1T`; `10GiB` and `10GB`
// mean the same), case-insensitive.

const UNITS: Readonly<Record<string, number>> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * Bytes in `text` (`10G`, `512M`, `1048576`), or null when it is not a
 * size. A size too large to be exact is not a safe integer: check
 * Number.isSafeInteger.
 */
export function parseSize(text: string): number | null {
  const m = /^([0-9]+)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2]!.toUpperCase()]! : null;
}

/** `10737418240` -> `10G`, `1536` -> `1.5K`: the largest unit, two decimals at most. */
export function formatSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const size = UNITS[unit]!;
    if (bytes >= size) return `${Number((bytes / size).toFixed(2))}${unit}`;
  }
  return `${bytes}`;
}

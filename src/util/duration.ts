// Durations as users write them in options and settings: `90s`, `5m`, `1h`,
// `2d` (or a bare number of seconds).

const UNIT_SECONDS: Readonly<Record<string, number>> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds in `text` (`30s`, `5m`, `1h`, `2d`, `45`), or null when it is not one (or not above 0). */
export function parseDuration(text: string): number | null {
  const m = /^([0-9]{1,9})\s*([smhd]?)$/i.exec(text.trim());
  if (!m) return null;
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2]!.toLowerCase()]!;
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : null;
}

/** `90` -> `1m30s`, `3600` -> `1h`. */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor((s % (unit === 'd' ? Infinity : unit === 'h' ? 86_400 : unit === 'm' ? 3600 : 60)) / size);
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.join('');
}

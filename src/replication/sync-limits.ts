// What one host's sync may remember of the peer's tree until the end: the
// peer decides how many entries it lists, so each collection kept for later
// is bounded. Past a bound sync degrades, never fails nor grows: a hard link
// is fetched as a file of its own, a created directory keeps the time of
// its creation. (What is in flight is bounded elsewhere: batches, writers,
// visits; directories waiting for their content are a chain of ancestors.)

export interface SyncLimits {
  /** Remote inodes with several names, remembered until their last name came. */
  linkGroups: number;
  /** Remote hard links of a file fetched in this run, linked at the end. */
  followers: number;
  /** Directories created, whose mtime is set at the end. */
  createdDirs: number;
  /** Bytes of the paths the three above hold, together. */
  pathBytes: number;
}

export const DEFAULT_SYNC_LIMITS: Readonly<SyncLimits> = Object.freeze({
  linkGroups: 1_000_000,
  followers: 1_000_000,
  createdDirs: 1_000_000,
  pathBytes: 256 * 1024 * 1024,
});

export type HeldKind = Exclude<keyof SyncLimits, 'pathBytes'>;

/** What is held against the limits. */
export class Held {
  readonly #counts: Record<HeldKind, number> = { linkGroups: 0, followers: 0, createdDirs: 0 };
  #bytes = 0;
  /** The kinds refused once (for one warning each). */
  readonly refused = new Set<HeldKind>();

  constructor(readonly limits: Readonly<SyncLimits>) {}

  /** Takes room for one `kind` holding `path`; false (and nothing taken) past a limit. */
  take(kind: HeldKind, path: string): boolean {
    const bytes = Buffer.byteLength(path);
    if (this.#counts[kind] >= this.limits[kind] || this.#bytes + bytes > this.limits.pathBytes) {
      this.refused.add(kind);
      return false;
    }
    this.#counts[kind]++;
    this.#bytes += bytes;
    return true;
  }

  /** Gives back what {@link take} took for `path`. */
  give(kind: HeldKind, path: string): void {
    this.#counts[kind]--;
    this.#bytes -= Buffer.byteLength(path);
  }
}

/** `limits` over the defaults, each checked. */
export function syncLimits(limits: Partial<SyncLimits> = {}): Readonly<SyncLimits> {
  const out = { ...DEFAULT_SYNC_LIMITS, ...limits };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`sync limit ${k} must be an integer >= 0, got ${v}`);
  }
  return Object.freeze(out);
}

// Mount reference counts per (volume, caller ID), as Docker expects: a
// volume is in use while any count is positive.
//
// One owner: the daemon holds the table in memory and is its only writer.
// Changes are applied in call order, written as a whole (atomic rename;
// see below for why without fsync) and only then made visible: a change whose write fails is not
// applied, so a Mount answered with an error is never counted. Concurrent
// changes share one write (group commit). Readers (the CLI) read the file,
// which is always a complete version; the store takes the volume's lock
// around Mount and around its "in use" checks, so a reader never misses a
// Mount that was answered.
//
// The file carries the boot id: a reboot (which stops every container)
// starts from zero instead of leaving volumes "in use" forever. So it is
// written without fsync (two fsyncs were most of a Mount's time, 16 ms of
// 18 at p50 here, more while snapshots commit): a daemon that dies leaves
// the page cache, which holds the last version; only a power loss or a
// kernel crash can lose a write, and the next boot discards the table. A
// damaged file last modified before this boot is that case: read as empty. Damage is
// never read as "nothing is mounted": a volume whose entry is unreadable,
// or every volume when the file is, is in an UNKNOWN state until the next
// reboot, and the store refuses to restore or remove it meanwhile.

import { dirname, join } from 'node:path';

import { atomicTempPrefix, writeFileAtomic } from '../btrfs/atomic-file.js';
import { isMissing } from '../util/err-code.js';
import { mkdir, readdir, readFile, rm, stat } from '../util/fs-async.js';
import { StoreError } from './errors.js';
import { validateVolumeName } from './names.js';

type Counts = Record<string, Record<string, number>>;

/** What is known of one volume's mounts. */
export interface MountCount {
  /** Mounts counted (the known part when `unknown`). */
  count: number;
  /** True when the table was damaged for this volume: it may be mounted more than `count` times. */
  unknown: boolean;
}

interface State {
  bootId: string;
  counts: Counts;
  /** Volumes whose count is unknown; `all` when the whole table was unreadable. */
  unknown: Set<string> | 'all';
}

interface FileV2 {
  version: 2;
  bootId: string;
  mounts: Counts;
  unknown: string[] | '*';
}

/** What a damaged table says, for the log. */
export type DamageReport = (message: string) => void;

let bootIdOnce: Promise<string> | undefined;

/** This boot's id (/proc/sys/kernel/random/boot_id). */
function bootId(): Promise<string> {
  bootIdOnce ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (id) => id.trim(),
    () => 'unknown',
  );
  return bootIdOnce;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `file` was last modified before this boot (/proc/stat's btime); false when unsure. */
async function modifiedBeforeBoot(file: string): Promise<boolean> {
  try {
    const btime = /^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8'))?.[1];
    if (btime === undefined) return false;
    return (await stat(file)).mtimeMs < Number(btime) * 1000;
  } catch {
    return false;
  }
}

/** A caller ID as Mount/Unmount accept it. */
export function isMountId(id: unknown): id is string {
  return typeof id === 'string' && id !== '' && id.length <= 256 && !/[\0\n]/.test(id);
}

/**
 * Reads a table file. Missing: empty. Another boot's: empty. Anything that
 * cannot be read as counts makes the volume concerned (or all) unknown.
 */
export function parseMountFile(text: string | undefined, currentBoot: string, report: DamageReport, file: string, beforeThisBoot = false): State {
  const fresh: State = { bootId: currentBoot, counts: {}, unknown: new Set() };
  if (text === undefined) return fresh;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    if (beforeThisBoot) return fresh; // a write cut by a power loss or a crash of the kernel: nothing is mounted now
    report(`mount table ${file} is not valid JSON (truncated or overwritten): every volume's mount state is unknown until the next reboot`);
    return { ...fresh, unknown: 'all' };
  }
  if (!isObject(parsed) || typeof parsed.bootId !== 'string' || !isObject(parsed.mounts)) {
    if (beforeThisBoot) return fresh;
    report(`mount table ${file} does not hold a boot id and mounts: every volume's mount state is unknown until the next reboot`);
    return { ...fresh, unknown: 'all' };
  }
  if (parsed.bootId !== currentBoot) return fresh; // written before the last reboot: nothing is mounted now
  const state: State = { ...fresh, unknown: new Set() };
  const unknown = state.unknown as Set<string>;
  if (parsed.unknown === '*') return { ...state, unknown: 'all' };
  if (Array.isArray(parsed.unknown)) {
    for (const v of parsed.unknown) if (typeof v === 'string') unknown.add(v);
  } else if (parsed.unknown !== undefined) {
    report(`mount table ${file}: its list of unknown volumes is unreadable: every volume's mount state is unknown until the next reboot`);
    return { ...state, unknown: 'all' };
  }
  for (const [volume, ids] of Object.entries(parsed.mounts)) {
    let valid = true;
    try {
      validateVolumeName(volume);
    } catch {
      valid = false;
    }
    if (!valid) {
      report(`mount table ${file}: entry ${JSON.stringify(volume).slice(0, 80)} is not a volume name; ignored`);
      continue;
    }
    if (!isObject(ids)) {
      report(`mount table ${file}: the mounts of ${volume} are unreadable: its mount state is unknown until the next reboot`);
      unknown.add(volume);
      continue;
    }
    const good: Record<string, number> = {};
    for (const [id, n] of Object.entries(ids)) {
      if (isMountId(id) && typeof n === 'number' && Number.isSafeInteger(n) && n > 0) good[id] = n;
      else {
        report(`mount table ${file}: ${volume} has an invalid count ${JSON.stringify(n)} for a mount ID: its mount state is unknown until the next reboot`);
        unknown.add(volume);
      }
    }
    if (Object.keys(good).length > 0) state.counts[volume] = good;
  }
  return state;
}

function countOf(state: State, volume: string): MountCount {
  const count = Object.values(state.counts[volume] ?? {}).reduce((a, b) => a + b, 0);
  return { count, unknown: state.unknown === 'all' || state.unknown.has(volume) };
}

function clone(state: State): State {
  const counts: Counts = {};
  for (const [volume, ids] of Object.entries(state.counts)) counts[volume] = { ...ids };
  return { bootId: state.bootId, counts, unknown: state.unknown === 'all' ? 'all' : new Set(state.unknown) };
}

interface Change {
  /** Applies the change to `draft`; false when it changes nothing (no write needed). */
  apply: (draft: State) => boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** The mount table at `file`: owned (the daemon) or read-only (everyone else). */
export class MountTable {
  private state: State | undefined;
  private readonly pending: Change[] = [];
  private writing = false;

  private constructor(
    readonly file: string,
    readonly owner: boolean,
    private readonly report: DamageReport,
  ) {}

  /**
   * Opens the table. The owner reads it once, reports damage through
   * `report` (at ERROR: it refuses restores and removals), and writes back
   * a clean version that keeps what is unknown.
   */
  static async open(file: string, options: { owner: boolean; report?: DamageReport }): Promise<MountTable> {
    const table = new MountTable(file, options.owner, options.report ?? (() => undefined));
    if (options.owner) {
      const state = await table.read();
      table.state = state;
      await mkdir(dirname(file), { recursive: true });
      await table.removeTemporaries();
      await table.save(state);
    }
    return table;
  }

  /** The mounts of `volume`: from memory for the owner, from the file for a reader. */
  async activeCount(volume: string): Promise<MountCount> {
    return countOf(this.state ?? (await this.read()), volume);
  }

  /** Records one more mount of `volume` by `id`; resolves once written. */
  mount(volume: string, id: string): Promise<void> {
    return this.change((draft) => {
      const ids = (draft.counts[volume] ??= {});
      ids[id] = (ids[id] ?? 0) + 1;
      return true;
    });
  }

  /** Records one unmount; an unknown (volume, id) changes nothing (the original answered success). */
  unmount(volume: string, id: string): Promise<void> {
    return this.change((draft) => {
      const ids = draft.counts[volume];
      const n = ids?.[id];
      if (ids === undefined || n === undefined) return false;
      if (n > 1) ids[id] = n - 1;
      else delete ids[id];
      if (Object.keys(ids).length === 0) delete draft.counts[volume];
      return true;
    });
  }

  /** Forgets every mount of `volume` (after it was removed). */
  forget(volume: string): Promise<void> {
    return this.change((draft) => {
      const had = volume in draft.counts || (draft.unknown !== 'all' && draft.unknown.has(volume));
      delete draft.counts[volume];
      if (draft.unknown !== 'all') draft.unknown.delete(volume);
      return had;
    });
  }

  private change(apply: Change['apply']): Promise<void> {
    if (!this.owner || !this.state) {
      return Promise.reject(new StoreError('ERR_NOT_OWNER', 'only the daemon records mounts'));
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ apply, resolve, reject });
      if (!this.writing) void this.flush();
    });
  }

  // Group commit: every change queued while a write runs goes into the next
  // write, applied in order to a copy that replaces the table once written.
  private async flush(): Promise<void> {
    this.writing = true;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      const draft = clone(this.state!);
      let dirty = false;
      for (const change of batch) dirty = change.apply(draft) || dirty;
      try {
        if (dirty) await this.save(draft);
        this.state = draft;
        for (const change of batch) change.resolve();
      } catch (err) {
        for (const change of batch) change.reject(err);
      }
    }
    this.writing = false;
  }

  private async read(): Promise<State> {
    let text: string | undefined;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if (!isMissing(err)) {
        this.report(`mount table ${this.file} cannot be read (${(err as Error).message}): every volume's mount state is unknown`);
        return { bootId: await bootId(), counts: {}, unknown: 'all' };
      }
    }
    return parseMountFile(text, await bootId(), this.report, this.file, text !== undefined && (await modifiedBeforeBoot(this.file)));
  }

  // Not durable: the table is rebuilt from nothing at each boot (its boot id
  // says whether it is of this boot), and a Mount waits for this write.
  private async save(state: State): Promise<void> {
    const data: FileV2 = {
      version: 2,
      bootId: state.bootId,
      mounts: state.counts,
      unknown: state.unknown === 'all' ? '*' : [...state.unknown].sort(),
    };
    await writeFileAtomic(this.file, `${JSON.stringify(data)}\n`, { mode: 0o600, followSymlink: false });
  }

  /** Removes what a write cut short (the daemon killed between the write and the rename) left. */
  private async removeTemporaries(): Promise<void> {
    const dir = dirname(this.file);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name.startsWith(atomicTempPrefix(this.file))) await rm(join(dir, name), { force: true });
    }
  }
}

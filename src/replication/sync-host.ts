// One host's sync: its live volume's tree is read (a "tree" request at
// protocol 2: packed directory records, sync-frames.ts) and compared with
// the local live volume as it arrives, a directory at a time: each local
// directory is found (listed packed, one native call) or made, and its
// entries compared with the peer's (sync-tree.ts); what is missing here or
// newer there is fetched in batches ("files" requests, sync-fetch.ts) and
// written into place; directories created get the peer's mtime at the end.
// What the container changes under us meanwhile makes that entry a skip
// (sync-local.ts: localChange), never a failure; whatever the peer sends is
// checked first (sync-frames.ts, sync-tree.ts, peer-answers.ts).
import * as btrfs from '../btrfs/index.js';
import { errCode } from '../util/err-code.js';
import { forEachLimited, Limiter } from '../util/limiter.js';
import type { PeerConnection } from './client.js';
import type { ReplicationContext } from './context.js';
import { fdCloseQuietly, kindOfMode } from './fd-ops.js';
import { FrameReader } from './frames.js';
import { answerError, protocolError } from './peer-answers.js';
import { MAX_FILES_PER_REQUEST, type TreeEntry } from './protocol.js';
import { fetchFiles, nextItem, openSync, WRITES_IN_FLIGHT, type FetchSide, type LinkGroup, type Wanted } from './sync-fetch.js';
import { ItemError, TAG_TREE, treeRecords, type TreeRecord } from './sync-frames.js';
import { Held, type HeldKind, type SyncLimits } from './sync-limits.js';
import type { HostSyncResult } from './sync-result.js';
import { DirCache, isType, localChange, lstatLocal, Skip, split, type Local } from './sync-local.js';
import { compareDirectory, countSkipped, LocalEntries, NameError, type TreeSide } from './sync-tree.js';
import { copySymlink, linkCopy, setDirTime } from './sync-writes.js';

/**
 * Files per files request: the first batch this many (the writes start
 * early), each next one twice as many up to MAX_FILES_PER_REQUEST; also
 * bounded by {@link BATCH_BYTES} of content and {@link BATCH_PATH_BYTES} of
 * paths.
 */
const FIRST_BATCH_FILES = 1024;
const BATCH_BYTES = 64 * 1024 * 1024;
const BATCH_PATH_BYTES = 1024 * 1024;
/** A file bigger than this (as listed) is streamed, and asked for after the batch's smaller ones. */
const BIG_FILE_BYTES = 256 * 1024;
/** Batches waiting for their request before the tree is read further. */
const PENDING_BATCHES = 4;
/**
 * Files requests at once: one, as in protocol 1 (a file is written after
 * those listed before it in earlier batches; a batch's answer is read as it
 * comes: the peer is never left waiting for us to read, which would count
 * as a stall). The writes queued meanwhile cover the time of a request.
 */
const FETCHES = 1;
/** Symlinks and hard links being made at once. */
const WRITERS = 16;
/** Directory records waiting for their local directory (listed, or made) at once. */
const DIRS_AHEAD = 16;
const MAX_SKIPS_LISTED = 100;
/** Directories whose mtime is set at once, at the end. */
const DIR_TIMES = 8;

type Counts = Required<Omit<HostSyncResult, 'host' | 'ok' | 'error'>>;

/** A directory here as a record of the peer finds it: its listing, or none (made empty); null: skipped with what it holds. */
type LocalDir = { entries: LocalEntries | null } | null;

/** A directory of the tree being walked: what is in it waits for it to be found here (or made, or skipped). */
interface OpenDir {
  path: string;
  local: Promise<LocalDir>;
}

/** Whether `path` is `dir` or below it. */
const within = (path: string, dir: string): boolean => path === dir || (path.startsWith(dir) && path[dir.length] === '/');

/** A malformed record of the peer as the host's failure (ERR_PROTOCOL); anything else as it is. */
function peerError(label: string, err: unknown): unknown {
  return err instanceof ItemError || err instanceof NameError || err instanceof btrfs.PackedEntryError ? protocolError(label, err.message) : err;
}

/** One host's pull into the local volume (see sync.ts). */
export class HostSync implements TreeSide, FetchSide {
  readonly counts: Counts = { copied: 0, linked: 0, unlinked: 0, symlinks: 0, dirs: 0, bytes: 0, kept: 0, skipped: 0, skips: [] };
  readonly label: string;
  dirs!: DirCache;
  rootFd = -1;
  /** Writes of fetched files in flight (sync-fetch.ts). */
  readonly writes = new Limiter(WRITES_IN_FLIGHT);
  private readonly held: Held;
  /** Kinds of limits hit and warned about. */
  private warned = 0;
  /** SYNC_CLOCK_SKEW in ns. */
  private readonly skewNs: bigint;
  private readonly createdDirs: Array<{ path: string; mtime: bigint }> = [];
  /** Hard-link groups by remote dev:ino, until their last name came. */
  private readonly groups = new Map<string, LinkGroup>();
  private readonly followers: Wanted[] = [];
  private batch: Wanted[] = [];
  /** The big files of the batch, asked for after its small ones. */
  private bigs: Wanted[] = [];
  private batchFiles = FIRST_BATCH_FILES;
  private batchBytes = 0;
  private batchPathBytes = 0;
  private readonly fetches = new Limiter(FETCHES);
  private readonly queued: Array<Promise<void>> = [];
  private failure: unknown;
  /** Symlinks and hard links being made. */
  private readonly writers = new Limiter(WRITERS);
  /**
   * The directories the tree is in, each an ancestor of the next (records
   * come depth first): one waits for its parent, and learns from it whether
   * it is skipped. A directory the tree has left is dropped.
   */
  private readonly open: OpenDir[] = [];
  private root?: OpenDir;
  private last?: OpenDir;
  /** The records compared, one after another in the tree's order; those not yet compared. */
  private compared: Promise<void> = Promise.resolve();
  private readonly comparing: Array<Promise<void>> = [];

  constructor(
    private readonly ctx: ReplicationContext,
    private readonly conn: PeerConnection,
    private readonly volume: string,
    private readonly test: boolean,
    limits: Readonly<SyncLimits>,
  ) {
    this.label = conn.peer.label;
    this.held = new Held(limits);
    this.skewNs = BigInt(ctx.config.syncClockSkewSeconds) * 1_000_000_000n;
  }

  async run(): Promise<Counts> {
    this.rootFd = await this.ctx.store.openLiveVolume(this.volume);
    this.dirs = new DirCache(this.rootFd);
    try {
      await this.readTree();
      this.flush();
      await this.drain(0);
      await this.settle();
      for (const f of this.followers) this.runWriter(f.path, () => this.linkFollower(f));
      await this.settle();
      await this.setDirTimes();
      await this.ctx.store.flushVolumes();
      return this.counts;
    } catch (err) {
      this.fail(err); // the batches and writers still running stop at their next step
      throw err;
    } finally {
      await Promise.allSettled([...this.queued, ...this.comparing]);
      await this.writers.whenBelow(1);
      await this.writes.whenBelow(1);
      await this.dirs.closeAll();
      await fdCloseQuietly(this.rootFd);
    }
  }

  skip(path: string, reason: string): void {
    this.counts.skipped++;
    if (this.counts.skips.length < MAX_SKIPS_LISTED) this.counts.skips.push({ path, reason });
  }

  kept(): void {
    this.counts.kept++;
  }

  received(bytes: number): void {
    this.counts.bytes += bytes;
  }

  /** Why remote time `ns` is not to be trusted: ahead of our clock by more than SYNC_CLOCK_SKEW; null when it is not. */
  ahead(ns: bigint): string | null {
    const by = ns - BigInt(Date.now()) * 1_000_000n;
    if (by <= this.skewNs) return null;
    const seconds = by / 1_000_000_000n;
    return `its mtime on ${this.label} is ${seconds} s ahead of this host's clock, more than SYNC_CLOCK_SKEW (${this.ctx.config.syncClockSkewSeconds} s)`;
  }

  aheadFrom(): number {
    return (Date.now() - 1000) * 1e6 + Number(this.skewNs);
  }

  /** Room for one more `kind` of `path` within the limits; past them, a warning once. */
  private take(kind: HeldKind, path: string): boolean {
    if (this.held.take(kind, path)) return true;
    if (this.held.refused.size > this.warned) {
      this.warned = this.held.refused.size;
      const then = kind === 'createdDirs' ? 'the directories created after it keep the time of their creation' : 'further hard links are fetched as files of their own';
      this.ctx.logger.warning(`sync ${this.volume} from ${this.label}: more ${kind} than the sync limits (${JSON.stringify(this.held.limits)}): ${then}`);
    }
    return false;
  }

  fail(err: unknown): void {
    this.failure ??= err;
  }

  check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** A local change makes `path` a skip (prefixed with `what`); anything else is thrown again. */
  skipIfChangedHere(path: string, err: unknown, what = ''): void {
    const why = localChange(err);
    if (why === null) throw err;
    this.skip(path, what + why);
  }

  /** Runs `task` in the writer pool; a local change skips `path`, anything else fails the host. */
  private runWriter(path: string, task: () => Promise<void>): void {
    // The outcome is recorded inside the task: once the pool has settled, every skip and failure is known.
    void this.writers.run(async () => {
      try {
        await task();
      } catch (err) {
        try {
          this.skipIfChangedHere(path, err);
        } catch {
          this.fail(err);
        }
      }
    });
  }

  private async settle(): Promise<void> {
    await this.writers.whenBelow(1);
    await this.writes.whenBelow(1);
    this.check();
  }

  private async readTree(): Promise<void> {
    const { channel } = await openSync(this.conn, { op: 'tree', volume: this.volume, test: this.test });
    const reader = new FrameReader(channel, `${this.label}: tree of ${this.volume}`, { idleMs: this.conn.idleMs });
    try {
      for (;;) {
        const got = await nextItem(reader, this.label);
        if (got.kind === 'line') {
          const line = got.line as Record<string, unknown> | null;
          if (line && line.end === true) break;
          if (line && line.ok === false) throw answerError(line, this.label)!;
          throw protocolError(this.label, 'a tree answer holding a line that is not its end');
        }
        if (got.tag !== TAG_TREE) throw protocolError(this.label, `an item out of place in a tree answer (tag ${got.tag})`);
        let records: TreeRecord[];
        try {
          records = treeRecords(got.payload);
        } catch (err) {
          throw peerError(this.label, err);
        }
        for (const r of records) await this.record(r);
        if (this.queued.length >= PENDING_BATCHES) await this.drain(PENDING_BATCHES - 1);
        this.check();
      }
      await this.compared;
      this.check();
    } finally {
      await reader.close();
      channel.close();
    }
  }

  /** Record `r` of the peer's tree: its directory found here (or made, or skipped), then its entries compared, in the tree's order. */
  private async record(r: TreeRecord): Promise<void> {
    let dir = this.last;
    if (dir?.path !== r.path) {
      if (r.path === '') {
        dir = { path: '', local: this.find('', r.self) };
        this.root = dir;
      } else {
        const [parentPath] = split(r.path);
        while (this.open.length > 0 && !within(parentPath, this.open.at(-1)!.path)) this.open.pop();
        const top = this.open.at(-1);
        // A directory not seen (or left already: a peer out of order) is looked up here as it is.
        const parent = parentPath === '' && this.root ? this.root.local : top?.path === parentPath ? top.local : Promise.resolve({ entries: null });
        const self = r.self;
        dir = {
          path: r.path,
          local: parent.then((p) => {
            if (p !== null) return this.find(r.path, self);
            this.counts.skipped++; // inside a directory skipped already
            return null;
          }),
        };
        this.open.push(dir);
      }
      dir.local.catch(() => undefined); // awaited by its comparisons
      this.last = dir;
    }
    while (this.comparing.length >= DIRS_AHEAD) await this.comparing.shift();
    const local = dir.local;
    const p = this.compared.then(async () => {
      this.check();
      const here = await local;
      try {
        if (here === null) this.counts.skipped += countSkipped(r.path, r.entries);
        else compareDirectory(this, r.path, r.entries, here.entries);
      } catch (err) {
        throw peerError(this.label, err);
      }
      await this.writers.whenBelow(2 * WRITERS); // the symlinks queued by this record hold memory
    });
    this.compared = p.catch((err: unknown) => this.fail(err));
    this.comparing.push(this.compared);
  }

  /** Directory `path` here: listed, or made (its owner and mode those of the peer's `self`), or null when skipped. */
  private async find(path: string, self: btrfs.PackedStatFields): Promise<LocalDir> {
    try {
      const listing = await btrfs.listBeneathPacked(this.rootFd, path);
      return { entries: new LocalEntries(new btrfs.PackedEntries(listing.entries, listing.count)) };
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' && path !== '') return this.makeDir(path, self);
      if (code === 'ENOTDIR' || code === 'ELOOP') {
        const local = await this.lookup(path).catch(() => null);
        if (local && !isType(local, 'dir')) {
          this.skip(path, `a directory on ${this.label}, a ${kindOfMode(local.mode)} here: kept`);
          return null;
        }
      }
      this.skipIfChangedHere(path, err, 'its directory is not a directory here: ');
      return null;
    }
  }

  /** What is here under `path` (lstat in its directory, opened beneath the root). */
  private async lookup(path: string): Promise<Local | null> {
    const [parent, name] = split(path);
    const fd = await this.dirs.acquire(parent);
    try {
      return await lstatLocal(fd, name);
    } finally {
      this.dirs.release(parent);
    }
  }

  /** Makes directory `path` with the peer's owner and mode (its time is set at the end: what is written into it changes it). */
  private async makeDir(path: string, self: btrfs.PackedStatFields): Promise<LocalDir> {
    try {
      await btrfs.makeDirBeneath(this.rootFd, path, self);
    } catch (err) {
      this.skipIfChangedHere(path, err);
      return null;
    }
    this.counts.dirs++;
    const ahead = this.ahead(self.mtimeNs);
    if (ahead) this.skip(path, `created, its mtime not set: ${ahead}`);
    else if (this.take('createdDirs', path)) this.createdDirs.push({ path, mtime: self.mtimeNs });
    else this.skip(path, `created, its mtime not set: more directories created than the sync limits (${this.held.limits.createdDirs})`);
    return { entries: null };
  }

  symlink(e: TreeEntry, local: Local | null): void {
    this.runWriter(e.path, async () => {
      await copySymlink(this.dirs, e, local);
      this.counts.symlinks++;
    });
  }

  want(e: TreeEntry, local: Local | null): void {
    const item: Wanted = { path: e.path, local };
    if (e.nlink > 1) {
      const key = `${e.dev}:${e.ino}`;
      const group = this.groups.get(key);
      if (group && --group.left <= 0) {
        this.groups.delete(key); // its last name: no more to come
        this.held.give('linkGroups', group.path);
      }
      if (group && this.take('followers', e.path)) {
        this.followers.push({ ...item, group });
        return;
      }
      if (group) this.counts.unlinked++;
      else if (this.take('linkGroups', e.path)) {
        item.group = { path: e.path, left: e.nlink - 1 };
        this.groups.set(key, item.group);
      } else this.counts.unlinked++;
    }
    if (e.size > BIG_FILE_BYTES) this.bigs.push(item);
    else this.batch.push(item);
    this.batchBytes += e.size;
    this.batchPathBytes += Buffer.byteLength(e.path) + 8;
    if (this.batch.length + this.bigs.length >= this.batchFiles || this.batchBytes >= BATCH_BYTES || this.batchPathBytes >= BATCH_PATH_BYTES) this.flush();
  }

  /** Requests the files wanted so far (FETCHES requests at once, while the tree goes on): the small ones, then the big ones. */
  private flush(): void {
    if (this.batch.length + this.bigs.length === 0) return;
    const items = this.bigs.length > 0 ? [...this.batch, ...this.bigs] : this.batch;
    this.batch = [];
    this.bigs = [];
    this.batchFiles = Math.min(2 * this.batchFiles, MAX_FILES_PER_REQUEST);
    this.batchBytes = 0;
    this.batchPathBytes = 0;
    const p = this.fetches.run(() => fetchFiles(this, this.conn, this.volume, this.test, items));
    p.catch((err: unknown) => this.fail(err));
    this.queued.push(p);
  }

  /** Waits until at most `n` batches are still queued. */
  private async drain(n: number): Promise<void> {
    while (this.queued.length > n) await this.queued.shift()!.catch(() => undefined);
    this.check();
  }

  /** A file of the peer is here now, as inode `ino`. */
  copied(item: Wanted, ino: bigint): void {
    if (item.group) item.group.ino = ino;
    this.counts.copied++;
  }

  /** A remote hard link of a file copied in this run: a hard link of the local copy. */
  private async linkFollower(f: Wanted): Promise<void> {
    const group = f.group!;
    if (group.ino === undefined) throw new Skip(`a hard link of ${group.path}, which was not copied`);
    await linkCopy(this.dirs, f.path, f.local, group.path, group.ino);
    this.counts.linked++;
  }

  /** The mtimes of the directories created, now that nothing more is written into them. */
  private async setDirTimes(): Promise<void> {
    await forEachLimited(this.createdDirs, DIR_TIMES, ({ path, mtime }) =>
      setDirTime(this.rootFd, path, mtime).catch((err: unknown) => this.skipIfChangedHere(path, err, 'its mtime not set: ')),
    );
  }
}

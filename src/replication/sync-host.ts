// One host's sync: its live volume's tree is read (a "tree" request) and
// compared with the local live volume as it arrives; what is missing here or
// newer there is fetched in batches ("files" requests, big files streamed in
// chunks) and written into place by sync-writes.ts; directories created get
// the peer's mtime at the end. What the container changes under us meanwhile
// makes that entry a skip (sync-local.ts: localChange), never a failure;
// whatever the peer sends is checked first (peer-answers.ts).
import { Limiter } from '../util/limiter.js';
import type { PeerConnection } from './client.js';
import type { ReplicationContext } from './context.js';
import { fdCloseQuietly, kindOfMode } from './fd-ops.js';
import { FrameReader } from './frames.js';
import { answerError, checkFileHeader, checkTreeEntry, protocolError } from './peer-answers.js';
import { MAX_CHUNK_BYTES, MAX_FILES_PER_REQUEST, type FileHeader, type FileStatus, type TreeEntry } from './protocol.js';
import { Held, type HeldKind, type SyncLimits } from './sync-limits.js';
import type { HostSyncResult } from './sync-result.js';
import { DirCache, isType, localChange, lstatLocal, newer, Skip, split, type Local, type TempFile } from './sync-local.js';
import { copySymlink, linkCopy, makeDir, openTempFile, placeTempFile, setDirTime, writeSmallFile } from './sync-writes.js';

/** Files per files request; also bounded by {@link BATCH_BYTES} of content and {@link BATCH_PATH_BYTES} of paths. */
const BATCH_FILES = Math.min(1024, MAX_FILES_PER_REQUEST);
const BATCH_BYTES = 64 * 1024 * 1024;
const BATCH_PATH_BYTES = 1024 * 1024;
/** Batches requested and not yet written before the tree is read further. */
const PENDING_BATCHES = 2;
/** A file up to this size is held in memory and written by one of {@link WRITERS}; a bigger one is streamed to disk. */
const SMALL_FILE_BYTES = 512 * 1024;
const WRITERS = 16;
/** Tree entries compared with the local volume at once. */
const VISITS = 64;
const MAX_SKIPS_LISTED = 100;

interface LinkGroup {
  /** The first path of the group fetched in this run. */
  path: string;
  /** Its local inode once written. */
  ino?: bigint;
  /** Names of the remote inode still to come (its nlink minus those seen): remembered until none. */
  left: number;
}

interface Wanted {
  path: string;
  /** What is here under that name as listed (null: nothing): replaced only if it still is that. */
  local: Local | null;
  group?: LinkGroup;
}

type Counts = Required<Omit<HostSyncResult, 'host' | 'ok' | 'error'>>;

/** A directory of the tree being walked: its visit says whether what it holds is skipped. */
interface OpenDir {
  path: string;
  skipped: Promise<boolean>;
}

/** Whether `path` is `dir` or below it. */
const within = (path: string, dir: string): boolean => path === dir || (path.startsWith(dir) && path[dir.length] === '/');

/** One host's pull into the local volume (see sync.ts). */
export class HostSync {
  readonly counts: Counts = { copied: 0, linked: 0, unlinked: 0, symlinks: 0, dirs: 0, bytes: 0, kept: 0, skipped: 0, skips: [] };
  private readonly label: string;
  private dirs!: DirCache;
  private rootFd = -1;
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
  private batchBytes = 0;
  private batchPathBytes = 0;
  private last: Promise<void> = Promise.resolve();
  private readonly queued: Array<Promise<void>> = [];
  private failure: unknown;
  /** Writes of what was fetched: their data is in memory until they run. */
  private readonly writers = new Limiter(WRITERS);
  /** Tree entries being looked at. */
  private readonly visiting = new Set<Promise<void>>();
  /**
   * The directories the tree is in, each an ancestor of the next (the tree
   * comes depth first): what is in one waits for its visit, and learns from
   * it whether it is skipped. A directory the tree has left is dropped.
   */
  private readonly open: OpenDir[] = [];

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
      await Promise.allSettled(this.queued);
      await this.writers.whenBelow(1);
      await this.dirs.closeAll();
      await fdCloseQuietly(this.rootFd);
    }
  }

  private skip(path: string, reason: string): void {
    this.counts.skipped++;
    if (this.counts.skips.length < MAX_SKIPS_LISTED) this.counts.skips.push({ path, reason });
  }

  /** Why remote time `mtime` (ns) is not to be trusted: ahead of our clock by more than SYNC_CLOCK_SKEW; null when it is not. */
  private ahead(mtime: string): string | null {
    const by = BigInt(mtime) - BigInt(Date.now()) * 1_000_000n;
    if (by <= this.skewNs) return null;
    const seconds = by / 1_000_000_000n;
    return `its mtime on ${this.label} is ${seconds} s ahead of this host's clock, more than SYNC_CLOCK_SKEW (${this.ctx.config.syncClockSkewSeconds} s)`;
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

  private fail(err: unknown): void {
    this.failure ??= err;
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** A local change makes `path` a skip (prefixed with `what`); anything else is thrown again. */
  private skipIfChangedHere(path: string, err: unknown, what = ''): void {
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

  /** Waits while the writer pool has much work queued (what it holds is in memory). */
  private async room(): Promise<void> {
    await this.writers.whenBelow(2 * WRITERS);
  }

  private async settle(): Promise<void> {
    await this.writers.whenBelow(1);
    this.check();
  }

  private async readTree(): Promise<void> {
    const { channel } = await this.conn.open({ op: 'tree', volume: this.volume, test: this.test });
    const reader = new FrameReader(channel, `${this.label}: tree of ${this.volume}`, { idleMs: this.conn.idleMs });
    try {
      for (;;) {
        const line = (await reader.line()) as Record<string, unknown> | null;
        if (line && line.end === true) break;
        if (line && line.ok === false) throw answerError(line, this.label)!;
        const e = checkTreeEntry(line, this.label);
        if (e.path === '') continue; // the volume's root: here already, its metadata left as it is
        // Entries are looked at VISITS at a time; each waits for its directory's own visit
        // (created, found, or skipped), which came before it in the tree.
        while (this.visiting.size >= VISITS) await Promise.race(this.visiting);
        const [parentPath] = split(e.path);
        while (this.open.length > 0 && !within(parentPath, this.open.at(-1)!.path)) this.open.pop();
        const top = this.open.at(-1);
        // A directory not seen (or left already: a peer out of order) is looked up here as it is.
        const parent = top?.path === parentPath ? top.skipped : Promise.resolve(false);
        const visit = parent.then((skipped) => this.visit(e, skipped));
        const p: Promise<void> = visit
          .then(
            () => undefined,
            (err: unknown) => this.fail(err),
          )
          .finally(() => this.visiting.delete(p));
        this.visiting.add(p);
        if (e.type === 'dir') this.open.push({ path: e.path, skipped: visit.catch(() => true) });
        if (this.queued.length >= PENDING_BATCHES) await this.drain(PENDING_BATCHES - 1);
        this.check();
      }
      while (this.visiting.size > 0) await Promise.allSettled([...this.visiting]);
      this.check();
    } finally {
      await reader.close();
      channel.close();
    }
  }

  /** Looks at remote entry `e` (in a directory skipped, or not); resolves whether what `e` holds is skipped. */
  private async visit(e: TreeEntry, inSkipped: boolean): Promise<boolean> {
    const [parent, name] = split(e.path);
    if (inSkipped) {
      this.counts.skipped++; // inside a directory skipped (and listed) already
      return true;
    }
    if (e.type === 'other') {
      this.skip(e.path, `a ${e.why ?? 'special file'} on ${this.label}: not copied`);
      return true;
    }
    const ahead = e.type === 'dir' ? null : this.ahead(e.mtime);
    if (ahead) {
      this.skip(e.path, `${ahead}: not copied`);
      return true;
    }
    let dirfd: number;
    try {
      dirfd = await this.dirs.acquire(parent);
    } catch (err) {
      // Gone or no longer a directory here (or the peer listed it before its directory).
      this.skipIfChangedHere(e.path, err, 'its directory is not a directory here: ');
      return true;
    }
    try {
      // A directory's entry comes long after its siblings (its parent's listing may be gone): lstat.
      const local = e.type === 'dir' ? await lstatLocal(dirfd, name) : await this.dirs.lookup(parent, dirfd, name);
      if (e.type === 'dir') return await this.visitDir(e, dirfd, name, local);
      if (local && !isType(local, e.type)) this.conflict(e, local);
      else if (local && !newer(e, local)) this.counts.kept++;
      else if (e.type === 'file') this.want(e, local);
      else {
        await this.room();
        this.runWriter(e.path, async () => {
          await copySymlink(this.dirs, e, local);
          this.counts.symlinks++;
        });
      }
      return false;
    } finally {
      this.dirs.release(parent);
    }
  }

  private conflict(e: TreeEntry, local: Local): void {
    const theirs = e.type === 'dir' ? 'directory' : e.type;
    this.skip(e.path, `a ${theirs} on ${this.label}, a ${kindOfMode(local.mode)} here: kept`);
  }

  /** Finds or creates directory `e`; resolves whether what it holds is skipped. */
  private async visitDir(e: TreeEntry, dirfd: number, name: string, local: Local | null): Promise<boolean> {
    if (local) {
      if (isType(local, 'dir')) return false;
      this.conflict(e, local);
      return true;
    }
    try {
      await makeDir(dirfd, name, e);
    } catch (err) {
      this.skipIfChangedHere(e.path, err);
      return true;
    }
    this.counts.dirs++;
    const ahead = this.ahead(e.mtime);
    if (ahead) this.skip(e.path, `created, its mtime not set: ${ahead}`);
    else if (this.take('createdDirs', e.path)) this.createdDirs.push({ path: e.path, mtime: BigInt(e.mtime) });
    else this.skip(e.path, `created, its mtime not set: more directories created than the sync limits (${this.held.limits.createdDirs})`);
    return false;
  }

  private want(e: TreeEntry, local: Local | null): void {
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
    this.batch.push(item);
    this.batchBytes += e.size;
    this.batchPathBytes += Buffer.byteLength(e.path) + 8;
    if (this.batch.length >= BATCH_FILES || this.batchBytes >= BATCH_BYTES || this.batchPathBytes >= BATCH_PATH_BYTES) this.flush();
  }

  /** Requests the files wanted so far (one channel at a time, while the tree goes on). */
  private flush(): void {
    if (this.batch.length === 0) return;
    const items = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    this.batchPathBytes = 0;
    const p = this.last.then(() => this.fetch(items));
    p.catch((err: unknown) => this.fail(err));
    this.last = p;
    this.queued.push(p);
  }

  /** Waits until at most `n` batches are still queued. */
  private async drain(n: number): Promise<void> {
    while (this.queued.length > n) await this.queued.shift()!.catch(() => undefined);
    this.check();
  }

  private async fetch(items: Wanted[]): Promise<void> {
    this.check();
    const { channel } = await this.conn.open({ op: 'files', volume: this.volume, paths: items.map((i) => i.path), test: this.test });
    const reader = new FrameReader(channel, `${this.label}: files of ${this.volume}`, { idleMs: this.conn.idleMs });
    try {
      for (const item of items) {
        const header = checkFileHeader(await reader.line(), item.path, this.label);
        if (!header.ok) {
          this.skip(item.path, `cannot be read on ${this.label}: ${header.error}`);
          continue;
        }
        // The file as read may not be the one listed: its time is checked again.
        const ahead = this.ahead(header.mtime);
        if (ahead) {
          await this.dropContent(reader);
          this.skip(item.path, `${ahead}: not copied`);
          continue;
        }
        await this.receive(reader, item, header);
        this.check();
      }
      const end = (await reader.line()) as Record<string, unknown> | null;
      if (!end || end.end !== true) throw protocolError(this.label, 'a files answer without its end');
    } finally {
      await reader.close();
      channel.close();
    }
  }

  /** Reads and drops one file's content and status. */
  private async dropContent(reader: FrameReader): Promise<void> {
    while ((await reader.chunk(MAX_CHUNK_BYTES)) !== null);
    await reader.line();
  }

  /** One file's content and status: small ones go to the writer pool, big ones are streamed to a temporary file. */
  private async receive(reader: FrameReader, item: Wanted, header: FileHeader & { ok: true }): Promise<void> {
    let parts: Buffer[] = [];
    let size = 0;
    let big: TempFile | undefined;
    try {
      for (let c = await reader.chunk(MAX_CHUNK_BYTES); c !== null; c = await reader.chunk(MAX_CHUNK_BYTES)) {
        size += c.length;
        if (big) {
          await big.write(c);
        } else {
          parts.push(c);
          if (size > SMALL_FILE_BYTES) {
            big = await openTempFile(this.dirs, item.path);
            for (const p of parts) await big.write(p);
            parts = [];
          }
        }
      }
      const status = (await reader.line()) as FileStatus | null;
      if (!status || status.complete !== true) {
        this.skip(item.path, `changed on ${this.label} while it was read, not copied${status?.error ? ` (${status.error})` : ''}`);
        return;
      }
      this.counts.bytes += size;
      if (big) {
        const file = big;
        big = undefined;
        await placeTempFile(file, item.path, item.local, header).then(
          (ino) => this.copied(item, ino),
          (err: unknown) => this.skipIfChangedHere(item.path, err),
        );
      } else {
        const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
        await this.room();
        this.runWriter(item.path, async () => this.copied(item, await writeSmallFile(this.dirs, item.path, item.local, header, data)));
      }
    } finally {
      if (big) await big.discard();
    }
  }

  /** A file of the peer is here now, as inode `ino`. */
  private copied(item: Wanted, ino: bigint): void {
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
    for (let i = this.createdDirs.length - 1; i >= 0; i--) {
      const { path, mtime } = this.createdDirs[i]!;
      await setDirTime(this.rootFd, path, mtime).catch((err: unknown) => this.skipIfChangedHere(path, err, 'its mtime not set: '));
    }
  }
}

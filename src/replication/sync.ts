// sync <volume> <host>...: the original's rsync pull (archive mode, no
// --delete) without rsync. For each host in turn, its live volume's tree is
// read (a "tree" request) and compared with the local live volume as it
// arrives: a file missing here or newer (mtime) there is fetched (or as old
// but of another size: rsync's quick check on a tie), in batches
// ("files" requests, large files streamed in chunks), and written under a
// temporary name in its directory, its owner, mode and mtime set, then
// renamed over the old one: a reader sees the old file or the new one, never
// half of one. Symlinks are copied as symlinks, remote paths sharing an
// inode become hard links of one local file, missing directories are created
// (their mtime set at the end). Nothing local is ever deleted: a type
// conflict (a remote file where a directory is here, a symlink here where
// the remote has a directory...) is skipped and reported, and so is a FIFO,
// socket or device.
//
// "Newer" is the peer's clock against ours: an entry whose mtime is ahead of
// this host's clock by more than SYNC_CLOCK_SKEW is skipped (a peer whose
// clock is a year ahead would otherwise replace every file). And the local
// entry is looked at once (a listing of its directory) but replaced only if
// it is still what was listed (inode, size, mtime) right before the rename:
// a container's write in between wins, the file is skipped.
//
// The local volume is a container's too, and hostile: every directory is
// opened beneath the volume's root with openat2 (btrfs.openBeneath: no
// symlink, no "..", no mount point on the path) and every entry is named as
// /proc/self/fd/<dirfd>/<name>, never followed; a planted `a -> /etc` makes
// the peer's `a/passwd` a conflict, not a write to /etc/passwd.
import { lchown, link, lstat, mkdir, rename, symlink, unlink } from 'node:fs/promises';

import * as btrfs from '../btrfs/index.js';
import { StoreError } from '../store/errors.js';
import { validateVolumeName } from '../store/names.js';
import { Limiter } from '../util/limiter.js';
import { randomHex } from '../util/random-hex.js';
import { withPeer, type ConnectOptions, type PeerConnection } from './client.js';
import type { ReplicationContext } from './context.js';
import { errCode } from '../util/err-code.js';
import { at, fdChmod, fdChown, fdClose, fdCloseQuietly, fdStat, fdWriteAll, kindOfMode } from './fd-ops.js';
import { FrameReader } from './frames.js';
import type { Peer } from './peer.js';
import { MAX_CHUNK_BYTES, MAX_FILES_PER_REQUEST, ReplicationError, answerError, isTreePath, type FileHeader, type FileStatus, type TreeEntry } from './protocol.js';
import { Held, syncLimits, type HeldKind, type SyncLimits } from './sync-limits.js';

export interface SyncOptions {
  /** From the peers' TEST_REMOTE_PATH/<volume>. */
  test?: boolean;
  /** Bounds of what one host's sync remembers (tests set small ones); default DEFAULT_SYNC_LIMITS. */
  limits?: Partial<SyncLimits>;
}

/** An entry not copied, and why. */
export interface SyncSkip {
  path: string;
  reason: string;
}

/** What a sync did with one host. */
export interface HostSyncResult {
  host: string;
  ok: boolean;
  /** Why this host failed (it could not be reached, refused, or the transfer broke). */
  error?: string;
  /** Regular files written (content fetched). */
  copied?: number;
  /** Hard links made to a file copied in this run. */
  linked?: number;
  /** Remote hard links fetched as files of their own: more than the sync limits could remember. */
  unlinked?: number;
  symlinks?: number;
  /** Directories created. */
  dirs?: number;
  /** Bytes of content fetched. */
  bytes?: number;
  /** Files and symlinks already here, as new as the remote's or newer (within SYNC_CLOCK_SKEW): left as they are. */
  kept?: number;
  /** Entries not copied: conflicts, special files, files that changed while read or here, times ahead of our clock... */
  skipped?: number;
  /** The first of them, with the reason. */
  skips?: SyncSkip[];
}

export interface SyncResult {
  volume: string;
  /** Per host, in the order given: what was done, or why it failed. */
  hosts: HostSyncResult[];
}

/** A sync that failed for some host: the message names each with its reason; `result` holds what the others did. */
export class SyncError extends ReplicationError {
  constructor(
    message: string,
    readonly result: SyncResult,
  ) {
    super('ERR_SYNC_FAILED', message);
  }
}

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
/** Open directory fds kept for the entries that follow. */
const DIR_CACHE = 64;
/** Temporary names in the local volume: `.bv-sync.<hex>`. */
export const SYNC_TEMP_PREFIX = '.bv-sync.';

/** Errors of the local tree changing under us (the container): that entry is skipped, the sync goes on. */
const LOCAL_CHANGED = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'EXDEV', 'EMLINK']);

/** A local change that makes one entry a skip. */
class Skip extends Error {}

/** A rename into place refused because of what is there now: a skip (or the error itself). */
function renameSkip(err: unknown): unknown {
  const code = errCode(err);
  if (code === 'EEXIST') return new Skip('created here during the sync: kept');
  if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'ENOTDIR') return new Skip('a directory here now: kept');
  return err;
}

function protocol(peer: string, what: string): ReplicationError {
  return new ReplicationError('ERR_PROTOCOL', `${peer}: ${what}`);
}

const isInt = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
const NS = /^-?[0-9]{1,20}$/;
const TYPES = new Set(['file', 'dir', 'symlink', 'other']);

/** A tree entry from the peer, checked (a malformed one fails the host). */
function checkEntry(value: unknown, peer: string): TreeEntry {
  const e = value as Partial<TreeEntry> | null;
  const ok =
    typeof e === 'object' &&
    e !== null &&
    isTreePath(e.path, true) &&
    TYPES.has(e.type as string) &&
    isInt(e.mode, 0, 0xffffffff) &&
    isInt(e.uid, 0, 0xffffffff) &&
    isInt(e.gid, 0, 0xffffffff) &&
    isInt(e.size, 0, Number.MAX_SAFE_INTEGER) &&
    typeof e.mtime === 'string' &&
    NS.test(e.mtime) &&
    isInt(e.dev, 0, Number.MAX_SAFE_INTEGER) &&
    isInt(e.ino, 0, Number.MAX_SAFE_INTEGER) &&
    isInt(e.nlink, 0, Number.MAX_SAFE_INTEGER) &&
    (e.type !== 'symlink' || (typeof e.target === 'string' && e.target !== '' && !e.target.includes('\0') && Buffer.byteLength(e.target) < 4096)) &&
    (e.path !== '' || e.type === 'dir');
  if (!ok) throw protocol(peer, `a tree entry that is not one: ${JSON.stringify(value).slice(0, 200)}`);
  return e as TreeEntry;
}

function checkHeader(value: unknown, path: string, peer: string): FileHeader {
  const h = value as Record<string, unknown> | null;
  if (typeof h !== 'object' || h === null || h.path !== path) throw protocol(peer, `expected the header of ${JSON.stringify(path)}, got ${JSON.stringify(value).slice(0, 200)}`);
  if (h.ok === false && typeof h.error === 'string') return h as FileHeader;
  const ok = h.ok === true && isInt(h.mode, 0, 0xffffffff) && isInt(h.uid, 0, 0xffffffff) && isInt(h.gid, 0, 0xffffffff) && typeof h.mtime === 'string' && NS.test(h.mtime);
  if (!ok) throw protocol(peer, `a file header that is not one: ${JSON.stringify(value).slice(0, 200)}`);
  return h as FileHeader;
}

/**
 * Whether the remote entry is to replace the local one of the same type: it
 * is newer (mtime, to the ns), or as old but not the same by rsync's quick
 * check (another size; for a symlink, another target). File times have the
 * granularity of the kernel's tick: two files written within a few ms of
 * each other have the same mtime.
 */
function newer(e: TreeEntry, local: Local): boolean {
  const theirs = BigInt(e.mtime);
  if (theirs !== local.mtimeNs) return theirs > local.mtimeNs;
  return e.type === 'file' ? e.size !== local.size : e.target !== local.target;
}

/** What is here under a name, as far as sync needs it. */
interface Local {
  mode: number;
  size: number;
  mtimeNs: bigint;
  ino: bigint;
  /** A symlink's target (as UTF-8). */
  target?: string;
}

const S_IFMT = 0o170000;
const isType = (local: Local, type: 'file' | 'dir' | 'symlink'): boolean =>
  (local.mode & S_IFMT) === { file: 0o100000, dir: 0o040000, symlink: 0o120000 }[type];

/** A name of a local directory listing as a key: its bytes, whatever they are. */
const key = (bytes: Buffer): string => bytes.toString('latin1');
const keyOf = (name: string): string => key(Buffer.from(name, 'utf8'));

const split = (path: string): [string, string] => {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? ['', path] : [path.slice(0, slash), path.slice(slash + 1)];
};

/** Entry `name` of directory `dirfd` (lstat, not followed), or null when there is none. */
async function lstatLocal(dirfd: number, name: string): Promise<Local | null> {
  try {
    const st = await lstat(at(dirfd, name), { bigint: true });
    return { mode: Number(st.mode), size: Number(st.size), mtimeNs: st.mtimeNs, ino: st.ino };
  } catch (err) {
    if (errCode(err) === 'ENOENT') return null;
    throw err;
  }
}

/** Directory fds of the local volume by path, opened beneath its root, shared by the work in flight. */
class DirCache {
  readonly #entries = new Map<string, { fd: Promise<number>; users: number; listing?: Promise<Map<string, Local>> }>();

  constructor(private readonly root: number) {}

  /** The fd of directory `path` ('' is the root); release it when done. */
  async acquire(path: string): Promise<number> {
    let e = this.#entries.get(path);
    if (e) {
      this.#entries.delete(path); // most recently used last
      this.#entries.set(path, e);
    } else {
      const fd = path === '' ? Promise.resolve(this.root) : btrfs.openBeneath(this.root, path, 'directory');
      const entry: { fd: Promise<number>; users: number; listing?: Promise<Map<string, Local>> } = { fd, users: 0 };
      e = entry;
      this.#entries.set(path, entry);
      fd.catch(() => {
        if (this.#entries.get(path) === entry) this.#entries.delete(path);
      });
    }
    e.users++;
    try {
      return await e.fd;
    } catch (err) {
      e.users--;
      throw err;
    }
  }

  /**
   * What directory `path` (held, fd `dirfd`) holds under `name`, from one
   * listing of it taken when first asked (one call for the whole directory,
   * not an lstat per name). What changes here afterwards is caught right
   * before the rename into place: an entry replaced only if it is still the
   * one listed (see {@link expected}), a new one never replaces anything.
   */
  async lookup(path: string, dirfd: number, name: string): Promise<Local | null> {
    const e = this.#entries.get(path);
    if (e) {
      e.listing ??= btrfs
        .listBeneath(dirfd, '')
        .then((l) => new Map(l.entries.map((x) => [key(x.name), { mode: x.mode, size: x.size, mtimeNs: x.mtimeNs, ino: BigInt(x.ino), ...(x.target ? { target: x.target.toString('utf8') } : {}) }])));
      const listing = await e.listing.catch(() => null);
      if (listing) return listing.get(keyOf(name)) ?? null;
    }
    return lstatLocal(dirfd, name);
  }

  release(path: string): void {
    const e = this.#entries.get(path);
    if (e) e.users--;
    if (this.#entries.size <= DIR_CACHE) return;
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= DIR_CACHE) break;
      if (entry.users > 0 || key === '') continue;
      this.#entries.delete(key);
      entry.fd.then(fdCloseQuietly, () => undefined);
    }
  }

  /** Forgets `path` (no longer a directory we may use); its fd is closed once unused. */
  async closeAll(): Promise<void> {
    const all = [...this.#entries];
    this.#entries.clear();
    await Promise.all(all.filter(([k]) => k !== '').map(([, e]) => e.fd.then(fdCloseQuietly, () => undefined)));
  }
}

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

/** What `local` must still be for a rename over it. */
const expected = (local: Local): btrfs.ExpectedEntry => ({ ino: local.ino, size: local.size, mtimeNs: local.mtimeNs });

const CHANGED_HERE = 'changed here during the sync: kept';

type Counts = Required<Omit<HostSyncResult, 'host' | 'ok' | 'error'>>;

/** A directory of the tree being walked: its visit says whether what it holds is skipped. */
interface OpenDir {
  path: string;
  skipped: Promise<boolean>;
}

/** Whether `path` is `dir` or below it. */
const within = (path: string, dir: string): boolean => path === dir || (path.startsWith(dir) && path[dir.length] === '/');

/** One host's pull into the local volume. */
class HostSync {
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
  private readonly writers = new Limiter(WRITERS);
  private readonly inflight = new Set<Promise<void>>();
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
    this.rootFd = await btrfs.openBeneath(this.ctx.config.volumesPath, this.volume, 'directory');
    this.dirs = new DirCache(this.rootFd);
    try {
      await this.readTree();
      this.flush();
      await this.drain(0);
      await this.settle();
      for (const f of this.followers) this.runWriter(f.path, () => this.linkFollower(f));
      await this.settle();
      await this.setDirTimes();
      await btrfs.syncFilesystem(this.ctx.config.volumesPath);
      return this.counts;
    } catch (err) {
      this.fail(err); // the batches and writers still running stop at their next step
      throw err;
    } finally {
      await Promise.allSettled(this.queued);
      await Promise.allSettled([...this.inflight]);
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

  /** Runs `task` in the writer pool; a local change skips `path`, anything else fails the host. */
  private runWriter(path: string, task: () => Promise<void>): void {
    const p = this.writers
      .run(task)
      .catch((err: unknown) => {
        if (err instanceof Skip) this.skip(path, err.message);
        else if (LOCAL_CHANGED.has(errCode(err) ?? '')) this.skip(path, `changed here during the sync (${errCode(err)})`);
        else this.fail(err);
      })
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  /** Waits while the writer pool has much work queued (what it holds is in memory). */
  private async room(): Promise<void> {
    while (this.inflight.size >= 2 * WRITERS) await Promise.race(this.inflight);
  }

  private async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    this.check();
  }

  private async readTree(): Promise<void> {
    const { channel } = await this.conn.open({ op: 'tree', volume: this.volume, test: this.test });
    const reader = new FrameReader(channel, `${this.label}: tree of ${this.volume}`, this.conn.idleMs);
    try {
      for (;;) {
        const line = (await reader.line()) as Record<string, unknown> | null;
        if (line && line.end === true) break;
        if (line && line.ok === false) throw answerError(line, this.label)!;
        const e = checkEntry(line, this.label);
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
      if (!LOCAL_CHANGED.has(errCode(err) ?? '')) throw err;
      // Gone or no longer a directory here (or the peer listed it before its directory).
      this.skip(e.path, `its directory is not a directory here (${errCode(err)})`);
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
        this.runWriter(e.path, () => this.copySymlink(e, local));
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
      await mkdir(at(dirfd, name), { mode: 0o700 });
      const fd = await btrfs.openBeneath(dirfd, name, 'directory');
      try {
        await fdChown(fd, e.uid, e.gid);
        await fdChmod(fd, e.mode & 0o7777);
      } finally {
        await fdClose(fd);
      }
    } catch (err) {
      if (!LOCAL_CHANGED.has(errCode(err) ?? '')) throw err;
      this.skip(e.path, `changed here during the sync (${errCode(err)})`);
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
    const reader = new FrameReader(channel, `${this.label}: files of ${this.volume}`, this.conn.idleMs);
    try {
      for (const item of items) {
        const header = checkHeader(await reader.line(), item.path, this.label);
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
      if (!end || end.end !== true) throw protocol(this.label, 'a files answer without its end');
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
            big = await this.openTemp(item.path);
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
        await this.place(item, header, file).catch((err: unknown) => {
          if (err instanceof Skip) this.skip(item.path, err.message);
          else if (LOCAL_CHANGED.has(errCode(err) ?? '')) this.skip(item.path, `changed here during the sync (${errCode(err)})`);
          else throw err;
        });
      } else {
        const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
        await this.room();
        this.runWriter(item.path, () => this.writeSmall(item, header, data));
      }
    } finally {
      if (big) await big.discard();
    }
  }

  /**
   * A file received whole: written, its metadata set and renamed into place
   * in one native call, which looks again at what it replaces right before.
   */
  private async writeSmall(item: Wanted, header: FileHeader & { ok: true }, data: Buffer): Promise<void> {
    const [parent, name] = split(item.path);
    const dirfd = await this.dirs.acquire(parent);
    try {
      const meta = { uid: header.uid, gid: header.gid, mode: header.mode, mtime: BigInt(header.mtime) };
      const ino = await btrfs
        .writeFileAt(dirfd, name, data, meta, { replace: item.local !== null, tempPrefix: SYNC_TEMP_PREFIX, expect: item.local && expected(item.local) })
        .catch((err: unknown) => {
          throw (err as { syscall?: string }).syscall === 'renameat2' ? renameSkip(err) : err;
        });
      if (ino === null) throw new Skip(CHANGED_HERE);
      if (item.group) item.group.ino = ino;
      this.counts.copied++;
    } finally {
      this.dirs.release(parent);
    }
  }

  /** A new temporary file in the directory of `path`. */
  private async openTemp(path: string): Promise<TempFile> {
    const [parent] = split(path);
    const dirfd = await this.dirs.acquire(parent);
    try {
      for (let attempt = 0; ; attempt++) {
        const name = SYNC_TEMP_PREFIX + randomHex(12);
        try {
          const fd = await btrfs.openBeneath(dirfd, name, 'create', { mode: 0o600 });
          return new TempFile(this.dirs, parent, dirfd, name, fd);
        } catch (err) {
          if (errCode(err) !== 'EEXIST' || attempt >= 4) throw err;
        }
      }
    } catch (err) {
      this.dirs.release(parent);
      throw err;
    }
  }

  /** Sets the metadata of a written file and renames it into place. */
  private async place(item: Wanted, header: FileHeader & { ok: true }, file: TempFile): Promise<void> {
    try {
      await fdChown(file.fd, header.uid, header.gid); // before chmod: chown clears setuid/setgid
      await fdChmod(file.fd, header.mode & 0o7777);
      await btrfs.setTimesAt(file.fd, '', { mtime: BigInt(header.mtime) });
      const ino = item.group ? (await fdStat(file.fd)).ino : undefined;
      await file.closeFd();
      await this.rename(file.dirfd, file.name, split(item.path)[1], item.local);
      file.placed();
      if (item.group) item.group.ino = ino;
      this.counts.copied++;
    } finally {
      await file.discard();
    }
  }

  /**
   * Renames temporary `tmp` of `dirfd` to `name`: over the old entry `local`
   * if it is still the one listed (looked at right before), or only where
   * nothing is (a new one).
   */
  private async rename(dirfd: number, tmp: string, name: string, local: Local | null): Promise<void> {
    if (local) {
      const now = await lstatLocal(dirfd, name);
      if (!now || now.ino !== local.ino || now.size !== local.size || now.mtimeNs !== local.mtimeNs) throw new Skip(CHANGED_HERE);
    }
    try {
      if (local) await rename(at(dirfd, tmp), at(dirfd, name));
      else await btrfs.renameNoReplace(at(dirfd, tmp), at(dirfd, name));
    } catch (err) {
      throw renameSkip(err);
    }
  }

  private async copySymlink(e: TreeEntry, local: Local | null): Promise<void> {
    const [parent, name] = split(e.path);
    const dirfd = await this.dirs.acquire(parent);
    try {
      const tmp = SYNC_TEMP_PREFIX + randomHex(12);
      await symlink(e.target!, at(dirfd, tmp));
      try {
        await lchown(at(dirfd, tmp), e.uid, e.gid);
        await btrfs.setTimesAt(dirfd, tmp, { mtime: BigInt(e.mtime) });
        await this.rename(dirfd, tmp, name, local);
      } catch (err) {
        await unlink(at(dirfd, tmp)).catch(() => undefined);
        throw err;
      }
      this.counts.symlinks++;
    } finally {
      this.dirs.release(parent);
    }
  }

  /** A remote hard link of a file copied in this run: a hard link of the local copy. */
  private async linkFollower(f: Wanted): Promise<void> {
    const group = f.group!;
    if (group.ino === undefined) throw new Skip(`a hard link of ${group.path}, which was not copied`);
    const [parent, name] = split(f.path);
    const [srcParent, srcName] = split(group.path);
    const dst = await this.dirs.acquire(parent);
    try {
      const src = await this.dirs.acquire(srcParent);
      try {
        const tmp = SYNC_TEMP_PREFIX + randomHex(12);
        await link(at(src, srcName), at(dst, tmp));
        try {
          if ((await lstat(at(dst, tmp), { bigint: true })).ino !== group.ino) throw new Skip(`${group.path} changed here during the sync: not linked`);
          await this.rename(dst, tmp, name, f.local);
        } catch (err) {
          await unlink(at(dst, tmp)).catch(() => undefined);
          throw err;
        }
        this.counts.linked++;
      } finally {
        this.dirs.release(srcParent);
      }
    } finally {
      this.dirs.release(parent);
    }
  }

  /** The mtimes of the directories created, now that nothing more is written into them. */
  private async setDirTimes(): Promise<void> {
    for (let i = this.createdDirs.length - 1; i >= 0; i--) {
      const { path, mtime } = this.createdDirs[i]!;
      try {
        const fd = await btrfs.openBeneath(this.rootFd, path, 'directory');
        try {
          await btrfs.setTimesAt(fd, '', { mtime });
        } finally {
          await fdClose(fd);
        }
      } catch (err) {
        if (!LOCAL_CHANGED.has(errCode(err) ?? '')) throw err;
        this.skip(path, `its mtime not set: changed here during the sync (${errCode(err)})`);
      }
    }
  }
}

/** A temporary file being written in a directory of the local volume (holds that directory's fd). */
class TempFile {
  #open = true;
  #placed = false;
  #done = false;

  constructor(
    private readonly dirs: DirCache,
    private readonly parent: string,
    readonly dirfd: number,
    readonly name: string,
    readonly fd: number,
  ) {}

  write(data: Buffer): Promise<void> {
    return fdWriteAll(this.fd, data);
  }

  async closeFd(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    await fdClose(this.fd);
  }

  placed(): void {
    this.#placed = true;
  }

  /** Closes and, unless it was renamed into place, removes it; releases the directory. Idempotent. */
  async discard(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (this.#open) {
      this.#open = false;
      await fdCloseQuietly(this.fd);
    }
    if (!this.#placed) await unlink(at(this.dirfd, this.name)).catch(() => undefined);
    this.dirs.release(this.parent);
  }
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Pulls the live `volume` of each of `peers`, in turn, into the local live
 * volume (see the top of this file). Each host's failure is its own: the
 * others are still synced.
 * @throws StoreError `ERR_VOLUME_NOT_FOUND` (no local volume: no host is tried);
 *   SyncError `ERR_SYNC_FAILED` once every host was tried, naming each that failed with its reason.
 */
export async function syncVolume(ctx: ReplicationContext, volume: string, peers: readonly Peer[], connect: ConnectOptions, options: SyncOptions): Promise<SyncResult> {
  validateVolumeName(volume);
  const limits = syncLimits(options.limits);
  if (!(await ctx.store.exists(volume))) throw new StoreError('ERR_VOLUME_NOT_FOUND', `${volume}: no such volume`);
  const hosts: HostSyncResult[] = [];
  for (const peer of peers) {
    try {
      const counts = await withPeer(peer, connect, (conn) => ctx.store.withVolumeLock(volume, 'shared', () => new HostSync(ctx, conn, volume, options.test === true, limits).run()));
      hosts.push({ host: peer.label, ok: true, ...counts });
      ctx.logger.info(
        `sync ${volume} from ${peer.label}: ${counts.copied} files (${counts.bytes} bytes), ${counts.linked} hard links${counts.unlinked ? ` (${counts.unlinked} fetched as files of their own)` : ''}, ${counts.symlinks} symlinks, ${counts.dirs} directories; ${counts.kept} kept, ${counts.skipped} skipped`,
      );
      for (const s of counts.skips) ctx.logger.debug(`sync ${volume} from ${peer.label}: skipped ${s.path}: ${s.reason}`);
    } catch (err) {
      hosts.push({ host: peer.label, ok: false, error: message(err) });
      ctx.logger.warning(`sync ${volume} from ${peer.label} failed: ${message(err)}`);
    }
  }
  const failed = hosts.filter((h) => !h.ok);
  const result = { volume, hosts };
  if (failed.length > 0) throw new SyncError(`sync of ${volume} failed from ${failed.map((h) => `${h.host} (${h.error})`).join(', ')}`, result);
  return result;
}

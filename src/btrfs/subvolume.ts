import { checkOptions, checkPath, typeError } from './args.js';
import { native, type NativeSubvolumeList } from './binding.js';
import type {
  CreateSubvolumeOptions,
  DeleteSubvolumeOptions,
  ListedSubvolume,
  ListSubvolumesOptions,
  NestedSubvolume,
  SnapshotOptions,
  SubvolumeInfo,
} from './types.js';

/**
 * Whether `path` is the root of a btrfs subvolume: btrfs magic AND inode 256
 * AND a directory. False for a missing path or one on another filesystem.
 * @throws BtrfsError for other failures (EACCES...).
 */
export function isSubvolume(path: string): Promise<boolean> {
  return native.isSubvolume(checkPath(path, 'path'));
}

/**
 * Creates an empty subvolume. Equivalent: `btrfs subvolume create` (+ `chattr +C`,
 * + `btrfs qgroup limit` in the same ioctl with `qgroupLimit`).
 * @throws BtrfsError EEXIST, ENOENT (parent missing), ENOTTY (not btrfs), EROFS.
 */
export function createSubvolume(path: string, options?: CreateSubvolumeOptions): Promise<void> {
  const { nocow = false, qgroupLimit } = checkOptions<CreateSubvolumeOptions>(options, { nocow: 'boolean', qgroupLimit: 'number or null' }, 'createSubvolume');
  return native.createSubvolume(checkPath(path, 'path'), nocow, checkLimit(qgroupLimit));
}

/**
 * Snapshots subvolume `source` at `dest` (BTRFS_IOC_SNAP_CREATE_V2).
 * Equivalent: `btrfs subvolume snapshot [-r] source dest`.
 * @throws BtrfsError EEXIST, EINVAL (source not a subvolume), EXDEV, EROFS, ENOENT.
 */
export function snapshot(source: string, dest: string, options?: SnapshotOptions): Promise<void> {
  const { readonly = false, qgroupLimit } = checkOptions<SnapshotOptions>(options, { readonly: 'boolean', qgroupLimit: 'number or null' }, 'snapshot');
  return native.snapshot(checkPath(source, 'source'), checkPath(dest, 'dest'), readonly, checkLimit(qgroupLimit));
}

function checkLimit(limit: number | null | undefined): number | null | undefined {
  if (typeof limit === 'number' && !(Number.isSafeInteger(limit) && limit >= 0)) throw typeError('option "qgroupLimit" must be a whole number of bytes', 'ERR_INVALID_ARG_VALUE');
  return limit;
}

/**
 * Deletes a subvolume. Equivalent: `btrfs subvolume delete`. The space is
 * freed later by the kernel's cleaner.
 * @throws BtrfsError ENOENT, EINVAL (not a subvolume), ENOTEMPTY (nested
 * subvolumes without `recursive`), EPERM.
 */
export function deleteSubvolume(path: string, options?: DeleteSubvolumeOptions): Promise<void> {
  const { recursive = false } = checkOptions<DeleteSubvolumeOptions>(options, { recursive: 'boolean' }, 'deleteSubvolume');
  return native.deleteSubvolume(checkPath(path, 'path'), recursive);
}

/**
 * What the kernel knows about the subvolume rooted at `path`.
 * Equivalent: `btrfs subvolume show`.
 * @throws BtrfsError ENOENT, EINVAL (not a subvolume root), ENOTTY (not btrfs).
 */
export function subvolumeInfo(path: string): Promise<SubvolumeInfo> {
  return native.subvolumeInfo(checkPath(path, 'path'));
}

/**
 * The subvolumes directly inside directory `dir`, sorted by name (code
 * points of the UTF-8 bytes), in one native call: as root, from the root
 * tree in a few batched searches, no entry opened; otherwise one open + one
 * ioctl per entry. Equivalent: `btrfs subvolume list -o -u -q -R`, restricted
 * to `dir`. From the tree, `ctransid` and `ctime` of a subvolume changed
 * since the last transaction commit are the committed ones (as btrfs-progs
 * shows them).
 * @throws BtrfsError ENOENT, ENOTDIR, ENOTTY (not btrfs).
 */
export function listSubvolumes(dir: string, options?: ListSubvolumesOptions): Promise<ListedSubvolume[]> {
  return listSubvolumesBy(dir, 0, options);
}

/**
 * The names of {@link listSubvolumes}, without reading what each subvolume
 * is: as root one tree search of the directory's ROOT_REFs. Cheaper when
 * names are all that is needed (a thousand in well under a millisecond).
 * @throws BtrfsError ENOENT, ENOTDIR, ENOTTY (not btrfs).
 */
export function listSubvolumeNames(dir: string, options?: ListSubvolumesOptions): Promise<string[]> {
  return listSubvolumeNamesBy(dir, 0, options);
}

/** How a listing is read: 0 as allowed, 1 tree search only, 2 entry by entry only (tests compare them). */
export type ListMode = 0 | 1 | 2;

/** listSubvolumes() read one given way (internal: not exported by the package). */
export async function listSubvolumesBy(dir: string, mode: ListMode, options?: ListSubvolumesOptions): Promise<ListedSubvolume[]> {
  const abs = checkPath(dir, 'dir');
  return fromColumns(abs, await native.listSubvolumes(abs, mode, listPrefix(options, 'listSubvolumes')));
}

/** listSubvolumeNames() read one given way (internal: not exported by the package). */
export async function listSubvolumeNamesBy(dir: string, mode: ListMode, options?: ListSubvolumesOptions): Promise<string[]> {
  const abs = checkPath(dir, 'dir');
  const names = await native.listSubvolumeNames(abs, mode, listPrefix(options, 'listSubvolumeNames'));
  return names.length === 0 ? [] : names.toString('utf8').split('/');
}

function listPrefix(options: ListSubvolumesOptions | undefined, fn: string): string {
  const { prefix = '' } = checkOptions<ListSubvolumesOptions>(options, { prefix: 'string' }, fn);
  if (prefix.includes('\0')) throw typeError('option "prefix" must not contain NUL bytes', 'ERR_INVALID_ARG_VALUE');
  return prefix;
}

const STRIDE = 15;
const time = (ms: number): Date | null => (Number.isNaN(ms) ? null : new Date(ms));

/** Buffer's own slicers, which `toString(encoding, start, end)` ends in (3x cheaper without its argument handling). */
interface Slicer {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

function slicer(text: Buffer): Slicer {
  const b = text as unknown as Partial<Slicer>;
  if (typeof b.latin1Slice === 'function' && typeof b.utf8Slice === 'function') return b as Slicer;
  return { latin1Slice: (s, e) => text.toString('latin1', s, e), utf8Slice: (s, e) => text.toString('utf8', s, e) };
}

function fromColumns(abs: string, { numbers: n, text }: NativeSubvolumeList): ListedSubvolume[] {
  const prefix = abs.endsWith('/') ? abs : `${abs}/`; // abs is resolved: only "/" ends with a slash
  const s = slicer(text);
  const out = new Array<ListedSubvolume>(n.length / STRIDE);
  let at = 0;
  let parentUuid: string | null = null;
  for (let i = 0, o = 0; o < n.length; i++, o += STRIDE) {
    const nameEnd = n[o + 13]!;
    const name = s.utf8Slice(at, nameEnd);
    at = nameEnd;
    const mask = n[o + 14]!;
    let uuid: string | null = null;
    let receivedUuid: string | null = null;
    if (mask & 1) uuid = s.latin1Slice(at, (at += 36));
    if (mask & 2) parentUuid = s.latin1Slice(at, (at += 36));
    else if (!(mask & 8)) parentUuid = null;
    if (mask & 4) receivedUuid = s.latin1Slice(at, (at += 36));
    out[i] = {
      id: n[o]!,
      parentId: n[o + 1]!,
      dirId: n[o + 2]!,
      uuid,
      parentUuid,
      receivedUuid,
      generation: n[o + 3]!,
      ctransid: n[o + 4]!,
      otransid: n[o + 5]!,
      stransid: n[o + 6]!,
      rtransid: n[o + 7]!,
      ctime: time(n[o + 8]!)!,
      otime: time(n[o + 9]!)!,
      stime: time(n[o + 10]!),
      rtime: time(n[o + 11]!),
      readonly: n[o + 12] === 1,
      name,
      path: prefix + name,
    };
  }
  return out;
}

/**
 * Every subvolume below the subvolume rooted at `path`, at any depth, parents
 * first, found in the root tree by id (needs root). Equivalent: `btrfs
 * subvolume list -o`, recursively.
 * @throws BtrfsError EINVAL (not a subvolume root), EPERM (not root), ENOTTY.
 */
export function nestedSubvolumes(path: string): Promise<NestedSubvolume[]> {
  return native.nestedSubvolumes(checkPath(path, 'path'));
}

/**
 * Commits the filesystem of `path` and waits until the kernel has finished
 * cleaning deleted subvolumes (BTRFS_IOC_SUBVOL_SYNC_WAIT, Linux 6.13+; on
 * older kernels only the commit). Used by benchmarks and tests.
 */
export function waitForCleaner(path: string): Promise<void> {
  return native.waitForCleaner(checkPath(path, 'path'));
}

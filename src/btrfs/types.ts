/** Types of the `buttervolume/btrfs` API: the single source of truth. */

/** What the kernel reports about one subvolume (BTRFS_IOC_GET_SUBVOL_INFO). */
export interface SubvolumeInfo {
  /** Subvolume (tree) id; 5 is the top level. */
  id: number;
  /** Id of the subvolume that contains this one; 0 for the top level. */
  parentId: number;
  /** Inode number of the directory that holds this subvolume in its parent. */
  dirId: number;
  /** UUID in 8-4-4-4-12 form. */
  uuid: string | null;
  /** UUID of the subvolume this one is a snapshot of; null for a plain subvolume. */
  parentUuid: string | null;
  /** UUID of the sent subvolume this one was received from; null when not received. */
  receivedUuid: string | null;
  /** Last transaction that changed the subvolume's tree. */
  generation: number;
  /** Transaction of the last change of the subvolume's content (copied into snapshots). */
  ctransid: number;
  /** Transaction that created the subvolume. */
  otransid: number;
  /** For a received subvolume: the sender's ctransid; else 0. */
  stransid: number;
  /** For a received subvolume: the transaction that received it; else 0. */
  rtransid: number;
  ctime: Date;
  otime: Date;
  /** null when never set (not a received subvolume). */
  stime: Date | null;
  /** null when never set (not a received subvolume). */
  rtime: Date | null;
  readonly: boolean;
}

/** One entry of listSubvolumes(). */
export interface ListedSubvolume extends SubvolumeInfo {
  /** Name in the listed directory. */
  name: string;
  /** Absolute path: the listed directory joined with the name. */
  path: string;
}

export interface ListSubvolumesOptions {
  /** Only the subvolumes whose name starts with this (the others are not read). Default "" (all). */
  prefix?: string;
}

/** A subvolume below another one, at any depth (see nestedSubvolumes()). */
export interface NestedSubvolume {
  id: number;
  /** Id of the subvolume directly holding it. */
  parentId: number;
  /** Path relative to the outer subvolume's root (informative: content can rename it any time). */
  path: string;
  readonly: boolean;
}

export interface CreateSubvolumeOptions {
  /** Set FS_NOCOW_FL on the new, empty subvolume; new files inherit it. Default false. */
  nocow?: boolean;
  /** Limit of its qgroup's referenced bytes, set in the same ioctl (see setQgroupLimit; ignored with quotas off). Default: none. */
  qgroupLimit?: number | null;
}

export interface SnapshotOptions {
  /** Make the snapshot read-only (needed to send it). Default false. */
  readonly?: boolean;
  /**
   * Limit of its qgroup's referenced bytes, or null for none, set in the
   * same ioctl (ignored with quotas off). Default: the kernel's (none; under
   * full qgroups the source's limit).
   */
  qgroupLimit?: number | null;
}

export interface DeleteSubvolumeOptions {
  /**
   * Delete nested subvolumes first, deepest first, found and destroyed by id
   * (never through paths inside the subvolume), read-only ones made writable
   * first. Needs root. Default false: ENOTEMPTY if there are any.
   */
  recursive?: boolean;
}

/** Values of the `btrfs.compression` property; null removes it (the mount option applies). */
export type Compression = 'zlib' | 'lzo' | 'zstd' | 'none';

export interface LockOptions {
  /** A shared lock (several holders) instead of an exclusive one. Default false. */
  shared?: boolean;
  /** Wait until the lock is free instead of failing with EAGAIN. Default true. */
  wait?: boolean;
  /** With wait: give up after this many milliseconds (ETIMEDOUT). Default: no limit. */
  timeout?: number;
  /** With wait: stop waiting when this signal aborts (AbortError). */
  signal?: AbortSignal;
}

/** A held advisory lock. release() is idempotent. */
export interface Lock {
  readonly path: string;
  readonly shared: boolean;
  readonly held: boolean;
  release(): void;
}

export interface SendOptions {
  /** A read-only snapshot the receiver has: the stream is incremental from it (and clones from it). */
  parent?: string;
  /** More read-only snapshots the receiver has, to clone shared extents from. */
  cloneSources?: string[];
  /** Stream version: 1 or 2. Default: the highest the kernel offers (sendProtocolMax()). */
  protocol?: number;
  /** Send compressed extents as they are on disk (protocol 2). Default false. */
  compressed?: boolean;
  /** Metadata only, for a size estimate (not receivable). Default false. */
  noData?: boolean;
  /**
   * Read the snapshot's file data ahead of the kernel's send, on a thread
   * of its own (native/core/send_prefetch.h): a snapshot whose data is not
   * in the page cache is sent without waiting for one small file's read
   * after another. Pages read ahead of files that had none cached are
   * dropped again. Needs cachestat(2) (Linux 6.5), else ignored; not with
   * `compressed` (send reads those extents from the disk). Default true.
   */
  readAhead?: boolean;
}

export interface ReceiveOptions {
  /** More directories whose subvolumes may be parents and clone sources (destDir always is). */
  allowedDirs?: string[];
  /**
   * Prefix of the temporary names in destDir (`<prefix>.<n>`); default
   * `.bv-receive.<pid>.<start>.<boot>.<n>` (the process's start time and the
   * boot, so that a leftover can be told from a receive still running).
   */
  tempPrefix?: string;
  /** Decompress encoded extents in-process instead of asking BTRFS_IOC_ENCODED_WRITE (tests the fallback). */
  forceDecompress?: boolean;
  /**
   * The one subvolume the input may hold: a subvolume of another name, or a
   * second one, is refused (`ERR_RECEIVE_UNEXPECTED`) before anything of it
   * is created; the subvolume is put in place only once the input has ended.
   */
  expectName?: string;
  /**
   * Bytes of free space to leave on destDir's filesystem: a command that
   * would allocate past it is refused (`ERR_RECEIVE_NO_SPACE`) before it is
   * applied. Default 0: no limit.
   */
  reserveBytes?: number;
}

/** One received subvolume (read-only, in destDir). */
export interface ReceivedSubvolume {
  /** Its name in destDir: the name the stream gave it. */
  name: string;
  path: string;
  /** Its own (new) UUID. */
  uuid: string | null;
  /** The sender's identity of it: what an incremental stream names as parent. */
  receivedUuid: string | null;
  /** For an incremental stream: the UUID of the local parent it was snapshotted from. */
  parentUuid: string | null;
  /** The sender's ctransid (stored as stransid). */
  ctransid: number;
  /** Commands applied. */
  commands: number;
}

/** What receive() resolves to: the last subvolume received, and every one in order. */
export interface ReceiveResult extends ReceivedSubvolume {
  subvolumes: ReceivedSubvolume[];
  /** Bytes of the stream read. */
  streamBytes: number;
}

/** What lstat (or fstat) says of an entry, as listBeneath and readFileBeneath give it. */
export interface EntryStat {
  /** st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  dev: number;
  ino: number;
  nlink: number;
  /** ns since the epoch. */
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** An entry of {@link listBeneath}: its name and target as bytes (not necessarily UTF-8). */
export interface ListedEntry extends EntryStat {
  name: Buffer;
  /** A symlink's target. */
  target?: Buffer;
}

/** Command names of the send stream, as `btrfs receive --dump` knows them (in upper case). */
export type SendCommandName =
  | 'SUBVOL' | 'SNAPSHOT' | 'MKFILE' | 'MKDIR' | 'MKNOD' | 'MKFIFO' | 'MKSOCK' | 'SYMLINK' | 'RENAME' | 'LINK'
  | 'UNLINK' | 'RMDIR' | 'SET_XATTR' | 'REMOVE_XATTR' | 'WRITE' | 'CLONE' | 'TRUNCATE' | 'CHMOD' | 'CHOWN'
  | 'UTIMES' | 'END' | 'FALLOCATE' | 'FILEATTR' | 'ENCODED_WRITE';

/** A u64 of the stream: a number while exact (<= 2^53 - 1), else a bigint. */
export type SendU64 = number | bigint;

/** A timespec of the stream (UTIMES). */
export interface SendTime {
  sec: SendU64;
  nsec: number;
}

/**
 * One command of a send stream. Only the attributes present in the stream
 * are set. Paths are relative to the received subvolume ('' is its root) and
 * shown as UTF-8 (bytes that are not become U+FFFD).
 */
export interface DumpedCommand {
  /** 1-based index of the stream (header) in the input. */
  stream: number;
  /** 1-based index of the command in the whole input. */
  index: number;
  /** Byte offset of the command in the input. */
  offset: number;
  command: SendCommandName;
  path?: string;
  /** RENAME's new name. */
  pathTo?: string;
  /** SYMLINK's target, or LINK's existing file (PATH is the new name). */
  pathLink?: string;
  /** CLONE's source file, in the subvolume cloneUuid. */
  clonePath?: string;
  uuid?: string;
  cloneUuid?: string;
  ctransid?: SendU64;
  cloneCtransid?: SendU64;
  ino?: SendU64;
  size?: SendU64;
  mode?: SendU64;
  uid?: SendU64;
  gid?: SendU64;
  rdev?: SendU64;
  fileOffset?: SendU64;
  cloneOffset?: SendU64;
  cloneLen?: SendU64;
  /** Raw btrfs inode flags (FILEATTR). */
  fileattr?: SendU64;
  unencodedFileLen?: SendU64;
  unencodedLen?: SendU64;
  unencodedOffset?: SendU64;
  fallocateMode?: number;
  compression?: number;
  encryption?: number;
  atime?: SendTime;
  mtime?: SendTime;
  ctime?: SendTime;
  otime?: SendTime;
  /** Bytes of WRITE / ENCODED_WRITE data (the data itself is not copied out). */
  dataLength?: number;
  xattrName?: string;
  xattrData?: Buffer;
}

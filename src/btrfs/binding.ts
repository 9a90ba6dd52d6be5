// The only module that touches the .node file: a local build (build/Release)
// first, then the committed prebuild for this platform - node-gyp-build's
// order. The two usual places are tried directly (node-gyp-build's directory
// walk costs the CLI's start-up several ms); node-gyp-build is the fallback.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BtrfsError, SendStreamError } from './errors.js';
import type { ExtentUsage, Qgroup, QuotaStatus } from './quota-types.js';
import type { DumpedCommand, EntryStat, NestedSubvolume, ReceivedSubvolume, SubvolumeInfo } from './types.js';

/** A held flock owned by the addon; closing happens in release() or on GC. */
export interface NativeLockHandle {
  readonly held: boolean;
  release(): void;
}

/**
 * A listing packed in two columns (native/napi/convert.h: PackedList):
 * numbers[15i..15i+14] = id, parentId, dirId, generation, ctransid,
 * otransid, stransid, rtransid, ctime, otime, stime, rtime (ms, NaN when
 * unset), readonly (0/1), where the name ends in `text`, which UUIDs follow
 * it (bit 0 uuid, 1 parent, 2 received; 36 latin1 characters each; bit 3:
 * the parent UUID is entry i-1's, not repeated). Entry i's name starts where
 * entry i-1's text ended.
 */
export interface NativeSubvolumeList {
  numbers: Float64Array;
  text: Buffer;
}

/** The addon's exports. Arguments are validated by the TS layer before they get here. */
export interface NativeBinding {
  readonly sourceHash: string;
  setErrorClasses(classes: { BtrfsError: typeof BtrfsError; SendStreamError: typeof SendStreamError }): void;
  isSubvolume(path: string): Promise<boolean>;
  /** qgroupLimit: undefined the kernel's default, null none, or bytes. */
  createSubvolume(path: string, nocow: boolean, qgroupLimit?: number | null): Promise<void>;
  snapshot(source: string, dest: string, readonly: boolean, qgroupLimit?: number | null): Promise<void>;
  deleteSubvolume(path: string, recursive: boolean): Promise<void>;
  subvolumeInfo(path: string): Promise<SubvolumeInfo>;
  /** mode: 0 as allowed (tree search as root), 1 tree search only, 2 entry by entry only; names starting with prefix. */
  listSubvolumes(dir: string, mode: 0 | 1 | 2, prefix: string): Promise<NativeSubvolumeList>;
  /** The names of listSubvolumes(), separated by "/". */
  listSubvolumeNames(dir: string, mode: 0 | 1 | 2, prefix: string): Promise<Buffer>;
  nestedSubvolumes(path: string): Promise<NestedSubvolume[]>;
  getReadonly(path: string): Promise<boolean>;
  setReadonly(path: string, readonly: boolean): Promise<void>;
  getNocow(path: string): Promise<boolean>;
  setNocow(path: string, nocow: boolean): Promise<void>;
  clearImmutable(path: string): Promise<boolean>;
  getCompression(path: string): Promise<string | null>;
  setCompression(path: string, value: string | null): Promise<void>;
  syncFilesystem(path: string): Promise<void>;
  waitForCleaner(path: string): Promise<void>;
  renameNoReplace(from: string, to: string): Promise<void>;
  renameExchange(a: string, b: string): Promise<void>;
  tryLock(path: string, shared: boolean): NativeLockHandle | null;
  openBeneath(dir: number | string, path: string, how: 'read' | 'directory' | 'create', mode: number): Promise<number>;
  setTimesAt(dirfd: number, name: string, atimeNs: bigint | null, mtimeNs: bigint | null): Promise<void>;
  listBeneath(dir: number | string, path: string): Promise<{ self: EntryStat; entries: Array<EntryStat & { name: Buffer; target?: Buffer }> }>;
  readFileBeneath(dir: number | string, path: string, max: number): Promise<{ stat: EntryStat; data: Buffer; eof: boolean; complete: boolean; fd: number | null }>;
  listBeneathPacked(dir: number | string, path: string): Promise<{ self: Buffer; count: number; entries: Buffer }>;
  readFilesBeneath(dirfd: number, paths: string[], maxBytes: number, maxFile: number): Promise<{ done: number; packed: Buffer; big: { stat: Buffer; ctimeNs: bigint; data: Buffer; fd: number } | null }>;
  /** spec: 56 bytes per path (native/napi/beneath_batch_bindings.h). */
  writeFilesBeneath(dirfd: number, paths: string[], spec: Buffer, data: Buffer, tempPrefix: string): Promise<Array<bigint | null | BtrfsError>>;
  makeDirBeneath(dirfd: number, path: string, uid: number, gid: number, mode: number): Promise<void>;
  writeFileAt(
    dirfd: number,
    name: string,
    data: Buffer,
    uid: number,
    gid: number,
    mode: number,
    mtimeNs: bigint,
    replace: boolean,
    tempPrefix: string,
    expect: { ino: bigint; size: number; mtimeNs: bigint } | null,
    durable: boolean,
  ): Promise<bigint | null>;
  send(
    snapshot: string,
    parent: string | null,
    cloneSources: string[],
    protocol: number,
    compressed: boolean,
    noData: boolean,
    readAhead: boolean,
  ): { fd: number; done: Promise<void>; advance(streamed: number): void; prefetched(): number };
  receive(destDir: string, allowedDirs: string[], tempPrefix: string, forceDecompress: boolean, expectName: string | null, reserveBytes: number, onDrain: () => void): {
    push(chunk: Uint8Array): boolean;
    end(): void;
    abort(): void;
    release(): void;
    done: Promise<Array<Omit<ReceivedSubvolume, 'path'>>>;
  };
  sendProtocolMax(): number;
  dumpSendStream(data: Uint8Array): DumpedCommand[];
  quotaStatus(path: string): Promise<QuotaStatus>;
  quotaEnable(path: string, mode: 'simple' | 'qgroup'): Promise<QuotaStatus>;
  qgroupOf(path: string): Promise<Qgroup | null>;
  qgroupsById(path: string, ids: number[]): Promise<Array<Qgroup | null>>;
  qgroupSetLimit(path: string, maxReferenced: number | null): Promise<void>;
  extentUsage(path: string): Promise<ExtentUsage>;
}

/** The package root: two levels above this file, in src/btrfs as in dist/btrfs. */
export const packageRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Loads an addon file and registers the error classes with it (also used to test prebuilds). */
export function loadBinding(file?: string): NativeBinding {
  const known = [
    join(packageRoot, 'build', 'Release', 'buttervolume.node'),
    join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, 'buttervolume.node'),
  ].find((f) => existsSync(f));
  const path = file ?? known;
  let addon: NativeBinding;
  if (path) {
    // process.dlopen, not require: require's resolution and realpath walk
    // cost the CLI's start-up about 2 ms, and an addon needs neither.
    const module = { exports: {} as NativeBinding };
    process.dlopen(module, path);
    addon = module.exports;
  } else {
    addon = (createRequire(import.meta.url)('node-gyp-build') as (dir: string) => NativeBinding)(packageRoot);
  }
  addon.setErrorClasses({ BtrfsError, SendStreamError });
  return addon;
}

export const native: NativeBinding = loadBinding();

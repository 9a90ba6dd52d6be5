// The doctor's checks of the store's filesystem and of the kernel: VOLUMES_PATH
// and SNAPSHOTS_PATH on btrfs, both on the same btrfs (a snapshot is made in
// one filesystem: the kernel refuses another one with EXDEV), the free space
// against RECEIVE_RESERVE, openat2 (sync and receive resolve every path
// with it), and the quotas QUOTAS asks for. Nothing is created or changed.
import { closeSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname } from 'node:path';

import * as btrfs from '../../btrfs/index.js';
import type { Config } from '../../config.js';
import { reserveBytes } from '../../store/receive-reserve.js';
import { errCode } from '../../util/err-code.js';
import { realpath, stat, statfs } from '../../util/fs-async.js';
import { bytes, fail, ok, warn, why, type Finding } from './report.js';

const BTRFS_SUPER_MAGIC = 0x9123683e;
const DEFAULT_BASE = '/var/lib/buttervolume';

/** A mount of /proc/self/mountinfo. */
interface Mount {
  /** The superblock's device, `major:minor`: the same for every mount of one filesystem. */
  dev: string;
  mountPoint: string;
  fstype: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

function readMounts(): Mount[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(' ');
      const dash = fields.indexOf('-');
      return { dev: fields[2]!, mountPoint: unescape(fields[4]!), fstype: fields[dash + 1]!, source: unescape(fields[dash + 2] ?? '') };
    });
}

/** The mount `path` (absolute, symlinks resolved) is on: the longest mount point above it, the last mounted there. */
function mountOf(mounts: readonly Mount[], path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) {
    const under = m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    if (under && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/** What the doctor learnt of one store directory. */
export interface StorePath {
  variable: 'VOLUMES_PATH' | 'SNAPSHOTS_PATH';
  path: string;
  exists: boolean;
  /** The path, or its nearest existing parent, symlinks resolved. */
  existing: string;
  onBtrfs: boolean;
  mount: Mount | undefined;
}

async function nearestExisting(path: string): Promise<{ existing: string; exists: boolean }> {
  let p = path;
  for (;;) {
    try {
      return { existing: await realpath(p), exists: p === path };
    } catch (err) {
      if (errCode(err) !== 'ENOENT' || p === dirname(p)) throw err;
      p = dirname(p);
    }
  }
}

async function storePath(variable: StorePath['variable'], path: string, mounts: readonly Mount[]): Promise<{ info: StorePath | null; finding: Finding }> {
  const check = variable === 'VOLUMES_PATH' ? 'volumes-path' : 'snapshots-path';
  let found: { existing: string; exists: boolean };
  try {
    found = await nearestExisting(path);
    if (found.exists && !(await stat(path)).isDirectory()) return { info: null, finding: fail(check, `${variable} ${path} is not a directory`, `remove it, or set ${variable} to a directory on btrfs`) };
  } catch (err) {
    return { info: null, finding: fail(check, `${variable} ${path} cannot be looked at: ${why(err)}`, 'run buttervolume doctor as root') };
  }
  const onBtrfs = (await statfs(found.existing)).type === BTRFS_SUPER_MAGIC;
  const mount = mountOf(mounts, found.existing);
  const info: StorePath = { variable, path, ...found, onBtrfs, mount };
  const where = mount ? ` (${mount.source} on ${mount.mountPoint})` : '';
  if (!onBtrfs) {
    const fix = path.startsWith(`${DEFAULT_BASE}/`)
      ? `mount a btrfs filesystem on ${DEFAULT_BASE} (scripts/install.sh makes a loop-backed btrfs image there), or set ${variable} to a directory on btrfs`
      : `mount a btrfs filesystem on ${found.exists ? path : found.existing}, or set ${variable} to a directory on btrfs`;
    return { info, finding: fail(check, `${variable} ${path} is on ${mount?.fstype ?? 'a filesystem that is not btrfs'}${where}, not btrfs`, fix) };
  }
  return { info, finding: ok(check, found.exists ? `${variable} ${path} is on btrfs${where}` : `${variable} ${path} does not exist yet, ${found.existing} is on btrfs${where}: the daemon makes it at its start`) };
}

/** VOLUMES_PATH and SNAPSHOTS_PATH: on btrfs, on the same one, with room. */
export async function storeChecks(config: Config): Promise<{ findings: Finding[]; volumes: StorePath | null; snapshots: StorePath | null }> {
  let mounts: Mount[] = [];
  try {
    mounts = readMounts();
  } catch {
    // No /proc: the filesystems cannot be told apart (said below).
  }
  const v = await storePath('VOLUMES_PATH', config.volumesPath, mounts);
  const s = await storePath('SNAPSHOTS_PATH', config.snapshotsPath, mounts);
  const findings = [v.finding, s.finding];
  const volumes = v.info;
  const snapshots = s.info;
  if (volumes?.onBtrfs && snapshots?.onBtrfs) {
    if (!volumes.mount || !snapshots.mount) {
      findings.push(warn('same-filesystem', 'not checked: /proc/self/mountinfo cannot be read', 'run buttervolume doctor where /proc is mounted'));
    } else if (volumes.mount.dev !== snapshots.mount.dev) {
      findings.push(
        fail(
          'same-filesystem',
          `VOLUMES_PATH is on ${volumes.mount.source} (${volumes.mount.mountPoint}) and SNAPSHOTS_PATH on another btrfs, ${snapshots.mount.source} (${snapshots.mount.mountPoint}): no snapshot can be made (a snapshot stays in the filesystem of its volume)`,
          `put both on one btrfs filesystem, e.g. SNAPSHOTS_PATH=${volumes.mount.mountPoint === '/' ? '' : volumes.mount.mountPoint}/snapshots`,
        ),
      );
    } else {
      const mounted = volumes.mount.mountPoint === snapshots.mount.mountPoint ? '' : ` (mounted twice: ${volumes.mount.mountPoint}, ${snapshots.mount.mountPoint})`;
      findings.push(ok('same-filesystem', `VOLUMES_PATH and SNAPSHOTS_PATH are on the same btrfs, ${volumes.mount.source}${mounted}`));
    }
  }
  if (volumes?.onBtrfs) findings.push(await freeSpace(config, volumes));
  return { findings, volumes, snapshots };
}

async function freeSpace(config: Config, volumes: StorePath): Promise<Finding> {
  const fs = await statfs(volumes.existing);
  const free = fs.bavail * fs.bsize;
  const total = fs.blocks * fs.bsize;
  const reserve = await reserveBytes(volumes.existing, config.receiveReserve);
  const shown = 'bytes' in config.receiveReserve ? bytes(reserve) : `${config.receiveReserve.percent}%, ${bytes(reserve)}`;
  const said = `${bytes(free)} free of ${bytes(total)} on ${volumes.mount?.mountPoint ?? volumes.existing}`;
  if (free < reserve) {
    return warn(
      'free-space',
      `${said}, less than RECEIVE_RESERVE (${shown}): received snapshots are refused, and a full btrfs fails the writes of containers`,
      `delete snapshots (buttervolume purge, buttervolume rm) or volumes, or grow the filesystem (btrfs filesystem resize max, after growing its device or image)`,
    );
  }
  return ok('free-space', `${said} (RECEIVE_RESERVE ${shown})`);
}

/** Whether openat2 works here: every path of a sync and a receive is resolved with it. */
export async function openat2Check(): Promise<Finding> {
  try {
    closeSync(await btrfs.openBeneath('/', '', 'directory'));
    return ok('openat2', 'openat2 works (paths are resolved beneath the volume, no symlink followed)');
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOSYS' || code === 'EPERM') {
      return fail(
        'openat2',
        `openat2 fails with ${code}${code === 'ENOSYS' ? ' (Linux before 5.6)' : ' (refused by a seccomp filter?)'}: sync and receive refuse to work without it`,
        code === 'ENOSYS' ? 'a kernel of Linux 5.6 or later' : 'allow openat2 in the seccomp profile (Docker 20.10 and later allow it)',
      );
    }
    return warn('openat2', `the probe failed: ${why(err)}`, 'run buttervolume doctor as root');
  }
}

/** Linux `major.minor` of a release string (`6.18.44-foo`). */
export function kernelVersion(text: string = release()): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** QUOTAS against this kernel and the quotas on the volumes' filesystem. */
export async function quotaCheck(config: Config, volumes: StorePath | null): Promise<Finding> {
  const version = kernelVersion();
  const simple = version !== null && (version[0] > 6 || (version[0] === 6 && version[1] >= 7));
  const linux = `Linux ${release()}`;
  if (config.quotas === 'simple' && !simple) {
    return fail('quotas', `QUOTAS=simple, but ${linux} has no btrfs simple quotas (6.7 or later): the daemon refuses to start`, 'set QUOTAS=qgroup (full qgroups, slower with many snapshots) or QUOTAS=off, or run Linux 6.7 or later');
  }
  if (!volumes?.onBtrfs) return ok('quotas', `QUOTAS=${config.quotas}; ${linux} ${simple ? 'has' : 'has no'} simple quotas (filesystem not checked: not btrfs)`);
  let status: btrfs.QuotaStatus;
  try {
    status = await btrfs.quotaStatus(volumes.existing);
  } catch (err) {
    return warn('quotas', `the quotas of ${volumes.existing} cannot be read: ${why(err)}`, 'run buttervolume doctor as root');
  }
  const kind = (m: btrfs.QuotaMode) => (m === 'simple' ? 'simple quotas' : m === 'qgroup' ? 'full qgroups' : 'no quotas');
  if (config.quotas !== 'off' && status.mode !== 'off' && status.mode !== config.quotas) {
    return fail(
      'quotas',
      `QUOTAS=${config.quotas}, but the filesystem of VOLUMES_PATH has ${kind(status.mode)} on: the daemon refuses to start`,
      `set QUOTAS=${status.mode}, or turn them off first (btrfs quota disable ${volumes.existing}: every limit is lost)`,
    );
  }
  if (status.mode === 'qgroup' && status.inconsistent && !status.rescanning) {
    return warn('quotas', 'the full qgroups of the filesystem are inconsistent: usage and limits are not to be trusted', `btrfs quota rescan ${volumes.existing}`);
  }
  const on = status.mode === 'off' && config.quotas !== 'off' ? `, not on yet (the daemon turns them on at its start)` : `, the filesystem has ${kind(status.mode)}`;
  return ok('quotas', `QUOTAS=${config.quotas}${on}; ${linux} ${simple ? 'has' : 'has no'} simple quotas`);
}

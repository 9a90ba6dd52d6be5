// What one host's sync remembers of a peer's tree is bounded (SyncOptions
// limits, small here): past the bound for hard-link groups or for links
// waiting for the end, a hard link is fetched as a file of its own and
// counted (unlinked); past the bound for created directories, a directory
// keeps the time of its creation and is reported. The content is whole
// either way. In this process: the real SSH server and service on
// 127.0.0.1 serving TEST_REMOTE_PATH/<volume>, the real client and sync,
// on a real btrfs.
import { closeSync, linkSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { createLogger } from '../../src/log.js';
import { clientKey } from '../../src/replication/keys.js';
import { parsePeer } from '../../src/replication/peer.js';
import { startSshServer } from '../../src/replication/server.js';
import { ReplicationService } from '../../src/replication/service.js';
import { syncVolume, type HostSyncResult } from '../../src/replication/sync.js';
import type { SyncLimits } from '../../src/replication/sync-limits.js';
import { requireRoot } from '../fixtures/btrfs.js';
import { daemonConfig } from '../fixtures/daemon.js';
import { openStore } from '../fixtures/store.js';

requireRoot();

interface TeardownHost {
  teardown(fn: () => void | Promise<void>): void;
}

const T0 = 1_700_000_000_000_000_000n;

/** A store with volume `db`, its "remote" TEST_REMOTE_PATH/db, and a sync of it from this host's own SSH server. */
async function setup(t: TeardownHost) {
  const { mnt, store } = await openStore(t);
  const config = daemonConfig(mnt);
  const serverSsh = join(mnt, 'server-ssh');
  const clientSsh = join(mnt, 'client-ssh');
  mkdirSync(serverSsh, { recursive: true });
  const client = await clientKey(clientSsh);
  writeFileSync(join(serverSsh, 'authorized_keys'), `${client.publicLine} peer\n`);
  const logs: string[] = [];
  const logger = createLogger('DEBUG', (line) => logs.push(line));
  const server = await startSshServer({ port: 0, host: '127.0.0.1', sshPath: serverSsh, service: new ReplicationService(store, config, logger), logger });
  t.teardown(() => server.close());
  await store.create('db', { copyOnWrite: true, compression: null });
  const local = join(config.volumesPath, 'db');
  const remote = join(config.testRemotePath, 'db');
  mkdirSync(remote, { recursive: true });
  const peer = parsePeer(`127.0.0.1:${server.port}`, 1122);
  const sync = async (limits: Partial<SyncLimits>): Promise<HostSyncResult> => {
    const r = await syncVolume({ config, store, logger }, 'db', [peer], { sshPath: clientSsh, logger }, { test: true, limits });
    return r.hosts[0]!;
  };
  return { local, remote, sync, logs };
}

async function setMtime(dir: string, name: string, ns: bigint): Promise<void> {
  const fd = await btrfs.openBeneath(dir, '', 'directory');
  try {
    await btrfs.setTimesAt(fd, name, { mtime: ns });
  } finally {
    closeSync(fd);
  }
}

/** Names 1<x> and 2<x> of one inode per x: listed 1a 1b... before 2a 2b..., each group open until its second name. */
function interleavedLinks(remote: string, xs: string[]): void {
  for (const x of xs) {
    writeFileSync(join(remote, `1${x}`), `inode ${x}`);
    linkSync(join(remote, `1${x}`), join(remote, `2${x}`));
  }
}

const ino = (path: string): bigint => lstatSync(path, { bigint: true }).ino;

t.test('past the bound of hard-link groups, hard links are fetched as files of their own', async (t) => {
  const { local, remote, sync, logs } = await setup(t);
  interleavedLinks(remote, ['a', 'b', 'c']);
  const h = await sync({ linkGroups: 1 });
  // 1a opens the one group; 1b, 1c find no room; 2a closes it; 2b opens another (its 2c finds no room).
  t.match(h, { ok: true, copied: 5, linked: 1, unlinked: 3, skipped: 0 });
  t.equal(ino(join(local, '1a')), ino(join(local, '2a')), '1a and 2a: one file');
  t.not(ino(join(local, '1b')), ino(join(local, '2b')), '1b and 2b: two files');
  t.not(ino(join(local, '1c')), ino(join(local, '2c')));
  for (const x of ['a', 'b', 'c']) for (const n of [1, 2]) t.equal(readFileSync(join(local, `${n}${x}`), 'utf8'), `inode ${x}`, `${n}${x}: its content`);
  t.ok(logs.some((l) => /WARNING sync db from 127\.0\.0\.1:\d+: more linkGroups than the sync limits/.test(l)), 'a warning says so');
});

t.test('a group is forgotten after its last name: the bound is on the groups open at once', async (t) => {
  const { local, remote, sync } = await setup(t);
  for (const x of ['a', 'b', 'c']) {
    writeFileSync(join(remote, `${x}1`), `inode ${x}`);
    linkSync(join(remote, `${x}1`), join(remote, `${x}2`));
  }
  const h = await sync({ linkGroups: 1 });
  t.match(h, { ok: true, copied: 3, linked: 3, unlinked: 0 }, 'a1 a2, then b1 b2, then c1 c2: one group at a time, all linked');
  for (const x of ['a', 'b', 'c']) t.equal(ino(join(local, `${x}1`)), ino(join(local, `${x}2`)));
});

t.test('past the bound of links waiting for the end, a hard link is fetched as a file of its own', async (t) => {
  const { local, remote, sync } = await setup(t);
  writeFileSync(join(remote, 'a1'), 'inode a');
  for (const n of [2, 3, 4]) linkSync(join(remote, 'a1'), join(remote, `a${n}`));
  const h = await sync({ followers: 2 });
  t.match(h, { ok: true, copied: 2, linked: 2, unlinked: 1 });
  t.equal(ino(join(local, 'a1')), ino(join(local, 'a3')));
  t.not(ino(join(local, 'a1')), ino(join(local, 'a4')), 'the third link: a file of its own');
  t.equal(readFileSync(join(local, 'a4'), 'utf8'), 'inode a');
});

t.test('the bound of path bytes held applies to what is held together', async (t) => {
  const { local, remote, sync } = await setup(t);
  interleavedLinks(remote, ['a', 'b']);
  const h = await sync({ pathBytes: 3 });
  // 1a's group holds 2 bytes: no room for 1b's; 2a closes it and holds 2 as a link waiting: no room for 2b's group.
  t.match(h, { ok: true, copied: 3, linked: 1, unlinked: 2 });
  t.equal(ino(join(local, '1a')), ino(join(local, '2a')));
  t.not(ino(join(local, '1b')), ino(join(local, '2b')));
});

t.test('past the bound of created directories, a directory keeps the time of its creation', async (t) => {
  const { local, remote, sync } = await setup(t);
  const dirs = ['d1', 'd2', 'd3'];
  for (const d of dirs) {
    mkdirSync(join(remote, d));
    writeFileSync(join(remote, d, 'f'), d);
    await setMtime(remote, d, T0);
  }
  const h = await sync({ createdDirs: 2 });
  t.match(h, { ok: true, copied: 3, dirs: 3, skipped: 1 });
  // Directories are visited side by side: which one finds no room is not fixed.
  const [skip] = h.skips!;
  t.match(skip, { path: /^d[123]$/, reason: /created, its mtime not set: more directories created than the sync limits \(2\)/ });
  for (const d of dirs) {
    const mtime = lstatSync(join(local, d), { bigint: true }).mtimeNs;
    if (d === skip!.path) t.not(mtime, T0, `${d}: its mtime not set`);
    else t.equal(mtime, T0, `${d}: its mtime`);
    t.equal(readFileSync(join(local, d, 'f'), 'utf8'), d, `${d}: its content is synced`);
  }
});

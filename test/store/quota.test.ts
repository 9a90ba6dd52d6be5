// Size limits and usage in the store (QUOTAS, -o size=, resize), on real
// btrfs with btrfs-progs as the oracle: quotas turned on by the owner, a
// limit given at create and carried by clone (the source's), restore (the
// target's), from= and an ephemeral reset; Used; resize both ways; what
// deleting a snapshot frees; the refusals, each naming the setting; and a
// restore or a clone killed at each step never leaves a volume without its
// limit.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { packageRoot } from '../../src/btrfs/binding.js';
import { parseCreateOptions } from '../../src/store/create-options.js';
import { VolumeStore } from '../../src/store/volume-store.js';
import { openStore } from '../fixtures/store.js';
import { qgroupShow } from '../fixtures/quota-oracle.js';

const MiB = 1024 * 1024;
const EDQUOT = -122; // libuv has no name for it (code 'UNKNOWN')
const sized = (size: string, extra: Record<string, string> = {}) => parseCreateOptions({ size, ...extra });

function writeRandom(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  try {
    for (let done = 0; done < bytes; done += MiB) writeSync(fd, randomBytes(Math.min(MiB, bytes - done)));
  } finally {
    closeSync(fd);
  }
}

/** The errno of a write of `bytes` into `file` (null when it went in). */
function writeErrno(file: string, bytes: number): number | null {
  try {
    writeRandom(file, bytes);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).errno ?? null;
  }
}

/** The limit of volume `name` as btrfs-progs shows it. */
async function progsLimit(store: VolumeStore, mnt: string, name: string): Promise<number | null | undefined> {
  const id = (await btrfs.subvolumeInfo(join(store.layout.paths.volumesPath, name))).id;
  return qgroupShow(mnt).get(id)?.maxReferenced;
}

t.test('QUOTAS=off: size= and resize refused naming the setting, Get shows no usage', async (t) => {
  const { store } = await openStore(t);
  t.same(await store.quotas.prepare(), { setting: 'off', enabled: false, status: null });
  await t.rejects(store.create('v', sized('10G')), { code: 'ERR_QUOTAS_OFF', message: /^the option size= needs quotas, and QUOTAS is off: set QUOTAS=simple \(or qgroup\)/ });
  t.equal(await store.exists('v'), false, 'nothing created');
  await store.create('v', parseCreateOptions({}));
  const status = (await store.get('v')).status;
  t.notOk('used' in status || 'size' in status, 'no Used, no Size');
  await t.rejects(store.quotas.resize('v', 10 * MiB), { code: 'ERR_QUOTAS_OFF', message: /QUOTAS is off/ });
  t.equal((await btrfs.quotaStatus(store.layout.paths.volumesPath)).mode, 'off', 'quotas never turned on');
});

t.test('size= parsing: units, plain bytes, bounds, with readonly', async (t) => {
  t.equal(sized('10G').size, 10 * 1024 ** 3);
  t.equal(sized('512m').size, 512 * MiB);
  t.equal(sized('2T').size, 2 * 1024 ** 4);
  t.equal(sized('1048576').size, MiB);
  t.equal(sized('64MiB').size, 64 * MiB);
  t.equal(parseCreateOptions({}).size, undefined);
  for (const bad of ['10X', '1.5G', '-1G', '', 'ten', '10 G B']) t.throws(() => sized(bad), { code: 'ERR_INVALID_OPTION', message: /^Invalid option for size: .*Set a size from 1M to 8191T/ }, bad);
  t.throws(() => sized('1000K'), { code: 'ERR_INVALID_OPTION', message: /is too small/ });
  t.throws(() => sized('8192T'), { code: 'ERR_INVALID_OPTION', message: /is too large/ });
  t.throws(() => sized('99999999999999999999'), { code: 'ERR_INVALID_OPTION', message: /is too large/ });
  t.throws(() => sized('1G', { from: 'v@2024-01-01T00:00:00.000000', readonly: 'true' }), { code: 'ERR_INVALID_OPTION', message: /size does not go with readonly=true/ });
});

t.test('QUOTAS=simple: limits at create, Used, resize, clone, restore, from=, ephemeral', async (t) => {
  const { store, mnt, options } = await openStore(t, { quotas: 'simple' });
  const vols = options.volumesPath;
  const cli = await VolumeStore.open(options); // another process's view (the CLI)
  await t.rejects(cli.quotas.resize('none', MiB), { code: 'ERR_QUOTAS_NOT_ON', message: /start the daemon \(buttervolume run\) with QUOTAS=simple/ }, 'before the daemon turned them on');
  const prepared = await store.quotas.prepare();
  t.equal(prepared.enabled, true);
  t.equal(prepared.status?.mode, 'simple');
  t.equal((await store.quotas.prepare()).enabled, false, 'on already: nothing to do');

  await store.create('small', sized('32M'));
  await store.create('plain', parseCreateOptions({}));
  t.equal(await progsLimit(store, mnt, 'small'), 32 * MiB, 'created with its limit (btrfs qgroup show)');
  t.equal(await progsLimit(store, mnt, 'plain'), null);
  t.match((await store.get('small')).status, { size: 32 * MiB }, 'Get: Size');
  t.ok((await store.get('small')).status.used! < MiB, 'Get: Used near 0');
  t.equal((await store.get('plain')).status.size, null);
  t.same(await store.create('small', sized('1G')), { created: false }, 'an existing volume keeps its limit (Create is idempotent)');
  t.equal(await progsLimit(store, mnt, 'small'), 32 * MiB);

  // Enforced, and Used within 1% of what was written.
  writeRandom(join(vols, 'small', 'a'), 20 * MiB);
  t.equal(writeErrno(join(vols, 'small', 'b'), 20 * MiB), EDQUOT, 'past the limit: EDQUOT');
  writeRandom(join(vols, 'plain', 'big'), 40 * MiB);
  const used = (await store.get('plain')).status.used!;
  t.ok(Math.abs(used - 40 * MiB) <= 0.01 * 40 * MiB, `Used ${used} within 1% of the 40 MiB written (no commit asked: Get commits)`);

  // Resize.
  const before = (await store.get('small')).status.used!;
  await t.rejects(store.quotas.resize('small', 8 * MiB), { code: 'ERR_SIZE_BELOW_USAGE', message: /^small: cannot limit it to 8M, it already uses/ });
  t.equal(await progsLimit(store, mnt, 'small'), 32 * MiB, 'refused: unchanged');
  t.same(await store.quotas.resize('small', 8 * MiB, { force: true }), { size: 8 * MiB, used: before }, 'with force');
  t.equal(writeErrno(join(vols, 'small', 'c'), MiB), EDQUOT, 'below the usage: writes fail');
  t.match(await cli.quotas.resize('small', 64 * MiB), { size: 64 * MiB }, 'from another process (the CLI), larger');
  t.equal(writeErrno(join(vols, 'small', 'c'), 20 * MiB), null, 'writes go in again');
  t.same((await store.quotas.resize('plain', null)).size, null, 'none: no limit');
  await t.rejects(store.quotas.resize('missing', MiB), { code: 'ERR_VOLUME_NOT_FOUND' });
  await t.rejects(store.quotas.resize('small', 5), { code: 'ERR_INVALID_SIZE' });

  // Clone: the source's limit.
  await store.clone('small', 'copy');
  t.equal(await progsLimit(store, mnt, 'copy'), 64 * MiB, "a clone has its source's limit");
  t.equal(writeErrno(join(vols, 'copy', 'more'), 80 * MiB), EDQUOT, 'enforced in the clone');
  await store.clone('plain', 'copy-plain');
  t.equal(await progsLimit(store, mnt, 'copy-plain'), null);

  // Restore: the target's limit, also from another volume's snapshot; a new target: none.
  const snapPlain = await store.snapshot('plain');
  const snapSmall = await store.snapshot('small');
  await store.quotas.resize('small', 100 * MiB);
  await store.restore(snapSmall);
  t.equal(await progsLimit(store, mnt, 'small'), 100 * MiB, 'restored in place: its limit stays (the one it had at the restore)');
  await store.restore(snapPlain, 'small');
  t.equal(await progsLimit(store, mnt, 'small'), 100 * MiB, "another volume's snapshot restored into it: its own limit still");
  await store.restore(snapSmall, 'fresh');
  t.equal(await progsLimit(store, mnt, 'fresh'), null, 'restored into a new volume: none');
  t.equal((await store.get('small')).status.size, 100 * MiB);

  // from=: a volume's limit, or size=.
  await store.create('from-vol', parseCreateOptions({ from: 'small' }));
  t.equal(await progsLimit(store, mnt, 'from-vol'), 100 * MiB, 'from a volume: its limit, as clone');
  await store.create('from-snap', parseCreateOptions({ from: snapSmall, size: '16M' }));
  t.equal(await progsLimit(store, mnt, 'from-snap'), 16 * MiB, 'from a snapshot with size=');
  await store.create('from-snap-plain', parseCreateOptions({ from: snapSmall }));
  t.equal(await progsLimit(store, mnt, 'from-snap-plain'), null, 'from a snapshot: none');
  await store.create('eph', parseCreateOptions({ from: snapPlain, ephemeral: 'true', size: '48M' }));
  const ephId = (await btrfs.subvolumeInfo(join(vols, 'eph'))).id;
  await store.mount('eph', 'run1');
  t.not((await btrfs.subvolumeInfo(join(vols, 'eph'))).id, ephId, 'the first mount reset it (a new subvolume)');
  t.equal(await progsLimit(store, mnt, 'eph'), 48 * MiB, 'and it kept its limit');
  await store.unmount('eph', 'run1');

  // Reopened (a daemon restart): the limits are the kernel's, nothing to reload.
  store.close();
  const again = await VolumeStore.open(options, { recover: true, owner: true });
  t.teardown(() => again.close());
  t.equal((await again.get('small')).status.size, 100 * MiB);
  t.equal((await again.get('copy')).status.size, 64 * MiB);
});

t.test('a received snapshot has no limit; a restore from it gets the target\'s', async (t) => {
  const { store, options, mnt } = await openStore(t, { quotas: 'simple' });
  await store.quotas.prepare();
  await store.create('v', sized('64M'));
  writeRandom(join(options.volumesPath, 'v', 'f'), 4 * MiB);
  const snap = await store.snapshot('v');
  // Another store on the same filesystem: a peer's, receiving what this one sends.
  const peerDirs = { volumesPath: join(mnt, 'peer-volumes'), snapshotsPath: join(mnt, 'peer-snapshots'), stateDir: join(mnt, 'peer-state') };
  const peer = await VolumeStore.open({ ...options, ...peerDirs, testRemotePath: join(mnt, 'peer-received') }, { owner: true });
  t.teardown(() => peer.close());
  await peer.create('v', sized('8M'));
  await peer.receiveSnapshot('v', snap, await store.snapshotStream('v', snap, null));
  const received = join(peerDirs.snapshotsPath, snap);
  t.equal((await btrfs.qgroupOf(received))?.maxReferenced, null, 'the received snapshot: no limit (it never grows)');
  await peer.restore(snap);
  t.equal((await peer.get('v')).status.size, 8 * MiB, "restored from it: the target's limit");
  t.equal((await store.get('v')).status.size, 64 * MiB);
});

t.test('snapshotSizes: what deleting each snapshot frees, markers left out', async (t) => {
  for (const quotas of ['simple', 'qgroup', 'off'] as const) {
    await t.test(`QUOTAS=${quotas}`, async (t) => {
      const { store, options } = await openStore(t, { quotas });
      await store.quotas.prepare();
      await store.create('v', parseCreateOptions({}));
      await store.create('w', parseCreateOptions({}));
      const v = join(options.volumesPath, 'v');
      writeRandom(join(v, 'a'), 8 * MiB);
      writeRandom(join(v, 'b'), 4 * MiB);
      const s1 = await store.snapshot('v');
      writeRandom(join(v, 'a'), 8 * MiB); // s1 alone keeps the old a
      const s2 = await store.snapshot('v');
      const w1 = await store.snapshot('w');
      await store.markSent(s2, 'node2');
      const sizes = await store.quotas.snapshotSizes('v');
      t.same(sizes.map((s) => s.name), [s1, s2], 'the read-only snapshots of v in order, no marker');
      const source = quotas === 'qgroup' ? 'qgroup' : 'extents';
      t.ok(sizes.every((s) => s.source === source), `from ${source}`);
      t.ok(Math.abs(sizes[0]!.exclusive - 8 * MiB) < 0.02 * 8 * MiB, `s1 frees the old 8 MiB (${sizes[0]!.exclusive})`);
      t.ok(sizes[1]!.exclusive < MiB, `s2 shares all with v (${sizes[1]!.exclusive})`);
      t.same((await store.quotas.snapshotSizes()).map((s) => s.name), [s1, s2, w1], 'without a volume: all');
      t.same(await store.quotas.snapshotSizes('none'), []);
    });
  }
});

t.test('QUOTAS=qgroup: full qgroups, limits carried the same way', async (t) => {
  const { store, mnt } = await openStore(t, { quotas: 'qgroup' });
  t.equal((await store.quotas.prepare()).status?.mode, 'qgroup');
  await store.create('v', sized('40M'));
  await store.create('w', sized('80M'));
  const sw = await store.snapshot('w');
  await store.restore(sw, 'v');
  t.equal(await progsLimit(store, mnt, 'v'), 40 * MiB, "restore: the target's, not the one the kernel copies from the snapshot");
  await store.restore(sw, 'new');
  t.equal(await progsLimit(store, mnt, 'new'), null, 'a new target: none (not the snapshot source\'s)');
  await store.clone('w', 'w2');
  t.equal(await progsLimit(store, mnt, 'w2'), 80 * MiB);
  writeRandom(join(store.layout.paths.volumesPath, 'w2', 'f'), 20 * MiB);
  const used = (await store.get('w2')).status.used!;
  t.ok(used >= 20 * MiB, `full qgroups: Used counts what the clone references (${used})`);
});

t.test('the other kind already on: refused naming QUOTAS', async (t) => {
  const { store, options } = await openStore(t, { quotas: 'simple' });
  await btrfs.enableQuotas(options.volumesPath, 'qgroup');
  await t.rejects(store.quotas.prepare(), {
    code: 'ERR_QUOTAS_MISMATCH',
    message: `QUOTAS=simple, but the filesystem of VOLUMES_PATH ${options.volumesPath} has full qgroups on: set QUOTAS=qgroup, or turn them off first (btrfs quota disable ${options.volumesPath}: every limit is lost)`,
  });
  await t.rejects(store.create('v', sized('1G')), { code: 'ERR_QUOTAS_MISMATCH' });
});

// A restore (and a clone) in its own process, killed at each of its steps
// (strace's fault injection, as restore-crash.test.ts): after the restart's
// recovery the volume has its limit, whatever data it holds.
const script = `
const { VolumeStore } = await import(process.env.BV_DIST + '/store/volume-store.js');
const store = await VolumeStore.open(JSON.parse(process.argv[1]));
if (process.argv[2] === 'clone') await store.clone('v', 'c');
else await store.restore(process.argv[2]);
`;
const straceArgs = (dirs: string[]) => ['-f', '-qq', ...dirs.flatMap((d) => ['-P', d]), '-e', 'trace=ioctl,renameat2'];

t.test('killed at each step of a restore or a clone: no volume without its limit', async (t) => {
  const { store, options, mnt } = await openStore(t, { quotas: 'simple' });
  await store.quotas.prepare();
  await store.create('v', sized('24M'));
  const vol = join(options.volumesPath, 'v');
  writeRandom(join(vol, 'data'), MiB);
  const snapshot = await store.snapshot('v');
  const env = { ...process.env, UV_THREADPOOL_SIZE: '1', BV_DIST: join(packageRoot, 'dist') };
  const dirs = [options.volumesPath, options.snapshotsPath, vol];
  const log = join(options.stateDir, 'trace.log');
  const seen = new Set<string>(); // which content v held after a killed restore: both must occur
  for (const what of [snapshot, 'clone']) {
    execFileSync('strace', [...straceArgs(dirs), '-o', log, process.execPath, '--input-type=module', '-e', script, JSON.stringify(options), what], { env });
    const calls = readFileSync(log, 'utf8').split('\n').filter((l) => /\b(ioctl|renameat2)\(/.test(l));
    if (what === 'clone') await btrfs.deleteSubvolume(join(options.volumesPath, 'c'));
    for (const syscall of ['ioctl', 'renameat2'] as const) {
      const count = calls.filter((l) => l.replace(/^\d+\s+/, '').startsWith(syscall)).length;
      for (let when = 1; when <= count; when++) {
        writeFileSync(join(vol, 'marker'), 'not in the snapshot');
        const run = spawnSync('strace', [...straceArgs(dirs), '-o', '/dev/null', '-e', `inject=${syscall}:signal=SIGKILL:when=${when}`, process.execPath, '--input-type=module', '-e', script, JSON.stringify(options), what], { env, encoding: 'utf8' });
        const killed = run.signal === 'SIGKILL' || run.status === 137;
        const restarted = await VolumeStore.open({ ...options, quotas: 'simple' }, { recover: true });
        const content = existsSync(join(vol, 'marker')) ? 'old' : 'restored';
        if (what !== 'clone') seen.add(content);
        t.equal(await progsLimit(restarted, mnt, 'v'), 24 * MiB, `${what === 'clone' ? 'clone' : `restore (${content} content)`}, ${killed ? 'killed' : 'not killed'} at ${syscall} #${when}: v keeps its limit`);
        if (what === 'clone' && (await restarted.exists('c'))) {
          t.equal(await progsLimit(restarted, mnt, 'c'), 24 * MiB, '  the clone exists with its limit');
          await btrfs.deleteSubvolume(join(options.volumesPath, 'c'));
        }
        for (const s of await restarted.snapshots('v')) if (s !== snapshot) await restarted.removeSnapshot(s);
      }
    }
  }
  t.same([...seen].sort(), ['old', 'restored'], 'restores were killed before and after the swap');
});

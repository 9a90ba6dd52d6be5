// snapshot, snapshots, restore, clone and rm from the command line, on real
// btrfs: the original's output byte for byte, --json, and every error path
// with its message and exit status.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { BIN, cliFixture, hasStack, snapshotRe } from './fixtures/cli.js';

const read = (...parts: string[]) => readFileSync(join(...parts, 'data'), 'utf8');

t.test('snapshot prints <volume>@<date> and takes a read-only snapshot', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db', 'one');
  const before = Date.now();
  const r = await f.bv(['snapshot', 'db']);
  t.same([r.code, r.stderr], [0, '']);
  t.match(r.stdout, /\n$/);
  const name = r.stdout.slice(0, -1);
  t.match(name, snapshotRe('db'), 'the original format, one line');
  // The date is local time (DTFORMAT %Y-%m-%dT%H:%M:%S.%f), taken during the call.
  const [date, time] = name.slice(3).split('T') as [string, string];
  const local = new Date(`${date}T${time.slice(0, 12)}`).getTime();
  t.ok(local >= before - 1000 && local <= Date.now() + 1000, 'local time of the call');
  t.equal(read(f.config.snapshotsPath, name), 'one');
  t.equal(await btrfs.getReadonly(join(f.config.snapshotsPath, name)), true);

  const json = await f.bv(['snapshot', 'db', '--json']);
  t.equal(json.code, 0);
  const doc = JSON.parse(json.stdout);
  t.same(Object.keys(doc), ['volume', 'snapshot']);
  t.equal(doc.volume, 'db');
  t.match(doc.snapshot, snapshotRe('db'));
  t.equal(json.stdout.split('\n').length, 2, 'one JSON document on one line');
  t.ok(existsSync(join(f.config.snapshotsPath, doc.snapshot)));
});

t.test('snapshot errors', async (t) => {
  const f = await cliFixture(t);
  let r = await f.bv(['snapshot', 'db']);
  t.same([r.code, r.stdout, r.stderr], [1, '', 'buttervolume: snapshot: no such volume: db\n']);
  r = await f.bv(['snapshot', 'a@b']);
  t.same([r.code, r.stderr], [1, 'buttervolume: snapshot: volume name "a@b" contains "@", which separates a volume from its snapshot date\n']);
  r = await f.bv(['snapshot', '../etc']);
  t.same([r.code, r.stderr], [1, 'buttervolume: snapshot: volume name "../etc" contains "/"\n']);
  t.same(readdirSync(f.config.snapshotsPath), [], 'nothing created');

  // Not on btrfs: a directory of the root filesystem (ext4 here).
  const plain = mkdtempSync(join(tmpdir(), 'bv-cli-notbtrfs-'));
  t.teardown(() => rmSync(plain, { recursive: true, force: true }));
  const volumes = join(plain, 'volumes');
  r = await f.bv(['snapshot', 'db'], { BUTTERVOLUME_VOLUMES_PATH: volumes });
  t.same([r.code, r.stdout, r.stderr], [1, '', `buttervolume: snapshot: not a btrfs filesystem: ${volumes}\n`]);
  t.notOk(hasStack(r.stderr));

  // A path that cannot be created: the system error, one line.
  writeFileSync(join(plain, 'file'), '');
  r = await f.bv(['snapshots'], { BUTTERVOLUME_SNAPSHOTS_PATH: join(plain, 'file', 'snapshots') });
  t.equal(r.code, 1);
  t.match(r.stderr, /^buttervolume: snapshots: ENOTDIR: not a directory, statfs '.*\/file\/snapshots'\n$/);
});

t.test('snapshots: one name per line, oldest first; every snapshot without a volume', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  await f.volume('web');
  const names: string[] = [];
  for (const v of ['db', 'web', 'db']) names.push((await f.bv(['snapshot', v])).stdout.trim());
  const db = names.filter((n) => n.startsWith('db@'));
  let r = await f.bv(['snapshots', 'db']);
  t.same([r.code, r.stdout, r.stderr], [0, `${db.join('\n')}\n`, '']);
  r = await f.bv(['snapshots']);
  t.same([r.code, r.stdout], [0, `${[...names].sort().join('\n')}\n`], 'all of them (the original printed nothing)');
  r = await f.bv(['snapshots', 'nothing']);
  t.same([r.code, r.stdout, r.stderr], [0, '', ''], 'none: no output, success');
  r = await f.bv(['snapshots', 'db', '--json']);
  t.same(JSON.parse(r.stdout), { volume: 'db', snapshots: db });
  r = await f.bv(['snapshots', '--json']);
  t.same(JSON.parse(r.stdout), { volume: null, snapshots: [...names].sort() });
  r = await f.bv(['snapshots', 'd/b']);
  t.same([r.code, r.stderr], [1, 'buttervolume: snapshots: volume name "d/b" contains "/"\n']);
});

t.test('restore prints the backup snapshot; the volume gets the snapshot back', async (t) => {
  const f = await cliFixture(t);
  const path = await f.volume('db', 'first');
  const snap = (await f.bv(['snapshot', 'db'])).stdout.trim();
  writeFileSync(join(path, 'data'), 'second');

  let r = await f.bv(['restore', snap]);
  t.same([r.code, r.stderr], [0, '']);
  const backup = r.stdout.slice(0, -1);
  t.match(r.stdout, /\n$/);
  t.match(backup, snapshotRe('db'));
  t.equal(read(path), 'first', 'restored');
  t.equal(read(f.config.snapshotsPath, backup), 'second', 'the backup holds what the volume held');

  r = await f.bv(['restore', snap, 'copy']);
  t.same([r.code, r.stdout, r.stderr], [0, '', ''], 'onto a new volume: no backup, nothing printed');
  t.equal(read(f.config.volumesPath, 'copy'), 'first');

  r = await f.bv(['restore', 'db', '--json']);
  t.equal(r.code, 0);
  const doc = JSON.parse(r.stdout);
  t.same(Object.keys(doc), ['snapshot', 'volume', 'backup']);
  t.same([doc.snapshot, doc.volume], [backup, 'db'], 'a volume name means its newest snapshot');
  t.match(doc.backup, snapshotRe('db'));
  t.equal(read(path), 'second');

  r = await f.bv(['restore', snap, 'copy', '--json']);
  t.match(JSON.parse(r.stdout), { snapshot: snap, volume: 'copy', backup: snapshotRe('copy') });
  r = await f.bv(['restore', snap, 'fresh', '--json']);
  t.same(JSON.parse(r.stdout), { snapshot: snap, volume: 'fresh', backup: null });
});

t.test('restore errors', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  let r = await f.bv(['restore', 'db']);
  t.same([r.code, r.stdout, r.stderr], [1, '', 'buttervolume: restore: db: no snapshot to restore\n'], 'not a silent success as in the original');
  r = await f.bv(['restore', 'db@2020-01-01T00:00:00.000000']);
  t.same([r.code, r.stderr], [1, 'buttervolume: restore: no such snapshot: db@2020-01-01T00:00:00.000000\n']);
  r = await f.bv(['restore', 'db@x/y']);
  t.same([r.code, r.stderr], [1, 'buttervolume: restore: snapshot name "db@x/y" contains "/"\n']);
  const snap = (await f.bv(['snapshot', 'db'])).stdout.trim();
  r = await f.bv(['restore', snap, 'bad@target']);
  t.same([r.code, r.stderr], [1, 'buttervolume: restore: volume name "bad@target" contains "@", which separates a volume from its snapshot date\n']);

  // In use: a container has it mounted (recorded by the daemon in the shared mount table).
  const daemon = await f.owner();
  await daemon.mount('db', 'container-1');
  r = await f.bv(['restore', snap]);
  t.same([r.code, r.stderr], [1, 'buttervolume: restore: db: cannot restore a volume in use (mounted 1 time); stop its containers first\n']);
  t.same(await f.store.snapshots('db'), [snap], 'no backup taken');
  await daemon.unmount('db', 'container-1');
  r = await f.bv(['restore', snap]);
  t.equal(r.code, 0, 'unmounted: restored');
});

t.test('clone prints the new volume; errors', async (t) => {
  const f = await cliFixture(t);
  const path = await f.volume('db', 'content');
  let r = await f.bv(['clone', 'db', 'db-test']);
  t.same([r.code, r.stdout, r.stderr], [0, 'db-test\n', '']);
  t.equal(read(f.config.volumesPath, 'db-test'), 'content');
  writeFileSync(join(f.config.volumesPath, 'db-test', 'data'), 'changed');
  t.equal(read(path), 'content', 'a copy, not the same volume');
  r = await f.bv(['clone', 'db', 'db-json', '--json']);
  t.same([r.code, JSON.parse(r.stdout)], [0, { source: 'db', volume: 'db-json' }]);

  r = await f.bv(['clone', 'db', 'db-test']);
  t.same([r.code, r.stdout, r.stderr], [1, '', 'buttervolume: clone: db-test: volume already exists\n']);
  r = await f.bv(['clone', 'nope', 'other']);
  t.same([r.code, r.stderr], [1, 'buttervolume: clone: no such volume: nope\n']);
  t.notOk(existsSync(join(f.config.volumesPath, 'other')));
  r = await f.bv(['clone', 'db', '.hidden']);
  t.same([r.code, r.stderr], [1, 'buttervolume: clone: volume name ".hidden" must start with a letter or a digit\n']);
});

t.test('rm deletes a snapshot and prints nothing; errors', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  const snap = (await f.bv(['snapshot', 'db'])).stdout.trim();
  let r = await f.bv(['rm', snap]);
  t.same([r.code, r.stdout, r.stderr], [0, '', '']);
  t.notOk(existsSync(join(f.config.snapshotsPath, snap)));
  r = await f.bv(['rm', snap]);
  t.same([r.code, r.stdout, r.stderr], [1, '', `buttervolume: rm: no such snapshot: ${snap}\n`]);
  r = await f.bv(['rm', 'db']);
  t.same([r.code, r.stderr], [1, 'buttervolume: rm: snapshot name "db" has no "@" (expected <volume>@<date>)\n'], 'a volume is not removed by rm');
  t.ok(await f.store.exists('db'));
});

t.test('a reader that stops early (| head -1) is not an error: exit 0, nothing on stderr', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  await f.store.snapshot('db');
  const child = spawn(process.execPath, [BIN, 'snapshots'], { env: { PATH: process.env.PATH!, ...f.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // closed before the CLI writes: its write fails with EPIPE
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const [code] = (await once(child, 'close')) as [number | null];
  t.same([code, stderr], [0, '']);
});

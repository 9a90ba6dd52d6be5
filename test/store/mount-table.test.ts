// The mount table: one owner that orders every change, readers that never
// race it, failed writes that count nothing, and damage that is never read
// as "nothing is mounted".
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import { VolumeStore } from '../../src/store/volume-store.js';
import { openStore } from '../fixtures/store.js';

const cow = { copyOnWrite: true, compression: null } as const;
const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

function capture(): { lines: string[]; logger: { warning(m: string): void; error(m: string): void } } {
  const lines: string[] = [];
  return { lines, logger: { warning: (m) => lines.push(`WARNING ${m}`), error: (m) => lines.push(`ERROR ${m}`) } };
}

t.test('concurrent mounts, unmounts and reads: every change counted exactly once', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v', cow);
  const reader = await VolumeStore.open(options);
  const ids = Array.from({ length: 40 }, (_, i) => `id-${i}`);
  // Mounts and reads interleaved: reads (Get, the CLI's file reads) must not lose any change.
  await Promise.all(ids.flatMap((id) => [store.mount('v', id), store.get('v'), reader.mountCount('v'), store.mount('v', id)]));
  t.equal(await store.mountCount('v'), 80);
  t.equal(await reader.mountCount('v'), 80, 'what a reader sees on disk');
  await Promise.all(ids.flatMap((id) => [store.unmount('v', id), store.get('v'), reader.mountCount('v')]));
  t.equal(await store.mountCount('v'), 40);
  await Promise.all(ids.map((id) => store.unmount('v', id)));
  t.equal(await store.mountCount('v'), 0);
  t.equal(await reader.mountCount('v'), 0);
  await store.remove('v');
});

t.test('only the owner records mounts; a second owner of the same store is refused', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v', cow);
  const reader = await VolumeStore.open(options);
  await t.rejects(reader.mount('v', 'x'), { code: 'ERR_NOT_OWNER' });
  await t.rejects(VolumeStore.open(options, { owner: true }), {
    code: 'ERR_STORE_IN_USE',
    message: /^another buttervolume daemon already serves the volumes in .*\/volumes \(it holds .*owner\.lock\): stop it first$/,
  });
  store.close();
  const next = await VolumeStore.open(options, { owner: true });
  t.teardown(() => next.close());
  await next.mount('v', 'x');
  t.equal(await reader.mountCount('v'), 1);
});

t.test('a Mount whose write fails is answered with the error and counts nothing', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v', cow);
  await store.mount('v', 'a');
  mkdirSync(join(options.stateDir, 'locks'), { recursive: true });
  // The table's directory refuses new files: the atomic write cannot happen.
  execFileSync('chattr', ['+i', options.stateDir]);
  t.teardown(() => execFileSync('chattr', ['-i', options.stateDir]));
  await t.rejects(store.mount('v', 'b'), { code: 'EPERM' });
  await t.rejects(store.unmount('v', 'a'), { code: 'EPERM' });
  t.equal(await store.mountCount('v'), 1, 'neither the failed mount nor the failed unmount changed the count');
  execFileSync('chattr', ['-i', options.stateDir]);
  await store.mount('v', 'b');
  t.equal(await store.mountCount('v'), 2);
  const reader = await VolumeStore.open(options);
  t.equal(await reader.mountCount('v'), 2);
});

const damaged: Array<[string, string, string[]]> = [
  ['truncated', `{"version":2,"bootId":"${bootId}","mounts":{"v":{"a":1`, ['v', 'w']],
  ['garbage', '\u0000\u0001not json at all', ['v', 'w']],
  ['null', 'null', ['v', 'w']],
  ['no mounts', `{"bootId":"${bootId}"}`, ['v', 'w']],
  ['a negative count', `{"bootId":"${bootId}","mounts":{"v":{"a":-1}}}`, ['v']],
  ['a string count', `{"bootId":"${bootId}","mounts":{"v":{"a":"2"}}}`, ['v']],
  ['a fractional count', `{"bootId":"${bootId}","mounts":{"v":{"a":1.5}}}`, ['v']],
  ['ids not an object', `{"bootId":"${bootId}","mounts":{"v":[1]}}`, ['v']],
  ['a bad unknown list', `{"bootId":"${bootId}","mounts":{},"unknown":7}`, ['v', 'w']],
];

for (const [what, text, unknown] of damaged) {
  t.test(`a damaged mount table (${what}) is never read as "not mounted"`, async (t) => {
    const { store: first, options } = await openStore(t);
    await first.create('v', cow);
    await first.create('w', cow);
    const snapV = await first.snapshot('v');
    const snapW = await first.snapshot('w');
    first.close();
    const file = join(options.stateDir, 'mounts.json');
    writeFileSync(file, text);
    const { lines, logger } = capture();
    const store = await VolumeStore.open(options, { owner: true, logger });
    t.teardown(() => store.close());
    t.match(lines.join('\n'), /^ERROR mount table .*mounts\.json.*unknown.*; restore and remove of such volumes are refused meanwhile/m, 'logged at ERROR');
    const reader = await VolumeStore.open(options);
    for (const [name, snap] of [['v', snapV], ['w', snapW]] as const) {
      const refused = unknown.includes(name);
      for (const s of [store, reader]) {
        if (refused) {
          await t.rejects(s.restore(snap), { code: 'ERR_VOLUME_STATE_UNKNOWN', message: new RegExp(`^${name}: cannot restore it: whether it is mounted is unknown`) });
          await t.rejects(s.remove(name), { code: 'ERR_VOLUME_STATE_UNKNOWN' });
          t.equal((await s.get(name)).status.mountsUnknown, true);
        }
      }
      if (!refused) t.equal((await store.get(name)).status.mountsUnknown, undefined);
    }
    // Mounts are still counted on top of what is unknown, and the daemon restarts into the same state.
    await store.mount('v', 'z');
    t.equal(await store.mountCount('v'), 1);
    store.close();
    const again = await VolumeStore.open(options, { owner: true });
    t.teardown(() => again.close());
    await t.rejects(again.restore(snapV), { code: 'ERR_VOLUME_STATE_UNKNOWN' }, 'still unknown after a daemon restart');
    // A reboot (another boot id) clears it.
    again.close();
    const rebooted = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...rebooted, bootId: 'another-boot' }));
    const afterReboot = await VolumeStore.open(options, { owner: true });
    t.teardown(() => afterReboot.close());
    t.equal(await afterReboot.mountCount('v'), 0);
    await afterReboot.restore(snapV);
    await afterReboot.remove('w');
  });
}

t.test('a failed creation of the lock directory is not remembered', async (t) => {
  const { store, options } = await openStore(t);
  const locks = join(options.stateDir, 'locks');
  rmSync(locks, { recursive: true, force: true });
  writeFileSync(locks, 'in the way');
  await t.rejects(store.create('v', cow), { code: 'EEXIST' });
  rmSync(locks);
  t.same(await store.create('v', cow), { created: true }, 'the next request succeeds once the cause is gone');
});

t.test('volume names: the real limit, from every name the store derives', async (t) => {
  const { store } = await openStore(t);
  const max = 'a'.repeat(163);
  await store.create(max, cow);
  const snap = await store.snapshot(max);
  t.equal(Buffer.byteLength(`${snap}@${'h'.repeat(64)}`), 255, 'a send marker for a 64-byte host fits exactly');
  await store.clone(max, `b${'a'.repeat(162)}`);
  await store.restore(snap, `c${'a'.repeat(162)}`);
  for (const len of [164, 229, 232, 251, 255]) {
    const name = 'x'.repeat(len);
    const message = new RegExp(`^volume name "x+…" is ${len} bytes long, the limit is 163 \\(its snapshot and send marker names must fit in 255 bytes\\)$`);
    await t.rejects(store.create(name, cow), { code: 'ERR_INVALID_VOLUME_NAME', message }, `create ${len}`);
    await t.rejects(store.clone(max, name), { code: 'ERR_INVALID_VOLUME_NAME', message }, `clone to ${len}`);
    await t.rejects(store.restore(snap, name), { code: 'ERR_INVALID_VOLUME_NAME', message }, `restore to ${len}`);
  }
  const shortFormat = await openStore(t, { dtFormat: '%Y%m%d%H%M%S' });
  await shortFormat.store.create('a'.repeat(175), cow);
  await t.rejects(shortFormat.store.create('a'.repeat(176), cow), { message: /the limit is 175/ }, 'the limit follows DTFORMAT');
});

t.test('two snapshots within one DTFORMAT tick: the second waits for the next name', async (t) => {
  const { store } = await openStore(t, { dtFormat: '%Y%m%d%H%M%S' });
  await store.create('v', cow);
  const a = await store.snapshot('v');
  const b = await store.snapshot('v');
  t.not(a, b);
});

t.test('a damaged mount table last written before this boot (a power loss cut the write) is read as empty', async (t) => {
  const { store: first, options } = await openStore(t);
  await first.create('v', cow);
  const snap = await first.snapshot('v');
  first.close();
  const file = join(options.stateDir, 'mounts.json');
  for (const text of ['', '\u0000\u0000\u0000', `{"version":2,"bootId":"${bootId}","mou`]) {
    writeFileSync(file, text);
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))![1]);
    utimesSync(file, btime - 60, btime - 60);
    const { lines, logger } = capture();
    const store = await VolumeStore.open(options, { owner: true, logger });
    t.same(lines, [], `${JSON.stringify(text)}: nothing reported`);
    t.equal((await store.get('v')).status.mountsUnknown, undefined, 'not unknown');
    await store.restore(snap);
    store.close();
  }
  // The same damage written during this boot is still unknown (see above).
  writeFileSync(file, '');
  const { lines, logger } = capture();
  const store = await VolumeStore.open(options, { owner: true, logger });
  t.teardown(() => store.close());
  t.match(lines.join('\n'), /^ERROR mount table/m);
  t.equal((await store.get('v')).status.mountsUnknown, true);
});

t.test('the daemon start removes what a write of the table cut short left, and nothing else', async (t) => {
  const { store: first, options } = await openStore(t);
  first.close();
  const dir = options.stateDir;
  writeFileSync(join(dir, '.mounts.json.tmp.0123abcd'), '{"version":2,');
  writeFileSync(join(dir, '.mounts.json.other'), 'not ours');
  const store = await VolumeStore.open(options, { owner: true });
  t.teardown(() => store.close());
  const left = readdirSync(dir);
  t.notOk(left.includes('.mounts.json.tmp.0123abcd'), 'the temporary is gone');
  t.ok(left.includes('.mounts.json.other'), 'another name is kept');
  t.ok(left.includes('mounts.json'));
});

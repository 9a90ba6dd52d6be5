// listSubvolumes against `btrfs subvolume list`, and its two ways (the root
// tree's items as root, one open + GET_SUBVOL_INFO per entry otherwise)
// against each other.
import { execFileSync, execSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { listSubvolumeNamesBy, listSubvolumesBy } from '../../src/btrfs/subvolume.js';
import type { ListedSubvolume } from '../../src/btrfs/types.js';
import { btrfsProgs, mountBtrfs, plainDir } from '../fixtures/btrfs.js';
import { subvolumeList } from '../fixtures/oracle.js';

const { mnt } = mountBtrfs(t);

t.test('lists exactly the subvolumes directly inside a directory', async (t) => {
  const dir = join(mnt, 'volumes');
  mkdirSync(dir);
  const names: string[] = [];
  for (let i = 0; i < 60; i++) {
    const name = `v${String(i).padStart(3, '0')}`;
    await btrfs.createSubvolume(join(dir, name));
    names.push(name);
  }
  for (let i = 0; i < 40; i++) {
    const name = `v000@${i}`;
    await btrfs.snapshot(join(dir, 'v000'), join(dir, name), { readonly: i % 2 === 0 });
    names.push(name);
  }
  // Noise that must not be listed: plain dirs, files, symlinks to subvolumes,
  // subvolumes nested deeper, a subvolume inside a listed one.
  mkdirSync(join(dir, 'plain'));
  await btrfs.createSubvolume(join(dir, 'plain', 'deeper'));
  writeFileSync(join(dir, 'metadata.db'), '');
  symlinkSync(join(dir, 'v001'), join(dir, 'link-to-v001'));
  await btrfs.createSubvolume(join(dir, 'v002', 'nested'));

  const ours = await btrfs.listSubvolumes(dir);
  t.same(ours.map((e) => e.name), [...names].sort(), 'names, sorted');

  const progs = new Map(subvolumeList(mnt).map((e) => [e.path, e]));
  for (const e of ours) {
    const ref = progs.get(`volumes/${e.name}`);
    if (!ref) {
      t.fail(`btrfs-progs does not know ${e.name}`);
      continue;
    }
    t.equal(e.path, join(dir, e.name));
    t.same(
      { id: e.id, uuid: e.uuid, parentUuid: e.parentUuid, receivedUuid: e.receivedUuid, gen: e.generation, top: e.parentId },
      { id: ref.id, uuid: ref.uuid, parentUuid: ref.parentUuid, receivedUuid: ref.receivedUuid, gen: ref.gen, top: ref.topLevel },
      e.name,
    );
  }
  const snaps = ours.filter((e) => e.name.includes('@'));
  t.equal(snaps.filter((e) => e.readonly).length, 20, 'read-only flags');
  t.ok(snaps.every((e) => e.parentUuid === ours[0]!.uuid), 'snapshots point at their source');
});

t.test('a directory that is not a subvolume root, an empty one, and the mount root', async (t) => {
  const sub = join(mnt, 'host');
  await btrfs.createSubvolume(sub);
  mkdirSync(join(sub, 'inner'));
  await btrfs.createSubvolume(join(sub, 'inner', 'a'));
  await btrfs.createSubvolume(join(sub, 'b'));
  t.same((await btrfs.listSubvolumes(join(sub, 'inner'))).map((e) => e.name), ['a']);
  t.same((await btrfs.listSubvolumes(sub)).map((e) => e.name), ['b']);
  mkdirSync(join(mnt, 'empty'));
  t.same(await btrfs.listSubvolumes(join(mnt, 'empty')), []);
  t.same((await btrfs.listSubvolumes(mnt)).map((e) => e.name), ['host'], 'only direct children of the top level');
});

t.test('errors', async (t) => {
  const plain = plainDir(t);
  await t.rejects(btrfs.listSubvolumes(join(mnt, 'missing')), { code: 'ENOENT', syscall: 'open' });
  writeFileSync(join(mnt, 'file'), '');
  await t.rejects(btrfs.listSubvolumes(join(mnt, 'file')), { code: 'ENOTDIR' });
  await t.rejects(btrfs.listSubvolumes(plain), { code: 'ENOTTY', message: /not a btrfs filesystem/ });
});

// ---- the tree search (root) and the entry-by-entry way (no privilege) -------

/** An entry with its Dates as numbers, so that a difference names its field. */
const plain = (e: ListedSubvolume) =>
  Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v instanceof Date ? v.getTime() : v]));

/** Lists `dir` both ways and compares them entry by entry, field by field; returns the tree's listing. */
async function sameBothWays(t: Test, dir: string, what: string): Promise<ListedSubvolume[]> {
  const tree = await listSubvolumesBy(dir, 1);
  const entries = await listSubvolumesBy(dir, 2);
  t.same(tree.map((e) => e.name), entries.map((e) => e.name), `${what}: the same names`);
  for (let i = 0; i < Math.min(tree.length, entries.length); i++) {
    t.strictSame(plain(tree[i]!), plain(entries[i]!), `${what}: ${tree[i]!.name}, every field`);
  }
  t.same(await listSubvolumeNamesBy(dir, 1), tree.map((e) => e.name), `${what}: names only, from the tree`);
  t.same(await listSubvolumeNamesBy(dir, 2), tree.map((e) => e.name), `${what}: names only, entry by entry`);
  return tree;
}

const mounts: string[] = [];
t.teardown(() => {
  for (const m of mounts.reverse()) execFileSync('umount', ['-l', m]);
});

t.test('both ways list the same trees, field by field', async (t) => {
  const host = join(mnt, 'both');
  await btrfs.createSubvolume(host);
  const dir = join(host, 'dir'); // a plain directory inside a subvolume
  mkdirSync(dir);
  const sub = (name: string) => btrfs.createSubvolume(join(dir, name));
  await sub('a');
  writeFileSync(join(dir, 'a', 'data'), 'a\n');
  await btrfs.createSubvolume(join(dir, 'a', 'nested')); // inside a listed one: not listed
  await btrfs.snapshot(join(dir, 'a'), join(dir, 'a@ro'), { readonly: true });
  await btrfs.snapshot(join(dir, 'a'), join(dir, 'a@rw'));
  // Renamed: the ROOT_REF follows (its name is the entry's name in dir).
  await sub('b');
  renameSync(join(dir, 'b'), join(dir, 'b-renamed'));
  mkdirSync(join(dir, 'sub'));
  await btrfs.createSubvolume(join(dir, 'sub', 'deep'));
  await btrfs.createSubvolume(join(dir, 'sub', 'stays-deep'));
  renameSync(join(dir, 'sub', 'deep'), join(dir, 'moved-up')); // from a subdirectory into dir
  await sub('c');
  renameSync(join(dir, 'c'), join(host, 'c-moved-out'));
  // Deleted, the cleaner not waited for.
  await sub('gone');
  await btrfs.snapshot(join(dir, 'a'), join(dir, 'gone@ro'), { readonly: true });
  await btrfs.deleteSubvolume(join(dir, 'gone'));
  await btrfs.deleteSubvolume(join(dir, 'gone@ro'));
  // Not subvolumes, with subvolume-like names; links to subvolumes.
  mkdirSync(join(dir, 'a@2024-01-01T00:00:00'));
  writeFileSync(join(dir, 'b@file'), '');
  symlinkSync(join(dir, 'a'), join(dir, 'link-to-a'));
  symlinkSync('a@ro', join(dir, 'relative-link-to-a@ro'));
  // A subvolume reached through a bind mount on a plain directory is not an
  // entry of dir: the entry-by-entry way checks the name the subvolume has.
  mkdirSync(join(dir, 'bind-point'));
  execFileSync('mount', ['--bind', join(dir, 'b-renamed'), join(dir, 'bind-point')]);
  mounts.push(join(dir, 'bind-point'));
  await sub('é-ü 名前'); // UTF-8
  // Received: uuid, received uuid, stransid/rtransid, stime/rtime set.
  const src = join(mnt, 'send-src');
  await btrfs.createSubvolume(src);
  writeFileSync(join(src, 'f'), 'sent\n');
  await btrfs.snapshot(src, join(mnt, 'send-src@1'), { readonly: true });
  execSync(`btrfs send -q '${join(mnt, 'send-src@1')}' | btrfs receive -q '${dir}'`);
  await btrfs.syncFilesystem(mnt); // a commit first: see the next test for what differs before one

  const tree = await sameBothWays(t, dir, 'dir');
  t.same(
    tree.map((e) => e.name),
    ['a', 'a@ro', 'a@rw', 'b-renamed', 'moved-up', 'send-src@1', 'é-ü 名前'].sort(),
    'exactly the subvolumes directly inside, under their current names',
  );
  const byName = new Map(tree.map((e) => [e.name, e]));
  const a = byName.get('a')!;
  t.match(byName.get('a@ro'), { readonly: true, parentUuid: a.uuid });
  t.match(byName.get('a@rw'), { readonly: false, parentUuid: a.uuid });
  const received = byName.get('send-src@1')!;
  t.ok(received.receivedUuid && received.stransid > 0 && received.rtransid > 0 && received.rtime instanceof Date, 'received facts');
  t.ok(tree.every((e) => e.dirId === tree[0]!.dirId && e.dirId !== 256), 'all in dir, not in the root directory');

  await sameBothWays(t, host, 'a subvolume root');
  await sameBothWays(t, mnt, 'the top level');
  await sameBothWays(t, join(dir, 'sub'), 'a subdirectory');
  // A snapshot of host holds empty placeholders (inode 2) where host had subvolumes.
  await btrfs.snapshot(host, join(mnt, 'both-snap'), { readonly: true });
  t.same(await sameBothWays(t, join(mnt, 'both-snap', 'dir'), 'placeholders'), [], 'placeholders are not subvolumes');

  t.same((await listSubvolumesBy(dir, 1, { prefix: 'a@' })).map((e) => e.name), ['a@ro', 'a@rw'], 'prefix, tree');
  t.same((await listSubvolumesBy(dir, 2, { prefix: 'a@' })).map((e) => e.name), ['a@ro', 'a@rw'], 'prefix, entries');
  t.same(await listSubvolumeNamesBy(dir, 1, { prefix: 'a' }), ['a', 'a@ro', 'a@rw'], 'prefix, names from the tree');
  t.same(await listSubvolumeNamesBy(dir, 2, { prefix: 'zz' }), [], 'prefix matching nothing');
  t.same(await btrfs.listSubvolumes(dir), tree, 'as root, listSubvolumes reads the tree');
});

t.test('what differs between the two ways, as documented', async (t) => {
  const dir = join(mnt, 'differs');
  await btrfs.createSubvolume(dir);
  await btrfs.createSubvolume(join(dir, 'w'));
  await btrfs.createSubvolume(join(dir, 'covered'));
  await btrfs.syncFilesystem(mnt);
  // Changed since the last commit: GET_SUBVOL_INFO has the newer ctransid and
  // ctime in memory, the tree still the committed ones (as btrfs-progs shows).
  writeFileSync(join(dir, 'w', 'new-file'), 'x\n');
  const [tree] = await listSubvolumesBy(dir, 1, { prefix: 'w' });
  const [entries] = await listSubvolumesBy(dir, 2, { prefix: 'w' });
  t.ok(tree!.ctransid < entries!.ctransid && tree!.ctime < entries!.ctime, 'before a commit: older ctransid and ctime from the tree');
  const rest = (e: ListedSubvolume) => ({ ...plain(e), ctransid: 0, ctime: 0 });
  t.strictSame(rest(tree!), rest(entries!), 'everything else the same');
  await btrfs.syncFilesystem(mnt);
  await sameBothWays(t, dir, 'after the commit');
  // A mount on an entry hides the subvolume there from the entry-by-entry way only.
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'covered')]);
  mounts.push(join(dir, 'covered'));
  t.same((await listSubvolumesBy(dir, 1)).map((e) => e.name), ['covered', 'w'], 'the tree lists the covered subvolume');
  t.same((await listSubvolumesBy(dir, 2)).map((e) => e.name), ['w'], 'the entries see a tmpfs there, skipped');
});

t.test('without CAP_SYS_ADMIN the listing falls back to the entry-by-entry way', async (t) => {
  const dir = join(mnt, 'nocap');
  mkdirSync(dir);
  await btrfs.createSubvolume(join(dir, 'x'));
  await btrfs.snapshot(join(dir, 'x'), join(dir, 'x@1'), { readonly: true });
  await btrfs.syncFilesystem(mnt);
  const api = new URL('../../src/btrfs/subvolume.ts', import.meta.url).href;
  const code = `
    const { listSubvolumesBy } = await import(${JSON.stringify(api)});
    const auto = await listSubvolumesBy(${JSON.stringify(dir)}, 0);
    const tree = await listSubvolumesBy(${JSON.stringify(dir)}, 1).catch((e) => ({ code: e.code, syscall: e.syscall }));
    console.log(JSON.stringify({ auto, tree }));`;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const execArgv = process.execArgv.filter((a) => !a.includes('processinfo'));
  const out = execFileSync(
    'setpriv',
    ['--inh-caps=-sys_admin', '--bounding-set=-sys_admin', process.execPath, ...execArgv, '--input-type=module', '-e', code],
    { env, encoding: 'utf8' },
  );
  const { auto, tree } = JSON.parse(out) as { auto: unknown; tree: unknown };
  t.same(tree, { code: 'EPERM', syscall: 'BTRFS_IOC_TREE_SEARCH_V2' }, 'the tree search is refused');
  t.same(auto, JSON.parse(JSON.stringify(await listSubvolumesBy(dir, 2))), 'and the listing is the entry-by-entry one');
  t.same(JSON.parse(JSON.stringify(await listSubvolumesBy(dir, 0))), auto, 'which root gets from the tree');
});

/**
 * Runs a listing of `dir` in a child under strace, the `when`-th ioctl on
 * `path` delayed by `ms`; `started` resolves when the child begins to list.
 */
function delayedListing(dir: string, mode: 1 | 2, path: string, when: number, ms: number) {
  const api = new URL('../../src/btrfs/subvolume.ts', import.meta.url).href;
  const code = `
    const { listSubvolumesBy } = await import(${JSON.stringify(api)});
    process.stdout.write('listing\\n');
    const names = (await listSubvolumesBy(${JSON.stringify(dir)}, ${mode})).map((e) => e.name);
    process.stdout.write(JSON.stringify(names) + '\\n');`;
  const env: NodeJS.ProcessEnv = { ...process.env, UV_THREADPOOL_SIZE: '1' };
  delete env.NODE_OPTIONS;
  const execArgv = process.execArgv.filter((a) => !a.includes('processinfo'));
  const child = spawn(
    'strace',
    ['-f', '-qq', '-o', '/dev/null', '-P', path, '-e', 'trace=ioctl', '-e', `inject=ioctl:delay_enter=${ms * 1000}:when=${when}`,
      process.execPath, ...execArgv, '--input-type=module', '-e', code],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  let startedAt = 0;
  const started = new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      if (!startedAt && stdout.startsWith('listing\n')) {
        startedAt = performance.now();
        resolve();
      }
    });
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<{ code: number | null; names: string[]; ms: number; stderr: string }>((resolve) =>
    child.once('close', (code) => {
      const names = code === 0 ? (JSON.parse(stdout.split('\n')[1]!) as string[]) : [];
      resolve({ code, names, ms: performance.now() - startedAt, stderr });
    }),
  );
  return { started, done };
}

t.test('a subvolume deleted while it is being listed is skipped, either way', async (t) => {
  const dir = join(mnt, 'race');
  await btrfs.createSubvolume(dir);
  await btrfs.createSubvolume(join(dir, 'stays'));
  const DELAY = 2000;
  const cases = [
    // Held open, a deleted subvolume is not cleaned: its ROOT_ITEM stays, with refs 0.
    ['tree, deleted, its ROOT_ITEM still there', 1, 'held open'],
    ['tree, deleted and cleaned', 1, 'cleaned'],
    ['entries', 2, 'deleted'],
  ] as const;
  for (const [what, mode, state] of cases) {
    const victim = join(dir, 'victim');
    await btrfs.createSubvolume(victim);
    await btrfs.syncFilesystem(mnt);
    const held = state === 'held open' ? openSync(victim, 'r') : undefined;
    // The tree: the 4th ioctl on dir is the ROOT_ITEM search, after the ROOT_REFs
    // were read (INO_LOOKUP, then two of the ROOT_REF search). The entries: the
    // first ioctl on the victim is its GET_SUBVOL_INFO, after it was opened.
    const listing = mode === 1 ? delayedListing(dir, mode, dir, 4, DELAY) : delayedListing(dir, mode, victim, 1, DELAY);
    await listing.started;
    await sleep(500);
    btrfsProgs('subvolume', 'delete', '-c', victim);
    if (state === 'cleaned') await btrfs.waitForCleaner(mnt);
    const r = await listing.done;
    t.equal(r.code, 0, `${what}: no error`);
    t.ok(r.ms >= DELAY, `${what}: the listing was held in the delayed ioctl (${Math.round(r.ms)} ms) while the subvolume went`);
    t.same(r.names, ['stays'], `${what}: the deleted one is not listed`);
    if (held !== undefined) closeSync(held);
  }
});

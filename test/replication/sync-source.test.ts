// The serving side of sync on its own (no SSH): serveTree and serveFiles
// written into a stream and read back with the client's FrameReader. What
// a container can do to the volume being served: FIFOs, devices, symlinks
// out of it, a directory swapped with a symlink to / while it is read, a
// file changing while it is sent; and a peer that goes away half-way.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { FrameReader } from '../../src/replication/frames.js';
import { MAX_CHUNK_BYTES, type FileHeader, type TreeEntry } from '../../src/replication/protocol.js';
import { serveFiles, serveTree } from '../../src/replication/sync-source.js';
import { mountBtrfs } from '../fixtures/btrfs.js';
import { swapLoop } from '../fixtures/hostile.js';

const { mnt } = mountBtrfs(t);

/** The root of a volume as the service opens it (VolumeStore.openLiveVolume): beneath its directory, its own name not followed. */
const openRoot = (path: string): Promise<number> => btrfs.openBeneath(dirname(path), basename(path), 'directory');

async function tree(root: string): Promise<TreeEntry[]> {
  const out = new PassThrough();
  const served = serveTree(out, await openRoot(root));
  const reader = new FrameReader(out, 'tree');
  const first = await reader.line();
  if ((first as { ok?: boolean }).ok !== true) throw new Error(`not ok: ${JSON.stringify(first)}`);
  const entries: TreeEntry[] = [];
  for (;;) {
    const line = (await reader.line()) as TreeEntry & { end?: boolean };
    if (line.end) break;
    entries.push(line);
  }
  await served;
  return entries;
}

interface Got {
  header: FileHeader;
  data?: Buffer;
  chunks?: number;
  status?: { complete: boolean; code?: string };
}

async function files(root: string, paths: string[], out = new PassThrough()): Promise<Got[]> {
  const served = serveFiles(out, await openRoot(root), paths);
  const reader = new FrameReader(out, 'files');
  expect(await reader.line(), { ok: true });
  const got: Got[] = [];
  for (let i = 0; i < paths.length; i++) {
    const header = (await reader.line()) as FileHeader;
    if (!header.ok) {
      got.push({ header });
      continue;
    }
    const parts: Buffer[] = [];
    for (let c = await reader.chunk(MAX_CHUNK_BYTES); c; c = await reader.chunk(MAX_CHUNK_BYTES)) parts.push(c);
    got.push({ header, data: Buffer.concat(parts), chunks: parts.length, status: (await reader.line()) as Got['status'] });
  }
  expect(await reader.line(), { end: true });
  await served;
  return got;
}

function expect(line: unknown, wanted: unknown): void {
  if (JSON.stringify(line) !== JSON.stringify(wanted)) throw new Error(`expected ${JSON.stringify(wanted)}, got ${JSON.stringify(line)}`);
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

t.test('the tree: every entry once, a directory before its content, special files as "other"', async (t) => {
  const root = join(mnt, 'tree');
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  writeFileSync(join(root, 'a', 'b', 'f'), 'f');
  writeFileSync(join(root, 'top'), 'top');
  symlinkSync('/etc/shadow', join(root, 'out'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  execFileSync('mknod', [join(root, 'dev'), 'b', '7', '0']);
  writeFileSync(Buffer.from(`${root}/bad-\xff-name`, 'latin1'), 'x');
  const before = openFds();
  const entries = await tree(root);
  t.equal(openFds(), before, 'no fd left open');
  const byPath = new Map(entries.map((e) => [e.path, e]));
  t.same(entries.map((e) => e.path), ['', 'bad-\ufffd-name', 'dev', 'fifo', 'out', 'top', 'a', 'a/b', 'a/b/f']);
  t.match(byPath.get(''), { type: 'dir' });
  t.match(byPath.get('out'), { type: 'symlink', target: '/etc/shadow' }, 'a symlink out: its target, never followed');
  t.match(byPath.get('fifo'), { type: 'other', why: 'fifo' });
  t.match(byPath.get('dev'), { type: 'other', why: 'block device' });
  t.match(byPath.get('bad-\ufffd-name'), { type: 'other', why: 'name not UTF-8' });
  t.match(byPath.get('a/b/f'), { type: 'file', size: 1, nlink: 1, mtime: /^\d+$/ });
  await t.rejects(openRoot(join(mnt, 'missing')), { code: 'ENOENT' });
  symlinkSync(root, join(mnt, 'volume-link'));
  await t.rejects(openRoot(join(mnt, 'volume-link')), { code: 'ENOTDIR' }, "the volume's own name is not followed");
});

t.test('files: regular files only, beneath the volume, in chunks', async (t) => {
  const root = join(mnt, 'files');
  mkdirSync(join(root, 'd'), { recursive: true });
  writeFileSync(join(root, 'd', 'f'), 'content');
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'big'), Buffer.alloc(3 * MAX_CHUNK_BYTES + 5, 7));
  writeFileSync(join(root, 'exact'), Buffer.alloc(MAX_CHUNK_BYTES, 1));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  execFileSync('mknod', [join(root, 'null'), 'c', '1', '3']);
  symlinkSync('/etc', join(root, 'etc'));
  symlinkSync('d', join(root, 'dlink'));
  symlinkSync('/etc/passwd', join(root, 'passwd'));
  const before = openFds();
  const got = await files(root, ['d/f', 'empty', 'big', 'exact', 'fifo', 'null', 'etc/passwd', 'dlink/f', 'passwd', 'd', '../files/d/f', '/etc/passwd', 'd//f', 'missing', 'd/f']);
  t.equal(openFds(), before, 'no fd left open');
  const [f, empty, big, exact, fifo, nul, etc, dlink, passwd, dir, up, abs, dbl, missing, again] = got as Got[] & Got[];
  t.match(f, { header: { path: 'd/f', ok: true, size: 7 }, status: { complete: true } });
  t.equal(f!.data!.toString(), 'content');
  t.match(empty, { header: { ok: true, size: 0 }, chunks: 0, status: { complete: true } });
  t.match(big, { header: { ok: true }, chunks: 4, status: { complete: true } });
  t.equal(big!.data!.length, 3 * MAX_CHUNK_BYTES + 5);
  t.match(exact, { chunks: 1, status: { complete: true } });
  t.match(fifo, { header: { ok: false, code: 'EINVAL', error: /not a regular file/ } }, 'a FIFO is never opened (this would block)');
  t.match(nul, { header: { ok: false, code: 'EINVAL' } }, 'nor a device');
  t.match(etc, { header: { ok: false, code: 'ELOOP' } }, 'never through a symlink');
  t.match(dlink, { header: { ok: false, code: 'ELOOP' } }, 'not even one inside the volume');
  t.match(passwd, { header: { ok: false, code: 'ELOOP' } }, 'a symlink is not a file to send');
  t.match(dir, { header: { ok: false, code: 'EISDIR' } });
  for (const bad of [up, abs, dbl]) t.match(bad, { header: { ok: false, code: 'ERR_BAD_REQUEST' } });
  t.match(missing, { header: { ok: false, code: 'ENOENT' } });
  t.match(again, { header: { ok: true }, status: { complete: true } });
});

t.test('a file that changes while it is sent is said incomplete', async (t) => {
  const root = join(mnt, 'changing');
  mkdirSync(root);
  writeFileSync(join(root, 'f'), Buffer.alloc(8 * MAX_CHUNK_BYTES, 1));
  const out = new PassThrough({ highWaterMark: 1024 });
  const served = serveFiles(out, await openRoot(root), ['f']);
  const reader = new FrameReader(out, 'files');
  await reader.line();
  const header = (await reader.line()) as FileHeader;
  t.equal(header.ok, true);
  await reader.chunk(MAX_CHUNK_BYTES); // the server is now held by the channel's backpressure
  appendFileSync(join(root, 'f'), 'more');
  while (await reader.chunk(MAX_CHUNK_BYTES));
  t.match(await reader.line(), { complete: false, code: 'ERR_CHANGED' });
  t.same(await reader.line(), { end: true });
  await served;
});

t.test('a peer gone half-way: the answer stops, every fd is closed', async (t) => {
  const root = join(mnt, 'gone');
  mkdirSync(root);
  for (let i = 0; i < 40; i++) writeFileSync(join(root, `f${i}`), Buffer.alloc(2 * MAX_CHUNK_BYTES, i));
  const before = openFds();
  const out = new PassThrough({ highWaterMark: 1024 });
  const served = serveFiles(out, await openRoot(root), readdirSync(root));
  const reader = new FrameReader(out, 'files');
  await reader.line();
  await reader.line();
  await reader.chunk(MAX_CHUNK_BYTES);
  out.destroy();
  await t.rejects(served, { code: 'ERR_PEER_CLOSED' });
  t.equal(openFds(), before, 'the files read ahead are closed too');
});

t.test('a directory swapped with a symlink to / while served: nothing from outside, ever', async (t) => {
  const root = join(mnt, 'race');
  const names = ['passwd', 'shadow', 'group', 'hostname', 'hosts', 'os-release'];
  mkdirSync(join(root, 'd', 'etc'), { recursive: true });
  for (const n of names) writeFileSync(join(root, 'd', 'etc', n), 'inside');
  symlinkSync('/', join(root, 's'));
  const before = openFds();
  const swapper = await swapLoop(t, join(root, 'd'), join(root, 's'));
  const count = { inside: 0, refused: 0, walked: 0 };
  for (let i = 0; i < 300; i++) {
    const entries = await tree(root);
    for (const e of entries) {
      if (e.type === 'symlink' && e.target !== '/') t.fail(`${e.path}: a symlink sent as something else: ${e.target}`);
      if (e.type === 'file' && !/^[ds]\/etc\/[a-z-]+$/.test(e.path)) t.fail(`a file from outside listed: ${e.path}`);
    }
    const wanted = entries.filter((e) => e.type === 'file').map((e) => e.path);
    if (wanted.length > 0) count.walked++;
    // Also ask for what is outside through both names, whatever the walk saw.
    for (const g of await files(root, [...wanted, ...names.map((n) => `d/etc/${n}`), ...names.map((n) => `s/etc/${n}`)])) {
      if (!g.header.ok) {
        count.refused++;
        continue;
      }
      if (g.data!.toString() !== 'inside') t.fail(`${g.header.path}: sent from outside the volume: ${JSON.stringify(g.data!.toString().slice(0, 30))}`);
      count.inside++;
    }
  }
  await swapper.stop();
  t.equal(openFds(), before, 'no fd left open');
  t.ok(count.inside > 0 && count.refused > 0 && count.walked > 0, `files sent from inside, others refused: ${JSON.stringify(count)}`);
});

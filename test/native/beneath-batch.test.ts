// listBeneathPacked, readFilesBeneath, writeFilesBeneath and makeDirBeneath:
// sync's batches beneath a volume's root, one native call each. Never
// through a symlink, never a FIFO or a device opened, never a write outside
// the root, a file replaced only if it is still what was listed, no
// temporary name left behind.
import { execFileSync } from 'node:child_process';
import { closeSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs } from '../fixtures/btrfs.js';

const { mnt } = mountBtrfs(t);

function rootOf(t: { teardown(fn: () => void): void }, name: string): { root: string; fd: number } {
  const root = join(mnt, name);
  mkdirSync(root, { recursive: true });
  const fd = openSync(root, 'r');
  t.teardown(() => closeSync(fd));
  return { root, fd };
}

function outside(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bv-batch-canary-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function names(listing: btrfs.PackedListing): Array<{ name: string; mode: number; size: number; target: string; mtimeNs: bigint }> {
  const out = [];
  const e = new btrfs.PackedEntries(listing.entries, listing.count);
  while (e.next()) out.push({ name: e.name().toString('latin1'), mode: e.mode, size: e.size, target: e.target().toString(), mtimeNs: e.mtimeNs });
  t.equal(e.offset, listing.entries.length, 'the entries fill the buffer');
  return out;
}

t.test('listBeneathPacked: every entry lstat-ed, sorted by bytes, symlinks with their target, nothing followed', async (t) => {
  const { root, fd } = rootOf(t, 'list');
  mkdirSync(join(root, 'd'));
  writeFileSync(join(root, 'b'), 'bb');
  writeFileSync(join(root, 'B'), 'B');
  writeFileSync(Buffer.concat([Buffer.from(`${root}/`), Buffer.from([0x61, 0xff])]), 'x'); // a name that is not UTF-8
  symlinkSync('/etc', join(root, 'link'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  const listing = await btrfs.listBeneathPacked(fd, '');
  t.equal(btrfs.readPackedStat(listing.self).ino, lstatSync(root).ino, "the directory's own stat");
  const got = names(listing);
  t.same(
    got.map((e) => e.name),
    ['B', 'a\u00ff', 'b', 'd', 'fifo', 'link'],
    'sorted as Buffer.compare sorts',
  );
  const link = got.find((e) => e.name === 'link')!;
  t.equal(link.mode & 0o170000, 0o120000, 'a symlink, not what it points to');
  t.equal(link.target, '/etc');
  t.equal(got.find((e) => e.name === 'b')!.size, 2);
  t.equal(got.find((e) => e.name === 'b')!.mtimeNs, lstatSync(join(root, 'b'), { bigint: true }).mtimeNs, 'mtime to the ns');
  await t.rejects(btrfs.listBeneathPacked(fd, 'link'), { code: 'ENOTDIR' }, 'a symlink is not listed as a directory');
  await t.rejects(btrfs.listBeneathPacked(fd, '../'), { code: 'EXDEV' });
});

t.test('readFilesBeneath: whole files in order, a record for what cannot be read, a big one left open', async (t) => {
  const { root, fd } = rootOf(t, 'read');
  mkdirSync(join(root, 'd'));
  writeFileSync(join(root, 'd', 'a'), 'aaa');
  writeFileSync(join(root, 'b'), '');
  writeFileSync(join(root, 'big'), Buffer.alloc(100_000, 'x'));
  symlinkSync('/etc', join(root, 'etc'));
  symlinkSync('/etc/passwd', join(root, 'passwd'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  const r = await btrfs.readFilesBeneath(fd, ['d/a', 'b', 'etc/passwd', 'passwd', 'fifo', 'nope', 'big', 'b'], { maxBytes: 1 << 20, maxFile: 65536 });
  t.equal(r.done, 6, 'up to the big one');
  const p = r.packed;
  let at = 0;
  const kinds: Array<string> = [];
  for (let i = 0; i < r.done; i++) {
    const kind = p[at++]!;
    if (kind === 2) {
      const code = p.toString('latin1', at + 1, at + 1 + p[at]!);
      at += 1 + p[at]!;
      const n = p.readUInt16LE(at);
      at += 2 + n;
      kinds.push(code);
    } else {
      const st = btrfs.readPackedStat(p, at);
      const n = p.readUInt32LE(at + btrfs.PACKED_STAT_BYTES);
      kinds.push(`${kind}:${p.toString('utf8', at + btrfs.PACKED_STAT_BYTES + 4, at + btrfs.PACKED_STAT_BYTES + 4 + n)}:${st.size}`);
      at += btrfs.PACKED_STAT_BYTES + 4 + n;
    }
  }
  t.equal(at, p.length);
  t.same(kinds, ['0:aaa:3', '0::0', 'ELOOP', 'ELOOP', 'EINVAL', 'ENOENT'], 'never through a symlink, never a FIFO opened');
  t.ok(r.big, 'the big file');
  t.equal(r.big!.data.length, 65536, 'its first bytes read');
  t.equal(btrfs.readPackedStat(r.big!.stat).size, 100_000);
  t.equal(typeof r.big!.ctimeNs, 'bigint');
  closeSync(r.big!.fd);
  const small = await btrfs.readFilesBeneath(fd, ['d/a', 'd/a', 'd/a'], { maxBytes: 1, maxFile: 65536 });
  t.equal(small.done, 1, 'stops once maxBytes are read');
});

t.test('writeFilesBeneath: each renamed into place with its metadata, only over what was listed, never outside', async (t) => {
  const { root, fd } = rootOf(t, 'write');
  const canary = outside(t);
  mkdirSync(join(root, 'd'));
  writeFileSync(join(root, 'old'), 'old');
  writeFileSync(join(root, 'moved'), 'mine');
  symlinkSync(canary, join(root, 'out'));
  const old = lstatSync(join(root, 'old'), { bigint: true });
  const moved = lstatSync(join(root, 'moved'), { bigint: true });
  writeFileSync(join(root, 'moved'), 'written since it was listed');
  const data = Buffer.from('0123456789');
  const T = 1_700_000_000_123_456_789n;
  const file = (path: string, offset: number, length: number, more: Partial<btrfs.FileToWrite> = {}): btrfs.FileToWrite => ({
    path,
    offset,
    length,
    uid: 1234,
    gid: 5678,
    mode: 0o4751,
    mtime: T,
    replace: false,
    expect: null,
    ...more,
  });
  const results = await btrfs.writeFilesBeneath(
    fd,
    [
      file('new', 0, 3, { inode: true }),
      file('d/deep', 3, 4),
      file('old', 7, 3, { replace: true, expect: { ino: old.ino, size: Number(old.size), mtimeNs: old.mtimeNs } }),
      file('moved', 0, 1, { replace: true, expect: { ino: moved.ino, size: Number(moved.size), mtimeNs: moved.mtimeNs } }),
      file('out/x', 0, 1),
      file('out', 0, 1),
      file('nodir/x', 0, 1),
    ],
    data,
    '.bv-sync.',
  );
  t.equal(typeof results[0], 'bigint');
  t.equal(results[0], lstatSync(join(root, 'new'), { bigint: true }).ino, 'the new inode');
  t.equal(results[1], 0n, 'written, its inode not asked for');
  t.equal(readFileSync(join(root, 'new'), 'utf8'), '012');
  t.equal(readFileSync(join(root, 'd', 'deep'), 'utf8'), '3456');
  t.equal(readFileSync(join(root, 'old'), 'utf8'), '789', 'replaced: it was as listed');
  t.equal(results[3], null, 'not replaced: written since it was listed');
  t.equal(readFileSync(join(root, 'moved'), 'utf8'), 'written since it was listed');
  t.match(results[4], { code: 'ENOTDIR', syscall: 'openat2' }, 'a symlink is not a directory to write into');
  t.match(results[5], { code: 'EEXIST', syscall: 'linkat' }, 'nothing replaced where nothing was expected (a new file is linked only where nothing is)');
  t.match(results[6], { code: 'ENOENT' });
  const st = lstatSync(join(root, 'new'), { bigint: true });
  t.same([st.uid, st.gid, st.mode & 0o7777n, st.mtimeNs], [1234n, 5678n, 0o4751n, T], 'owner, mode with setuid, mtime to the ns');
  t.same(readdirSync(canary), [], 'nothing written outside');
  t.same(readdirSync(root).filter((n) => n.startsWith('.bv-sync.')), [], 'no temporary name left');
  t.same(readdirSync(join(root, 'd')).filter((n) => n.startsWith('.bv-sync.')), []);
  t.throws(() => btrfs.writeFilesBeneath(fd, [file('x', 8, 5)], data, '.bv-sync.'), { code: 'ERR_INVALID_ARG_VALUE' }, 'bytes outside the data');
});

t.test('makeDirBeneath: its owner and mode, never through a symlink, never over anything', async (t) => {
  const { root, fd } = rootOf(t, 'mkdir');
  const canary = outside(t);
  symlinkSync(canary, join(root, 'out'));
  writeFileSync(join(root, 'file'), '');
  await btrfs.makeDirBeneath(fd, 'a', { uid: 42, gid: 43, mode: 0o2750 });
  await btrfs.makeDirBeneath(fd, 'a/b', { uid: 0, gid: 0, mode: 0o700 });
  const st = lstatSync(join(root, 'a'));
  t.same([st.isDirectory(), st.uid, st.gid, st.mode & 0o7777], [true, 42, 43, 0o2750]);
  t.ok(lstatSync(join(root, 'a', 'b')).isDirectory());
  await t.rejects(btrfs.makeDirBeneath(fd, 'out/x', { uid: 0, gid: 0, mode: 0o755 }), { code: 'ENOTDIR' });
  await t.rejects(btrfs.makeDirBeneath(fd, 'file', { uid: 0, gid: 0, mode: 0o755 }), { code: 'EEXIST' });
  await t.rejects(btrfs.makeDirBeneath(fd, 'out', { uid: 0, gid: 0, mode: 0o755 }), { code: 'EEXIST' });
  t.same(readdirSync(canary), [], 'nothing made outside');
});

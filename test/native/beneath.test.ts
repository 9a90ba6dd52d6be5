// openBeneath, setTimesAt, listBeneath, readFileBeneath and writeFileAt:
// entries of a tree a container controls, reached from a directory without
// ever leaving it or following a symlink, and without ever opening a FIFO or
// a device.
import { execFileSync } from 'node:child_process';
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs } from '../fixtures/btrfs.js';
import { swapLoop } from '../fixtures/hostile.js';

const { mnt } = mountBtrfs(t);

function readAll(fd: number): string {
  const buf = Buffer.alloc(1 << 16);
  let out = '';
  for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) out += buf.subarray(0, n).toString('utf8');
  return out;
}

/** The open flags of our own fd, from /proc (octal). */
function fdFlags(fd: number): number {
  const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').find((l) => l.startsWith('flags:'))!;
  return parseInt(line.split(/\s+/)[1]!, 8);
}

const O_CLOEXEC = 0o2000000;
const O_NOATIME = 0o1000000;

t.test('read: a regular file beneath a path or an fd', async (t) => {
  const root = join(mnt, 'read');
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  writeFileSync(join(root, 'a', 'b', 'f'), 'content');
  const fd = await btrfs.openBeneath(root, 'a/b/f', 'read');
  t.equal(readAll(fd), 'content');
  t.ok(fdFlags(fd) & O_CLOEXEC, 'close-on-exec');
  t.ok(fdFlags(fd) & O_NOATIME, 'no atime updates (root owns nothing special: CAP_FOWNER)');
  t.equal(fdFlags(fd) & 3, 0, 'O_RDONLY');
  closeSync(fd);
  const dir = await btrfs.openBeneath(root, 'a', 'directory');
  const f2 = await btrfs.openBeneath(dir, 'b/f', 'read');
  t.equal(readAll(f2), 'content');
  closeSync(f2);
  const self = await btrfs.openBeneath(dir, '', 'directory');
  t.equal(fstatSync(self).ino, statSync(join(root, 'a')).ino, "'' is the directory itself");
  closeSync(self);
  const dot = await btrfs.openBeneath(dir, '.', 'directory');
  t.equal(fstatSync(dot).ino, statSync(join(root, 'a')).ino, "'.' too");
  closeSync(dot);
  await t.rejects(btrfs.openBeneath(dir, 'b', 'read'), { name: 'BtrfsError', code: 'EISDIR', syscall: 'openat2', path: join(root, 'a', 'b') }, 'errors name the real path');
  await t.rejects(btrfs.openBeneath(dir, 'missing', 'read'), { code: 'ENOENT', path: join(root, 'a', 'missing') });
  await t.rejects(btrfs.openBeneath(root, 'a/b/f', 'directory'), { code: 'ENOTDIR', path: join(root, 'a/b/f') });
  closeSync(dir);
});

t.test('never out of the directory, never through a symlink', async (t) => {
  const root = join(mnt, 'confined');
  mkdirSync(join(root, 'd'), { recursive: true });
  writeFileSync(join(mnt, 'outside'), 'secret');
  writeFileSync(join(root, 'd', 'f'), 'inside');
  symlinkSync('/etc', join(root, 'etc'));
  symlinkSync('d', join(root, 'rel'));
  symlinkSync('d/f', join(root, 'flink'));
  symlinkSync('../outside', join(root, 'up'));
  const cases: Array<[string, string, string]> = [
    ['etc/passwd', 'read', 'ELOOP'],
    ['etc', 'directory', 'ENOTDIR'],
    ['etc/x', 'directory', 'ELOOP'],
    ['rel/f', 'read', 'ELOOP'],
    ['flink', 'read', 'ELOOP'],
    ['up', 'read', 'ELOOP'],
    ['../outside', 'read', 'EXDEV'],
    ['d/../../outside', 'read', 'EXDEV'],
    ['/etc/passwd', 'read', 'EXDEV'],
    ['/proc/self/root/etc/passwd', 'read', 'EXDEV'],
    ['etc/newfile', 'create', 'ELOOP'],
    ['rel/newfile', 'create', 'ELOOP'],
  ];
  for (const [path, how, code] of cases) {
    await t.rejects(btrfs.openBeneath(root, path, how as btrfs.BeneathHow), { code, syscall: 'openat2' }, `${how} ${path}: ${code}`);
  }
  const rootFd = await btrfs.openBeneath(mnt, 'confined', 'directory');
  await t.rejects(btrfs.openBeneath(rootFd, `../confined/d/f`, 'read'), { code: 'EXDEV' }, '".." above the fd, even back into it');
  const ok = await btrfs.openBeneath(rootFd, 'd/../d/f', 'read');
  t.equal(readAll(ok), 'inside', '".." that stays beneath is fine');
  closeSync(ok);
  // The magic links of /proc are not a way out either, from a directory of /proc.
  const proc = await btrfs.openBeneath('/proc', 'self', 'directory').catch((e: Error) => e);
  t.match(proc, { code: 'ENOTDIR' }, '/proc/self is a symlink: not opened as a directory');
  closeSync(rootFd);
});

t.test('a mount point is not crossed; a nested subvolume is not a mount', async (t) => {
  const root = join(mnt, 'mounts');
  mkdirSync(join(root, 'm'), { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(root, 'm')]);
  t.teardown(() => execFileSync('umount', [join(root, 'm')]));
  writeFileSync(join(root, 'm', 'f'), 'on tmpfs');
  await t.rejects(btrfs.openBeneath(root, 'm/f', 'read'), { code: 'EXDEV' });
  await t.rejects(btrfs.openBeneath(root, 'm', 'directory'), { code: 'EXDEV' });
  await btrfs.createSubvolume(join(root, 'sub'));
  writeFileSync(join(root, 'sub', 'f'), 'nested');
  const fd = await btrfs.openBeneath(root, 'sub/f', 'read');
  t.equal(readAll(fd), 'nested');
  closeSync(fd);
});

t.test('a FIFO, a socket or a device is never opened', async (t) => {
  const root = join(mnt, 'special');
  mkdirSync(root);
  execFileSync('mkfifo', [join(root, 'fifo')]);
  execFileSync('mknod', [join(root, 'null'), 'c', '1', '3']);
  execFileSync('python3', ['-c', `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(join(root, 'sock'))})`]);
  for (const name of ['fifo', 'null', 'sock']) {
    await t.rejects(btrfs.openBeneath(root, name, 'read'), { code: 'EINVAL', syscall: 'openat2', message: /not a regular file/ }, `${name}: refused without blocking`);
  }
  // Had the FIFO been opened for reading, a writer could open it now; it gets ENXIO: no reader.
  t.throws(() => openSync(join(root, 'fifo'), 0o1 | 0o4000), { code: 'ENXIO' }, 'no reader holds the FIFO');
});

t.test('create: exclusive, with its mode, never through or onto a symlink', async (t) => {
  const root = join(mnt, 'create');
  mkdirSync(join(root, 'd'), { recursive: true });
  symlinkSync(join(mnt, 'victim'), join(root, 'dangling'));
  const fd = await btrfs.openBeneath(root, 'd/new', 'create', { mode: 0o640 });
  writeSync(fd, 'written');
  t.equal(fdFlags(fd) & 3, 1, 'O_WRONLY');
  closeSync(fd);
  t.equal(readFileSync(join(root, 'd', 'new'), 'utf8'), 'written');
  t.equal(statSync(join(root, 'd', 'new')).mode & 0o777, 0o640 & ~process.umask());
  await t.rejects(btrfs.openBeneath(root, 'd/new', 'create'), { code: 'EEXIST' });
  await t.rejects(btrfs.openBeneath(root, 'dangling', 'create'), { code: 'EEXIST' }, 'a dangling symlink is not written through');
  t.equal(lstatSync(join(mnt, 'victim'), { throwIfNoEntry: false }), undefined, 'nothing was created at its target');
  t.equal(statSync(join(root, 'd', 'new')).uid, 0);
});

t.test('a directory swapped with a symlink to / while opening: never anything from outside', async (t) => {
  const root = join(mnt, 'race');
  mkdirSync(join(root, 'd', 'etc'), { recursive: true });
  writeFileSync(join(root, 'd', 'etc', 'passwd'), 'inside');
  symlinkSync('/', join(root, 's'));
  const swapper = await swapLoop(t, join(root, 'd'), join(root, 's'));
  const seen = new Map<string, number>();
  const rootFd = await btrfs.openBeneath(root, '', 'directory');
  for (let i = 0; i < 3000; i++) {
    try {
      const fd = await btrfs.openBeneath(rootFd, 'd/etc/passwd', 'read');
      const text = readAll(fd);
      closeSync(fd);
      seen.set(text, (seen.get(text) ?? 0) + 1);
    } catch (err) {
      const code = (err as { code: string }).code;
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
  }
  await swapper.stop();
  closeSync(rootFd);
  t.same([...seen.keys()].filter((k) => k !== 'inside' && k !== 'ELOOP' && k !== 'ENOENT'), [], `only the file inside or a refusal: ${JSON.stringify([...seen])}`);
  t.ok(seen.get('inside'), 'the file was read when the directory was in place');
  t.ok(seen.get('ELOOP'), 'and refused when the symlink was');
});

t.test('setTimesAt: to the nanosecond, a symlink itself, the fd itself', async (t) => {
  const root = join(mnt, 'times');
  mkdirSync(root);
  writeFileSync(join(root, 'f'), 'x');
  symlinkSync('f', join(root, 'l'));
  const dir = await btrfs.openBeneath(root, '', 'directory');
  const mtime = 1_600_000_000_123_456_789n;
  await btrfs.setTimesAt(dir, 'f', { mtime });
  t.equal(statSync(join(root, 'f'), { bigint: true }).mtimeNs, mtime, 'every digit');
  const before = statSync(join(root, 'f'), { bigint: true });
  await btrfs.setTimesAt(dir, 'l', { atime: 1_000_000_000_000_000_001n, mtime: 1_500_000_000_000_000_007n });
  const link = lstatSync(join(root, 'l'), { bigint: true });
  t.equal(link.mtimeNs, 1_500_000_000_000_000_007n, "the symlink's own mtime");
  t.equal(link.atimeNs, 1_000_000_000_000_000_001n);
  t.equal(statSync(join(root, 'f'), { bigint: true }).mtimeNs, before.mtimeNs, 'its target untouched');
  await btrfs.setTimesAt(dir, '', { mtime: 1_234_567_890_987_654_321n });
  t.equal(statSync(root, { bigint: true }).mtimeNs, 1_234_567_890_987_654_321n, "'' is the directory itself");
  await btrfs.setTimesAt(dir, 'f', { mtime: -1_500_000_001n });
  t.equal(statSync(join(root, 'f'), { bigint: true }).mtimeNs, -1_500_000_001n, 'before 1970');
  for (const name of ['a/b', '..', '.']) {
    await t.rejects(btrfs.setTimesAt(dir, name, { mtime }), { code: 'EINVAL', syscall: 'utimensat' }, `${name}: one component only`);
  }
  await t.rejects(btrfs.setTimesAt(dir, 'missing', { mtime }), { code: 'ENOENT', path: join(root, 'missing') });
  closeSync(dir);
});

t.test('listBeneath: one call for a directory and its entries, never following', async (t) => {
  const root = join(mnt, 'list');
  mkdirSync(join(root, 'd', 'sub'), { recursive: true });
  writeFileSync(join(root, 'd', 'f'), 'abc');
  symlinkSync('/etc', join(root, 'd', 'etc'));
  execFileSync('mkfifo', [join(root, 'd', 'fifo')]);
  writeFileSync(Buffer.from(`${root}/d/bad-\xff`, 'latin1'), '');
  symlinkSync(join(root, 'd'), join(root, 'dlink'));
  const { self, entries } = await btrfs.listBeneath(root, 'd');
  t.equal(self.ino, statSync(join(root, 'd')).ino);
  const byName = new Map(entries.map((e) => [e.name.toString('latin1'), e]));
  t.same([...byName.keys()].sort(), ['bad-\xff', 'etc', 'f', 'fifo', 'sub']);
  const f = byName.get('f')!;
  t.match(f, { size: 3, nlink: 1, uid: 0 });
  t.equal(f.mtimeNs, statSync(join(root, 'd', 'f'), { bigint: true }).mtimeNs);
  t.equal(typeof f.ctimeNs, 'bigint');
  t.equal(byName.get('etc')!.mode & 0o170000, 0o120000, "a symlink's own lstat");
  t.equal(byName.get('etc')!.target!.toString(), '/etc');
  t.equal(byName.get('fifo')!.mode & 0o170000, 0o010000, 'a FIFO listed, not opened');
  t.equal(byName.get('sub')!.mode & 0o170000, 0o040000);
  t.equal(byName.get('f')!.target, undefined);
  const dir = await btrfs.openBeneath(root, '', 'directory');
  t.equal((await btrfs.listBeneath(dir, '')).entries.length, 2, 'the fd itself');
  await t.rejects(btrfs.listBeneath(dir, 'dlink'), { code: 'ENOTDIR', syscall: 'openat2', path: join(root, 'dlink') }, 'not through a symlink');
  await t.rejects(btrfs.listBeneath(dir, 'dlink/sub'), { code: 'ELOOP' });
  await t.rejects(btrfs.listBeneath(dir, '../list'), { code: 'EXDEV' });
  closeSync(dir);
});

t.test('readFileBeneath: a small file whole in one call, a big one left open', async (t) => {
  const root = join(mnt, 'readfile');
  mkdirSync(root);
  writeFileSync(join(root, 'small'), 'small content');
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'big'), Buffer.alloc(100_000, 9));
  writeFileSync(join(root, 'exact'), Buffer.alloc(1000, 1));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  symlinkSync('small', join(root, 'link'));
  const small = await btrfs.readFileBeneath(root, 'small', { max: 1000 });
  t.match(small, { eof: true, complete: true, fd: null });
  t.equal(small.data.toString(), 'small content');
  t.equal(small.stat.size, 13);
  t.match(await btrfs.readFileBeneath(root, 'empty', { max: 1000 }), { eof: true, complete: true, fd: null, data: Buffer.alloc(0) });
  const big = await btrfs.readFileBeneath(root, 'big', { max: 1000 });
  t.match(big, { eof: false, complete: false });
  t.equal(big.data.length, 1000);
  t.type(big.fd, 'number');
  t.equal(readAll(big.fd!).length, 99_000, 'the fd is open after the data');
  closeSync(big.fd!);
  const exact = await btrfs.readFileBeneath(root, 'exact', { max: 1000 });
  t.match(exact, { eof: false }, 'exactly max: its end is not seen yet');
  t.equal(readAll(exact.fd!).length, 0);
  closeSync(exact.fd!);
  await t.rejects(btrfs.readFileBeneath(root, 'fifo', { max: 10 }), { code: 'EINVAL' }, 'a FIFO is never opened');
  await t.rejects(btrfs.readFileBeneath(root, 'link', { max: 10 }), { code: 'ELOOP' });
  t.throws(() => btrfs.readFileBeneath(root, 'small', { max: 0 }), { code: 'ERR_INVALID_ARG_VALUE' });
});

t.test('writeFileAt: whole, with its metadata, renamed into place; never half, never over a directory', async (t) => {
  const root = join(mnt, 'writefile');
  mkdirSync(join(root, 'd', 'keep'), { recursive: true });
  writeFileSync(join(root, 'd', 'keep', 'x'), 'x');
  writeFileSync(join(root, 'd', 'old'), 'old');
  const dir = await btrfs.openBeneath(root, 'd', 'directory');
  const meta = { uid: 1234, gid: 4321, mode: 0o104755, mtime: 1_600_000_000_987_654_321n };
  const ino = await btrfs.writeFileAt(dir, 'new', Buffer.from('new content'), meta, { replace: false, tempPrefix: '.t.' });
  const st = statSync(join(root, 'd', 'new'), { bigint: true });
  t.equal(st.ino, ino);
  t.same([Number(st.uid), Number(st.gid), Number(st.mode) & 0o7777, st.mtimeNs], [1234, 4321, 0o4755, meta.mtime], 'owner, mode with setuid, mtime to the ns');
  t.equal(readFileSync(join(root, 'd', 'new'), 'utf8'), 'new content');
  await t.rejects(btrfs.writeFileAt(dir, 'old', Buffer.from('x'), meta, { replace: false, tempPrefix: '.t.' }), { code: 'EEXIST', syscall: 'renameat2' }, 'a new file never replaces');
  t.equal(readFileSync(join(root, 'd', 'old'), 'utf8'), 'old');
  await btrfs.writeFileAt(dir, 'old', Buffer.from('replaced'), meta, { replace: true, tempPrefix: '.t.' });
  t.equal(readFileSync(join(root, 'd', 'old'), 'utf8'), 'replaced');
  await t.rejects(btrfs.writeFileAt(dir, 'keep', Buffer.from('x'), meta, { replace: true, tempPrefix: '.t.' }), { code: 'EISDIR', syscall: 'renameat2' }, 'never over a directory');
  t.equal(readFileSync(join(root, 'd', 'keep', 'x'), 'utf8'), 'x');
  symlinkSync('/etc', join(root, 'd', 'sl'));
  await btrfs.writeFileAt(dir, 'sl', Buffer.from('file now'), meta, { replace: true, tempPrefix: '.t.' });
  t.equal(lstatSync(join(root, 'd', 'sl')).isFile(), true, 'a symlink is replaced, not written through');
  for (const bad of ['a/b', '..', '.', '']) {
    await t.rejects(btrfs.writeFileAt(dir, bad, Buffer.from('x'), meta, { replace: true, tempPrefix: '.t.' }), { code: 'EINVAL' }, `${JSON.stringify(bad)}: one component only`);
  }
  t.same(readdirSync(join(root, 'd')).filter((n) => n.startsWith('.t.')), [], 'no temporary file left, whatever failed');
  closeSync(dir);
  t.throws(() => btrfs.writeFileAt(dir, 'x', 'text' as never, meta, { replace: true, tempPrefix: '.t.' }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => btrfs.writeFileAt(dir, 'x', Buffer.alloc(0), { ...meta, mtime: 1 as never }, { replace: true, tempPrefix: '.t.' }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => btrfs.writeFileAt(dir, 'x', Buffer.alloc(0), meta, { replace: true, tempPrefix: 'a/' }), { code: 'ERR_INVALID_ARG_VALUE' });
});

t.test('writeFileAt with expect: replaces only the entry as it was listed, else nothing (null)', async (t) => {
  const root = join(mnt, 'writefile-expect');
  mkdirSync(root);
  const dir = await btrfs.openBeneath(root, '', 'directory');
  t.teardown(() => closeSync(dir));
  const meta = { uid: 0, gid: 0, mode: 0o644, mtime: 1_600_000_000_000_000_000n };
  const listed = async (name: string) => {
    const e = (await btrfs.listBeneath(dir, '')).entries.find((x) => x.name.toString() === name)!;
    return { ino: BigInt(e.ino), size: e.size, mtimeNs: e.mtimeNs };
  };
  writeFileSync(join(root, 'same'), 'as listed');
  const asListed = await listed('same');
  const ino = await btrfs.writeFileAt(dir, 'same', Buffer.from('replaced'), meta, { replace: true, tempPrefix: '.t.', expect: asListed });
  t.equal(typeof ino, 'bigint', 'unchanged since listed: replaced');
  t.equal(readFileSync(join(root, 'same'), 'utf8'), 'replaced');

  // Written after the listing, the same size: its mtime tells (the listing's stat makes the next write's time fine-grained).
  writeFileSync(join(root, 'written'), 'aaaa');
  const before = await listed('written');
  writeFileSync(join(root, 'written'), 'bbbb');
  t.equal(await btrfs.writeFileAt(dir, 'written', Buffer.from('remote'), meta, { replace: true, tempPrefix: '.t.', expect: before }), null, 'written since: null');
  t.equal(readFileSync(join(root, 'written'), 'utf8'), 'bbbb', 'and the write is kept');

  writeFileSync(join(root, 'grown'), 'a');
  const small = await listed('grown');
  writeFileSync(join(root, 'grown'), 'a longer one', { flag: 'r+' });
  await btrfs.setTimesAt(dir, 'grown', { mtime: small.mtimeNs }); // even with its old mtime put back
  t.equal(await btrfs.writeFileAt(dir, 'grown', Buffer.from('remote'), meta, { replace: true, tempPrefix: '.t.', expect: small }), null, 'another size: null');
  t.equal(readFileSync(join(root, 'grown'), 'utf8'), 'a longer one');

  writeFileSync(join(root, 'swapped'), 'old');
  const swapped = await listed('swapped');
  writeFileSync(join(root, 'other'), 'old');
  await btrfs.setTimesAt(dir, 'other', { mtime: swapped.mtimeNs });
  execFileSync('mv', [join(root, 'other'), join(root, 'swapped')]);
  t.equal(await btrfs.writeFileAt(dir, 'swapped', Buffer.from('remote'), meta, { replace: true, tempPrefix: '.t.', expect: swapped }), null, 'another inode of the same size and mtime: null');
  t.equal(readFileSync(join(root, 'swapped'), 'utf8'), 'old');

  writeFileSync(join(root, 'gone'), 'x');
  const gone = await listed('gone');
  execFileSync('rm', [join(root, 'gone')]);
  t.equal(await btrfs.writeFileAt(dir, 'gone', Buffer.from('remote'), meta, { replace: true, tempPrefix: '.t.', expect: gone }), null, 'removed since: null, nothing made');
  t.equal(lstatSync(join(root, 'gone'), { throwIfNoEntry: false }), undefined);

  symlinkSync('/etc/passwd', join(root, 'now-a-link'));
  t.equal(await btrfs.writeFileAt(dir, 'now-a-link', Buffer.from('remote'), meta, { replace: true, tempPrefix: '.t.', expect: gone }), null, 'a symlink there: null, not followed');
  t.equal(lstatSync(join(root, 'now-a-link')).isSymbolicLink(), true);

  t.same(readdirSync(root).filter((n) => n.startsWith('.t.')), [], 'no temporary file left');
  t.throws(() => btrfs.writeFileAt(dir, 'x', Buffer.alloc(0), meta, { replace: true, tempPrefix: '.t.', expect: { ino: 1, size: 0, mtimeNs: 0n } as never }), { code: 'ERR_INVALID_ARG_TYPE' });
});

t.test('argument checks', async (t) => {
  t.throws(() => btrfs.openBeneath(-1, 'x', 'read'), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => btrfs.openBeneath(1.5, 'x', 'read'), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => btrfs.openBeneath(mnt, 'x\0y', 'read'), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => btrfs.openBeneath(mnt, 'x', 'write' as never), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => btrfs.openBeneath(mnt, 'x', 'create', { mode: 0o10000 }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => btrfs.setTimesAt(3, 'x', { mtime: 5 as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  await t.rejects(btrfs.openBeneath(join(mnt, 'nope'), 'x', 'read'), { code: 'ENOENT', syscall: 'open' });
});

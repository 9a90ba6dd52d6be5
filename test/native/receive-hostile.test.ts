// receive() fed by an attacker (a daemon receives streams from the network):
// cut and corrupted kernel streams, and hand-made ones that try to leave the
// subvolume through symlinks, to open FIFOs and devices, to change files
// outside. Each is refused with a clear error, nothing outside the
// destination changes, and no subvolume is left behind.
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import t, { type Test } from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { btrfsProgs, mountBtrfs } from '../fixtures/btrfs.js';
import { listTree } from '../fixtures/daemon.js';
import { lsattr } from '../fixtures/oracle.js';
import { buildHistory, send } from '../fixtures/send-history.js';
import { Attr, Cmd, frames, SendStreamWriter, TEST_UUID, tlv } from '../fixtures/send-stream-writer.js';

const { mnt } = mountBtrfs(t, { size: 1024 ** 3 });
const src = join(mnt, 'src');
mkdirSync(src);
const { s1 } = buildHistory(src);
const stream = send(join(mnt, 's1.stream'), [s1], { proto: 2 });

// Outside the destination: what an escaping stream would touch.
const outside = join(mnt, 'outside');
mkdirSync(outside);
writeFileSync(join(outside, 'secret'), 'do not touch');
chmodSync(join(outside, 'secret'), 0o600);
const outsideBefore = () => ({ tree: listTree(outside), stat: statSync(join(outside, 'secret')), data: readFileSync(join(outside, 'secret'), 'utf8') });
const baseline = outsideBefore();

let n = 0;
function dest(): string {
  const d = join(mnt, 'dest', String(++n));
  mkdirSync(d, { recursive: true });
  return d;
}

/** Receives @bytes into a fresh destination; resolves to the error (or null) and checks nothing is left. */
async function attempt(t: Test, bytes: Buffer, what: string): Promise<Record<string, unknown> | null> {
  const d = dest();
  let error: Record<string, unknown> | null = null;
  try {
    await btrfs.receive(d, Readable.from([bytes]));
  } catch (err) {
    error = err as Record<string, unknown>;
  }
  t.same(readdirSync(d), [], `${what}: nothing left in the destination`);
  const now = outsideBefore();
  t.same([now.tree, now.data, now.stat.mode, now.stat.uid, now.stat.mtimeMs], [baseline.tree, baseline.data, baseline.stat.mode, baseline.stat.uid, baseline.stat.mtimeMs], `${what}: nothing outside changed`);
  return error;
}

t.test('a kernel stream cut at every command boundary and in the middle of each command', async (t) => {
  const cuts = frames(stream).flatMap((f) => [f.offset, Math.floor((f.offset + f.end) / 2)]).filter((c) => c > 0);
  for (const cut of cuts) {
    const err = await attempt(t, stream.subarray(0, cut), `cut at ${cut}`);
    t.match(err, { code: 'ERR_SEND_STREAM_TRUNCATED' }, `cut at ${cut}: truncated`);
  }
});

t.test('a flipped bit in each command', async (t) => {
  for (const f of frames(stream)) {
    if (f.kind !== 'command') continue;
    const bad = Buffer.from(stream);
    bad[f.end - 1]! ^= 0x10;
    const err = await attempt(t, bad, `command ${f.index}`);
    t.match(err, { code: 'ERR_SEND_STREAM_CHECKSUM', command: f.index }, `command ${f.index}: checksum`);
  }
});

const w = () => new SendStreamWriter(2).subvol('evil');
const mkfifo = (x: SendStreamWriter, path: string) => x.command(Cmd.MKFIFO, [tlv.str(Attr.PATH, path), tlv.u64(Attr.INO, 300), tlv.u64(Attr.RDEV, 0), tlv.u64(Attr.MODE, 0o10600)]);
const mknod = (x: SendStreamWriter, path: string, rdev: number) =>
  x.command(Cmd.MKNOD, [tlv.str(Attr.PATH, path), tlv.u64(Attr.INO, 301), tlv.u64(Attr.RDEV, rdev), tlv.u64(Attr.MODE, 0o20600)]);

t.test('paths through symlinks never leave the subvolume', async (t) => {
  const cases: Array<[string, SendStreamWriter]> = [
    ['create through a symlink to an outside directory', w().symlink('x', 257, outside).mkfile('x/evil', 258).end()],
    ['create through a symlink to ..', w().symlink('x', 257, '..').mkfile('x/evil', 258).end()],
    ['write through a symlinked directory', w().symlink('x', 257, outside).write('x/secret', 0, 'owned').end()],
    ['rename into a symlinked directory', w().mkfile('f', 258).symlink('x', 257, outside).rename('f', 'x/f').end()],
    ['link to an outside file', w().symlink('x', 257, outside).link('stolen', 'x/secret').end()],
    ['unlink through a symlink', w().symlink('x', 257, outside).unlink('x/secret').end()],
    ['truncate a symlink to an outside file', w().symlink('s', 257, join(outside, 'secret')).truncate('s', 0).end()],
    ['chmod a symlink to an outside file', w().symlink('s', 257, join(outside, 'secret')).chmod('s', 0o777).end()],
    ['write into a symlink to an outside file', w().symlink('s', 257, join(outside, 'secret')).write('s', 0, 'owned').end()],
    ['clone from a path through a symlink', w().mkfile('f', 258).symlink('x', 257, outside).command(Cmd.CLONE, [
      tlv.str(Attr.PATH, 'f'), tlv.u64(Attr.FILE_OFFSET, 0), tlv.u64(Attr.CLONE_LEN, 4096),
      tlv.uuid(Attr.CLONE_UUID, '0c3c4a1e-5f0d-4b7e-9a51-6f2b8d1e7c01'), tlv.u64(Attr.CLONE_CTRANSID, 7),
      tlv.str(Attr.CLONE_PATH, 'x/secret'), tlv.u64(Attr.CLONE_OFFSET, 0)]).end()],
  ];
  for (const [what, stream] of cases) {
    const err = await attempt(t, stream.toBuffer(), what);
    t.ok(err, `${what}: refused (${String(err?.message)})`);
    t.type(err?.command, 'number', `${what}: the error names the command`);
  }
});

t.test('metadata calls on a symlink act on the symlink, never on what it points to', async (t) => {
  const d = dest();
  const r = await btrfs.receive(d, Readable.from([w().symlink('s', 257, join(outside, 'secret')).chown('s', 1234, 1234).utimes('s', 1_000_000).end().toBuffer()]));
  const link = lstatSync(join(r.path, 's'));
  t.same([link.uid, link.mtimeMs], [1234, 1_000_000_000], 'the symlink got the owner and times');
  const secret = statSync(join(outside, 'secret'));
  t.same([secret.uid, secret.mtimeMs], [baseline.stat.uid, baseline.stat.mtimeMs], 'its target did not');
  const xattr = await attempt(t, w().symlink('s', 257, join(outside, 'secret')).setXattr('s', 'user.owned', 'yes').end().toBuffer(), 'xattr on a symlink');
  t.match(xattr, { code: 'EPERM', commandName: 'SET_XATTR' }, 'user xattrs cannot go on a symlink: refused, not set on the target');
});

t.test('FIFOs and devices made by the stream are never opened', async (t) => {
  const started = Date.now();
  const fifo = await attempt(t, mkfifo(w(), 'p').write('p', 0, 'blocked?').end().toBuffer(), 'write into a FIFO');
  t.match(fifo, { code: 'EINVAL', commandName: 'WRITE' });
  t.ok(Date.now() - started < 5000, 'did not hang on the FIFO');
  const dev = await attempt(t, mknod(w(), 'zero', 0x105).write('zero', 0, 'x').end().toBuffer(), 'write into a device node');
  t.match(dev, { code: 'EINVAL', commandName: 'WRITE' });
  // A WRITE at 0 waits one command (to be fused with a TRUNCATE to its end): its failure still names it.
  const held = await attempt(t, mknod(w(), 'zero', 0x105).write('zero', 0, 'x').truncate('zero', 1).end().toBuffer(), 'write then truncate a device node');
  t.match(held, { code: 'EINVAL', commandName: 'WRITE', command: 3 });
  const heldThenOther = await attempt(t, mkfifo(w(), 'p').write('p', 0, 'x').chmod('p', 0o600).end().toBuffer(), 'write into a FIFO, then chmod');
  t.match(heldThenOther, { code: 'EINVAL', commandName: 'WRITE', command: 3 });
  const trunc = await attempt(t, mknod(w(), 'null', 0x103).truncate('null', 0).end().toBuffer(), 'truncate a device');
  t.match(trunc, { code: 'EINVAL', commandName: 'TRUNCATE' });
  // A clone source in the subvolume being received (its own UUID) that is a device or a FIFO: refused before any open.
  const cloneFrom = (x: SendStreamWriter, path: string) =>
    x.mkfile('f', 258).command(Cmd.CLONE, [
      tlv.str(Attr.PATH, 'f'), tlv.u64(Attr.FILE_OFFSET, 0), tlv.u64(Attr.CLONE_LEN, 4096),
      tlv.uuid(Attr.CLONE_UUID, TEST_UUID), tlv.u64(Attr.CLONE_CTRANSID, 7), tlv.str(Attr.CLONE_PATH, path), tlv.u64(Attr.CLONE_OFFSET, 0)]).end();
  t.match(await attempt(t, cloneFrom(mknod(w(), 'zero', 0x105), 'zero').toBuffer(), 'clone from a device'), { code: 'EINVAL', commandName: 'CLONE' });
  t.match(await attempt(t, cloneFrom(mkfifo(w(), 'p'), 'p').toBuffer(), 'clone from a FIFO'), { code: 'EINVAL', commandName: 'CLONE' });
});

t.test('refusals of the reader end the receive cleanly too', async (t) => {
  const dotdot = await attempt(t, w().mkfile('../x', 257).end().toBuffer(), '..');
  t.match(dotdot, { name: 'SendStreamError', code: 'ERR_SEND_STREAM_INVALID', command: 2 });
  const later = await attempt(t, w().mkfile('ok', 257).write('ok', 0, 'fine').command(99).end().toBuffer(), 'unknown command after work');
  t.match(later, { code: 'ERR_SEND_STREAM_INVALID', command: 4 });
  const noEnd = await attempt(t, w().mkfile('ok', 257).toBuffer(), 'no END');
  t.match(noEnd, { code: 'ERR_SEND_STREAM_TRUNCATED' });
});

t.test('an input destroyed or failing half-way', async (t) => {
  const half = stream.subarray(0, Math.floor(stream.length / 2));
  for (const how of ['destroy', 'error'] as const) {
    const d = dest();
    const input = new PassThrough();
    const receiving = btrfs.receive(d, input);
    input.write(half);
    await new Promise((r) => setTimeout(r, 100));
    if (how === 'destroy') input.destroy();
    else input.destroy(new Error('the peer went away'));
    const err = await receiving.then(() => null, (e: Record<string, unknown>) => e);
    if (how === 'error') t.match(err, { message: 'the peer went away' }, 'the input\'s error is the error');
    else t.match(err, { code: 'ERR_RECEIVE_ABORTED' });
    t.same(readdirSync(d), [], `${how}: the partial subvolume is deleted`);
  }
});

t.test('ENOSPC half-way: the error says where, the partial subvolume goes', async (t) => {
  const small = mountBtrfs(t, { size: 128 * 1024 * 1024 });
  const big = join(src, 'big');
  btrfsProgs('subvolume', 'create', big);
  writeFileSync(join(big, 'data'), Buffer.alloc(200 * 1024 * 1024, 1));
  btrfsProgs('subvolume', 'snapshot', '-r', big, join(src, 'big-1'));
  const d = join(small.mnt, 'dest');
  mkdirSync(d);
  const err = await btrfs.receive(d, btrfs.send(join(src, 'big-1'))).then(() => null, (e: Record<string, unknown>) => e);
  t.match(err, { code: 'ENOSPC', name: 'BtrfsError' });
  t.type(err?.command, 'number');
  t.match(err?.commandName, /WRITE|ENCODED_WRITE/);
  t.same(readdirSync(d), [], 'nothing left');
});


t.test('IMMUTABLE or APPEND on the root (FILEATTR ""): dropped, so the subvolume can be renamed into place and deleted', async (t) => {
  const IMMUTABLE = 1 << 6;
  const APPEND = 1 << 7;
  const fileattr = (x: SendStreamWriter, path: string, flags: number) => x.command(Cmd.FILEATTR, [tlv.str(Attr.PATH, path), tlv.u64(Attr.FILEATTR, flags)]);
  for (const [what, flag, letter] of [['IMMUTABLE', IMMUTABLE, 'i'], ['APPEND', APPEND, 'a']] as const) {
    const d = dest();
    const stream = fileattr(fileattr(w().mkdir('d', 257).mkfile('d/f', 258).write('d/f', 0, 'kept'), '', flag), 'd', flag).end();
    const r = await btrfs.receive(d, Readable.from([stream.toBuffer()]));
    t.equal(r.name, 'evil', `${what}: received`);
    t.notMatch(lsattr(r.path), letter, `${what}: not on the root`);
    t.match(lsattr(join(r.path, 'd')), letter, `${what}: on another inode, applied at END as before`);
    await btrfs.deleteSubvolume(r.path);
    t.same(readdirSync(d), [], `${what}: deleted`);
  }
});

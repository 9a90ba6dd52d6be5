// receive() with reserveBytes: a stream may not fill the filesystem. What
// WRITE and FALLOCATE would allocate is refused before it is applied when it
// would leave less free space than the reserve (ERR_RECEIVE_NO_SPACE), other
// writers meanwhile are taken into account, a hole punch costs nothing, and
// a refused receive leaves nothing behind.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { btrfsProgs, mountBtrfs } from '../fixtures/btrfs.js';
import { Attr, Cmd, SendStreamWriter, tlv } from '../fixtures/send-stream-writer.js';
import { treeDiff } from '../fixtures/tree-digest.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const FALLOC_FL_KEEP_SIZE = 1;
const FALLOC_FL_PUNCH_HOLE = 2;

const { mnt } = mountBtrfs(t, { size: GiB });

let n = 0;
function dest(): string {
  const d = join(mnt, `dest${++n}`);
  mkdirSync(d);
  return d;
}

/** What statvfs says is free (f_bavail * f_frsize), after the cleaner is done with what earlier tests deleted. */
async function free(): Promise<number> {
  await btrfs.syncFilesystem(mnt);
  const s = statfsSync(mnt);
  return s.bavail * s.bsize;
}

const fallocate = (w: SendStreamWriter, path: string, mode: number, offset: number, size: number) =>
  w.command(Cmd.FALLOCATE, [tlv.str(Attr.PATH, path), tlv.u32(Attr.FALLOCATE_MODE, mode), tlv.u64(Attr.FILE_OFFSET, offset), tlv.u64(Attr.SIZE, size)]);

/** A stream writing @count chunks of @chunk bytes into one file, in order. */
function writes(count: number, chunk = 512 * 1024): SendStreamWriter {
  const w = new SendStreamWriter(2).subvol('big').mkfile('f', 257);
  const data = Buffer.alloc(chunk, 0x5a);
  for (let i = 0; i < count; i++) w.write('f', i * chunk, data);
  return w;
}

t.test('a FALLOCATE of 100 GiB is refused before fallocate is called; nothing is left', async (t) => {
  const d = dest();
  for (const mode of [0, FALLOC_FL_KEEP_SIZE]) {
    const stream = fallocate(new SendStreamWriter(2).subvol('huge').mkfile('f', 257), 'f', mode, 0, 100 * GiB).end();
    await t.rejects(btrfs.receive(d, Readable.from([stream.toBuffer()]), { reserveBytes: 64 * MiB }), {
      name: 'SendStreamError',
      code: 'ERR_RECEIVE_NO_SPACE',
      command: 3,
      commandName: 'FALLOCATE',
      message: /needs 100\.0 GiB but .* free, less than the 64\.0 MiB a receive must leave \(RECEIVE_RESERVE\)/,
    }, `mode ${mode}`);
    t.same(readdirSync(d), [], `mode ${mode}: nothing left`);
  }
});

t.test('a hole punch allocates nothing: not counted', async (t) => {
  const d = dest();
  const stream = fallocate(new SendStreamWriter(2).subvol('holes').mkfile('f', 257).write('f', 0, 'x'), 'f', FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 100 * GiB).end();
  const r = await btrfs.receive(d, Readable.from([stream.toBuffer()]), { reserveBytes: (await free()) - 8 * MiB });
  t.equal(r.name, 'holes');
});

t.test('WRITEs past the free space minus the reserve: refused at the write that would cross it', async (t) => {
  const d = dest();
  const room = 40 * MiB;
  const reserve = (await free()) - room;
  const err = await btrfs.receive(d, Readable.from([writes(128).end().toBuffer()]), { reserveBytes: reserve }).then(
    () => null,
    (e: Record<string, unknown>) => e,
  );
  t.match(err, { code: 'ERR_RECEIVE_NO_SPACE', commandName: 'WRITE', message: /would leave .* free on .*, less than the .* \(RECEIVE_RESERVE\)/ });
  // Commands 1 and 2 are SUBVOL and MKFILE: 80 writes of 512 KiB fit in 40 MiB, the 81st does not (a
  // few earlier if a second passed: statfs read again then also counts the metadata written meanwhile).
  const crossing = 2 + room / (512 * 1024) + 1;
  t.ok(Number(err?.command) <= crossing && Number(err?.command) > crossing - 16, `refused at command ${String(err?.command)}, the write past the limit is ${crossing}`);
  t.same(readdirSync(d), [], 'nothing left');
  const fine = await btrfs.receive(d, Readable.from([writes(64).end().toBuffer()]), { reserveBytes: (await free()) - room });
  t.equal(fine.name, 'big', '32 MiB of the same fit');
  await btrfs.deleteSubvolume(fine.path);
});

t.test('other writers meanwhile are taken into account (free space read again every second)', async (t) => {
  const d = dest();
  const reserve = (await free()) - 100 * MiB;
  const input = new PassThrough();
  const receiving = btrfs.receive(d, input, { reserveBytes: reserve }).then(
    () => null,
    (e: Record<string, unknown>) => e,
  );
  const all = writes(40).end().toBuffer(); // 20 MiB in all: well within the 100 MiB
  const half = all.length / 2;
  input.write(all.subarray(0, half));
  await sleep(200);
  // Another writer takes 150 MiB of the filesystem.
  const hog = join(mnt, 'hog');
  execFileSync('fallocate', ['-l', String(150 * MiB), hog]);
  t.teardown(() => execFileSync('rm', ['-f', hog]));
  await btrfs.syncFilesystem(mnt); // in statfs from now on
  await sleep(1200);
  input.end(all.subarray(half));
  t.match(await receiving, { code: 'ERR_RECEIVE_NO_SPACE', commandName: 'WRITE' });
  t.same(readdirSync(d), [], 'nothing left');
});

t.test('a kernel stream is received as usual with a reserve it fits in; none by default', async (t) => {
  const src = join(mnt, 'src');
  btrfsProgs('subvolume', 'create', src);
  execFileSync('dd', ['if=/dev/urandom', `of=${join(src, 'data')}`, 'bs=1M', 'count=16', 'status=none']);
  const snap = join(mnt, 'src-1');
  btrfsProgs('subvolume', 'snapshot', '-r', src, snap);
  const r = await btrfs.receive(dest(), btrfs.send(snap), { reserveBytes: 64 * MiB });
  t.equal(await treeDiff(r.path, snap), '', 'same tree');
  const r2 = await btrfs.receive(dest(), btrfs.send(snap));
  t.equal(await treeDiff(r2.path, snap), '', 'without the option: no reserve');
  await t.rejects(btrfs.receive(dest(), Readable.from([]), { reserveBytes: -1 }), { code: 'ERR_INVALID_ARG_VALUE' });
});

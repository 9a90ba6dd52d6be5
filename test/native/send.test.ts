// send(): the kernel's stream in a Node Readable. Other tools read what we
// send (btrfs receive makes the same tree), the bytes are the kernel's own
// (as btrfs send writes them), backpressure holds, and a stream destroyed
// half-way leaves no thread and no fd behind.
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { btrfsProgs, mountBtrfs } from '../fixtures/btrfs.js';
import { buildHistory, send as progsSend } from '../fixtures/send-history.js';
import { treeDiff } from '../fixtures/tree-digest.js';

const { mnt } = mountBtrfs(t, { size: 2 * 1024 ** 3, mountOptions: ['compress=zstd'] });
const src = join(mnt, 'src');
mkdirSync(src);
const { s1, s2 } = buildHistory(src);

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const threads = () => readdirSync('/proc/self/task').length;
const fds = () => readdirSync('/proc/self/fd').length;

t.test('the same bytes as btrfs send, for every protocol and option', async (t) => {
  const cases: Array<[string, btrfs.SendOptions, Parameters<typeof progsSend>[2]]> = [
    ['v1 full', { protocol: 1 }, { proto: 1 }],
    ['v2 full', { protocol: 2 }, { proto: 2 }],
    ['v2 compressed', { protocol: 2, compressed: true }, { proto: 2, compressed: true }],
    ['v2 incremental', { protocol: 2, parent: s1 }, { proto: 2, parent: s1 }],
    ['v1 incremental', { protocol: 1, parent: s1 }, { proto: 1, parent: s1 }],
  ];
  for (const [what, ours, theirs] of cases) {
    const snap = ours.parent ? s2 : s1;
    const mine = await collect(btrfs.send(snap, ours));
    const reference = progsSend(join(mnt, 'ref.stream'), [snap], theirs);
    t.ok(mine.equals(reference), `${what}: ${mine.length} bytes, identical to btrfs send's`);
  }
  t.equal(btrfs.sendProtocolMax(), Number(readFileSync('/sys/fs/btrfs/features/send_stream_version', 'utf8')));
});

t.test('btrfs receive reads what we send', async (t) => {
  const d = join(mnt, 'progs');
  mkdirSync(d);
  writeFileSync(join(mnt, 'ours-1.stream'), await collect(btrfs.send(s1)));
  writeFileSync(join(mnt, 'ours-2.stream'), await collect(btrfs.send(s2, { parent: s1 })));
  btrfsProgs('receive', '-q', '-f', join(mnt, 'ours-1.stream'), d);
  btrfsProgs('receive', '-q', '-f', join(mnt, 'ours-2.stream'), d);
  t.equal(await treeDiff(join(d, 's1'), s1), '');
  t.equal(await treeDiff(join(d, 's2'), s2, { ignoreRootTimes: true }), '');
});

t.test('backpressure: a reader that stops stops the kernel; memory stays bounded', async (t) => {
  const big = join(src, 'big');
  btrfsProgs('subvolume', 'create', big);
  writeFileSync(join(big, 'data'), Buffer.alloc(128 * 1024 * 1024, 3));
  btrfsProgs('property', 'set', join(big, 'data'), 'compression', 'none');
  const snap = join(src, 'big-1');
  btrfsProgs('subvolume', 'snapshot', '-r', big, snap);
  const stream = btrfs.send(snap, { protocol: 2 });
  let got = 0;
  let paused = false;
  stream.on('data', (c: Buffer) => {
    got += c.length;
    if (!paused && got > 4 * 1024 * 1024) {
      paused = true;
      stream.pause();
    }
  });
  const before = process.memoryUsage().rss;
  await sleep(1500);
  const held = got;
  t.ok(held < 8 * 1024 * 1024, `${held} bytes read while paused, not the whole 128 MB stream`);
  t.ok(process.memoryUsage().rss - before < 32 * 1024 * 1024, 'nothing piles up in memory');
  stream.resume();
  await finished(stream);
  t.ok(got > 128 * 1024 * 1024, `then the rest (${got} bytes)`);
});

t.test('destroyed half-way: the thread ends, no fd is left', async (t) => {
  const snap = join(src, 'big-1');
  await sleep(100); // threads of earlier tests settle
  const [threads0, fds0] = [threads(), fds()];
  for (let i = 0; i < 5; i++) {
    const stream = btrfs.send(snap);
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.destroy();
    await new Promise<void>((resolve) => stream.once('close', () => resolve()));
  }
  for (let i = 0; i < 100 && (threads() > threads0 || fds() > fds0); i++) await sleep(50);
  t.equal(threads(), threads0, 'no send thread left');
  t.equal(fds(), fds0, 'no fd left');
  await btrfs.deleteSubvolume(snap); // no send holds it any more (EPERM while one runs)
});

t.test('errors: a BtrfsError on the stream, argument errors at once', async (t) => {
  const rw = join(src, 'rw');
  btrfsProgs('subvolume', 'create', rw);
  const failed = async (s: NodeJS.ReadableStream) => collect(s).then(() => null, (e: unknown) => e);
  t.match(await failed(btrfs.send(rw)), { name: 'BtrfsError', code: 'EPERM', syscall: 'BTRFS_IOC_SEND', path: rw }, 'not read-only');
  t.match(await failed(btrfs.send(s2, { parent: rw })), { code: 'EPERM', path: rw }, 'a writable parent');
  t.match(await failed(btrfs.send(join(src, 'missing'))), { code: 'ENOENT', syscall: 'open' });
  t.throws(() => btrfs.send(s1, { protocol: 3 }), { name: 'TypeError', message: /protocol must be 1 or 2/ });
  t.throws(() => btrfs.send(s1, { protocol: 1, compressed: true }), { name: 'TypeError', message: /compressed needs protocol 2/ });
  t.throws(() => btrfs.send(s1, { parnet: s1 } as never), { message: /unknown option "parnet"/ });
});

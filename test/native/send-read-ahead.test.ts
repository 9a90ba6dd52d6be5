// send()'s read-ahead (native/core/send_prefetch.h): a thread reads the
// snapshot's file data ahead of the kernel's send. The stream is the same
// bytes with it or without it; it reads the extents send will read (all of a
// full stream's, only the new ones of an incremental one); it stays a bounded
// distance ahead of the reader; and it leaves the page cache as send alone
// does: the pages of files that had none cached are dropped again, those of
// a file the user had cached are kept.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs } from '../fixtures/btrfs.js';

const { mnt } = mountBtrfs(t, { size: 2 * 1024 ** 3 });
const MiB = 1 << 20;

/** Bytes of @files (paths) in the page cache, as fincore (util-linux) counts them. */
function resident(files: string[]): number {
  let total = 0;
  for (let i = 0; i < files.length; i += 500) {
    const out = execFileSync('fincore', ['-b', '-n', '-o', 'RES', ...files.slice(i, i + 500)]).toString();
    for (const line of out.trim().split('\n')) if (line.trim()) total += Number(line.trim());
  }
  return total;
}

function filesOf(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

type SendStream = Readable & { prefetched: number };

async function digest(stream: Readable): Promise<{ hash: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    h.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { hash: h.digest('hex'), bytes };
}

// 1,500 files of 4-20 KB (above the inline limit: real extents to read) in
// 15 directories, and one 24 MiB file: 46 MiB of data.
const src = join(mnt, 'src');
await btrfs.createSubvolume(src);
let dataBytes = 0;
for (let d = 0; d < 15; d++) {
  mkdirSync(join(src, `d${d}`));
  for (let f = 0; f < 100; f++) {
    const size = 4096 + ((d * 100 + f) * 997) % 16384;
    writeFileSync(join(src, `d${d}`, `f${f}`), Buffer.alloc(size, (d * 100 + f) % 251));
    dataBytes += size;
  }
}
writeFileSync(join(src, 'big'), Buffer.alloc(24 * MiB, 7));
dataBytes += 24 * MiB;
await btrfs.snapshot(src, join(mnt, 's1'), { readonly: true });
// The change: 100 files rewritten, one added.
for (let f = 0; f < 100; f++) writeFileSync(join(src, 'd3', `f${f}`), Buffer.alloc(8192, 99));
writeFileSync(join(src, 'new'), Buffer.alloc(2 * MiB, 3));
await btrfs.snapshot(src, join(mnt, 's2'), { readonly: true });
await btrfs.syncFilesystem(mnt);

let n = 0;
/** A new read-only snapshot of @from: new inodes, nothing of them in the page cache. */
async function coldCopy(from: string): Promise<string> {
  const path = join(mnt, `cold-${++n}`);
  await btrfs.snapshot(join(mnt, from), path, { readonly: true });
  return path;
}

t.test('the same stream with and without read-ahead; the extents send reads are read ahead; nothing is left cached', async (t) => {
  const snap = await coldCopy('s1');
  const plain = btrfs.send(snap, { readAhead: false }) as SendStream;
  const without = await digest(plain);
  t.equal(plain.prefetched, 0, 'readAhead: false reads nothing ahead');
  t.equal(resident(filesOf(snap)), 0, 'send alone leaves nothing cached (the kernel drops what it read)');
  const snap2 = await coldCopy('s1');
  const ahead = btrfs.send(snap2) as SendStream;
  const withIt = await digest(ahead);
  t.equal(withIt.bytes, without.bytes);
  // The two snapshots differ only by their UUIDs in the stream's first command: compare each against its own plain send.
  const again = await digest(btrfs.send(snap2, { readAhead: false }));
  t.equal(withIt.hash, again.hash, 'the bytes of the stream are the same with read-ahead');
  // Every file's extents but those send was already reading (left to it).
  t.ok(ahead.prefetched >= dataBytes / 2 && ahead.prefetched < dataBytes + 1500 * 4096 + MiB, `the files' data read ahead: ${ahead.prefetched} bytes for ${dataBytes} of data`);
  t.equal(resident(filesOf(snap2)), 0, 'and dropped again: nothing left cached');
});

t.test('an incremental stream: only the extents written after the parent are read ahead', async (t) => {
  const plain = await digest(btrfs.send(join(mnt, 's2'), { parent: join(mnt, 's1'), readAhead: false }));
  const stream = btrfs.send(join(mnt, 's2'), { parent: join(mnt, 's1') }) as SendStream;
  const ahead = await digest(stream);
  t.equal(ahead.hash, plain.hash, 'the same bytes');
  const changed = 100 * 8192 + 2 * MiB;
  // At most the changed extents; most of them (a file send is already reading is left to it).
  t.ok(stream.prefetched >= changed / 2 && stream.prefetched <= changed + 64 * 1024, `${stream.prefetched} bytes read ahead for ${changed} bytes changed`);
  t.equal(resident(filesOf(join(mnt, 's2'))), 0, 'nothing left cached');
});

t.test('a file the user had cached stays cached; compressed streams are not read ahead', async (t) => {
  const snap = await coldCopy('s1');
  const kept = join(snap, 'd7', 'f42');
  readFileSync(kept);
  const before = resident([kept]);
  t.ok(before > 0, 'the file is cached');
  await digest(btrfs.send(snap));
  t.equal(resident([kept]), before, 'still cached after the send');
  t.equal(resident(filesOf(snap).filter((f) => f !== kept)), 0, 'the others are not');
  const compressed = btrfs.send(await coldCopy('s1'), { protocol: 2, compressed: true }) as SendStream;
  await digest(compressed);
  t.equal(compressed.prefetched, 0, 'compressed extents are read from the disk by send: nothing to read ahead');
});

t.test('bounded: a reader that stops holds the read-ahead too; a stream destroyed half-way leaves no thread, fd or cached page', async (t) => {
  const threads = () => readdirSync('/proc/self/task').length;
  const fds = () => readdirSync('/proc/self/fd').length;
  const [threads0, fds0] = [threads(), fds()];
  const snap = await coldCopy('s1');
  const stream = btrfs.send(snap) as SendStream;
  await new Promise<void>((resolve) => stream.once('data', () => resolve()));
  stream.pause();
  await sleep(500);
  // The reader has at most its buffer and the pipe's (1 MiB each) plus what it took; 32 MiB ahead of that, one step more.
  t.ok(stream.prefetched <= 36 * MiB, `${stream.prefetched} bytes read ahead of a reader that stopped`);
  t.ok(stream.prefetched > 0, 'it did start');
  stream.destroy();
  await new Promise<void>((resolve) => stream.once('close', () => resolve()));
  for (let i = 0; i < 100 && (threads() > threads0 || fds() > fds0); i++) await sleep(50);
  // At most as many as before (a V8 or libuv helper thread may have ended meanwhile: a CI run saw one fewer).
  t.ok(threads() <= threads0, `no thread left (${threads()}, ${threads0} before)`);
  t.ok(fds() <= fds0, `no fd left (${fds()}, ${fds0} before)`);
  t.equal(resident(filesOf(snap)), 0, 'nothing read ahead is left cached');
  await btrfs.deleteSubvolume(snap);
});

t.test('sends in a row that end while read-ahead pages are being dropped: each one ends', async (t) => {
  // 12,000 files of 4 KiB: the stream is past the first ones by more than
  // the drop's lag long before its end, so drops run until the send stops.
  const many = join(mnt, 'many');
  await btrfs.createSubvolume(many);
  for (let d = 0; d < 40; d++) {
    mkdirSync(join(many, `d${d}`));
    for (let f = 0; f < 300; f++) writeFileSync(join(many, `d${d}`, `f${f}`), Buffer.alloc(4096, f));
  }
  const snap = join(mnt, 'many-snap');
  await btrfs.snapshot(many, snap, { readonly: true });
  await btrfs.syncFilesystem(mnt);
  const started = Date.now();
  let done = 0;
  for (let i = 0; i < 40 && Date.now() - started < 60_000; i++) {
    // A send that never ended would hold this loop: bounded, and said so.
    const ended = await Promise.race([digest(btrfs.send(snap)).then(() => true), sleep(20_000).then(() => false)]);
    if (!ended) {
      t.fail(`send ${i + 1} did not end within 20 s`);
      return;
    }
    done++;
  }
  t.ok(done >= 5, `${done} sends, each ended`);
  t.equal(resident(filesOf(snap)), 0, 'nothing left cached');
});

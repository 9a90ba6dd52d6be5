// The input side of receive(): the Buffers of the input are queued for the
// receiving thread and read where they are. Chunks of any size (empty, one
// byte, across command boundaries) give the same tree; the input is paused
// while the queue is full and resumed when it has room; what is not bytes
// is refused; a paused input is resumed; one already over or destroyed is
// an error, not a hang; and the Buffers are let go once read.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs } from '../fixtures/btrfs.js';
import { buildHistory, randomDataSnapshot, send } from '../fixtures/send-history.js';
import { treeDiff } from '../fixtures/tree-digest.js';

const { mnt } = mountBtrfs(t, { size: 1024 ** 3 });
const src = join(mnt, 'src');
mkdirSync(src);
const { s1 } = buildHistory(src);
const stream = send(join(mnt, 's1.stream'), [s1], { proto: 2 });

let n = 0;
function dest(): string {
  const d = join(mnt, 'dest', String(++n));
  mkdirSync(d, { recursive: true });
  return d;
}

/** @bytes cut into pieces whose sizes cycle through @sizes (0 included: empty chunks). */
function pieces(bytes: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    out.push(bytes.subarray(at, at + size));
    at += size;
  }
  return out;
}

t.test('chunks of any size, Buffers and plain Uint8Arrays, give the same tree', async (t) => {
  const cuts: Array<[string, Buffer[]]> = [
    ['one byte at a time for the first 4 KiB, then 64 KiB', [...pieces(stream.subarray(0, 4096), [1]), ...pieces(stream.subarray(4096), [65536])]],
    ['odd sizes and empty chunks', pieces(stream, [0, 3, 7, 4095, 0, 4097, 65537, 1])],
    ['the whole stream in one chunk', [stream]],
  ];
  for (const [what, chunks] of cuts) {
    const d = dest();
    // Every other chunk as a plain Uint8Array over the same memory.
    const mixed = chunks.map((c, i) => (i % 2 ? new Uint8Array(c.buffer, c.byteOffset, c.length) : c));
    const r = await btrfs.receive(d, Readable.from(mixed));
    t.equal(await treeDiff(r.path, s1), '', `${what}: same tree`);
  }
});

t.test('backpressure: the input is paused while the queue is full, resumed when it has room', async (t) => {
  const snap = randomDataSnapshot(src, 'big', 48);
  const bytes = send(join(mnt, 'big.stream'), [snap], { proto: 2 });
  // A producer that could hand out everything at once: only the queue's bound holds it back.
  const input = Readable.from(pieces(bytes, [256 * 1024]));
  let pauses = 0;
  let resumes = 0;
  input.on('pause', () => pauses++);
  input.on('resume', () => resumes++);
  const r = await btrfs.receive(dest(), input);
  t.ok(pauses > 0, `the input was paused ${pauses} times`);
  t.ok(resumes > pauses, `and resumed after each (${resumes} resumes, one of them the start)`);
  t.equal(readFileSync(join(r.path, 'data')).equals(readFileSync(join(snap, 'data'))), true, 'the data is whole');
});

t.test('several receives at once, each fed 32 KiB chunks as an ssh2 channel gives them', async (t) => {
  // Each has its own queue, thread and thread-safe function; the inputs trickle in on one event loop.
  const results = await Promise.all(
    [1, 2, 3, 4].map(async () => {
      const input = new PassThrough();
      const receiving = btrfs.receive(dest(), input);
      for (const c of pieces(stream, [32 * 1024])) {
        if (!input.write(c)) await new Promise((r) => input.once('drain', r));
        await new Promise((r) => setImmediate(r));
      }
      input.end();
      return receiving;
    }),
  );
  for (const r of results) t.equal(await treeDiff(r.path, s1), '', `${r.path}: same tree`);
});

t.test('an input that does not give bytes is refused, and nothing is left', async (t) => {
  for (const [what, input] of [
    ['strings (an encoding set)', Readable.from([stream]).setEncoding('latin1')],
    ['objects', Readable.from([{ not: 'bytes' }])],
    ['a Uint16Array', Readable.from([new Uint16Array(stream.buffer, stream.byteOffset, Math.floor(stream.length / 2))])],
  ] as const) {
    const d = dest();
    await t.rejects(btrfs.receive(d, input), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /must give Buffers/ }, what);
    t.same(readdirSync(d), [], `${what}: nothing left`);
  }
});

t.test('an input paused before the receive (a request line read off it first) is resumed', async (t) => {
  const input = new PassThrough();
  input.pause();
  input.unshift(stream.subarray(0, 10));
  input.end(stream.subarray(10));
  const r = await btrfs.receive(dest(), input);
  t.equal(await treeDiff(r.path, s1), '');
});

t.test('an input already over, or already destroyed, is an error at once', async (t) => {
  const ended = new PassThrough();
  ended.end();
  ended.resume();
  await new Promise((r) => ended.once('end', r));
  await t.rejects(btrfs.receive(dest(), ended), { code: 'ERR_SEND_STREAM_TRUNCATED', message: /empty/ }, 'ended: an empty input');
  const destroyed = new PassThrough();
  destroyed.destroy();
  await t.rejects(btrfs.receive(dest(), destroyed), { code: 'ERR_RECEIVE_ABORTED' }, 'destroyed: aborted');
});

t.test('the Buffers of the input are let go once received', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let made = 0;
  let collected = 0;
  const registry = new FinalizationRegistry(() => collected++);
  // Chunks made on demand and referenced by nothing but the stream and the receiver.
  function* chunks() {
    for (let at = 0; at < stream.length; at += 32 * 1024) {
      const c = Buffer.from(stream.subarray(at, at + 32 * 1024));
      registry.register(c, null);
      made++;
      yield c;
    }
  }
  const r = await btrfs.receive(dest(), Readable.from(chunks()));
  t.equal(await treeDiff(r.path, s1), '');
  for (let i = 0; i < 10 && collected < made; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.equal(collected, made, `${collected} of ${made} chunks collected`);
});

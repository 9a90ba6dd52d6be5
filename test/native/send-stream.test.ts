// dumpSendStream() against `btrfs receive --dump` on streams the kernel
// writes: full and incremental, v1 and v2, v2 with compressed data, two
// streams back to back, several subvolumes in one stream (-e), --no-data.
// BV_UPDATE_STREAM_FIXTURES=1 also refreshes test/fixtures/streams/ (the
// fuzzer's seeds and the hostile-input tests' material) from this run.
import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';

import { dumpSendStream, isSendStreamError, type DumpedCommand } from '../../src/btrfs/index.js';
import { mountBtrfs } from '../fixtures/btrfs.js';
import { canonicalDump, progsDump, type CanonicalCommand } from '../fixtures/receive-dump.js';
import { buildHistory, LONG_NAME, send, type SendOptions } from '../fixtures/send-history.js';
import { frames } from '../fixtures/send-stream-writer.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/streams/', import.meta.url));

const fx = mountBtrfs(t);
execFileSync('mount', ['-o', 'remount,compress=zstd', fx.mnt]);
const { s1, s2 } = buildHistory(fx.mnt);
const out = dirname(fx.image); // removed with the image at teardown

/** The oracle for any input: btrfs receive --dump reads one stream per call, so cut the input per stream. */
function progsDumpAll(stream: Buffer, name: string): CanonicalCommand[] {
  const headers = frames(stream).filter((f) => f.kind === 'header');
  return headers.flatMap((h, i) => {
    const file = join(out, `${name}.part${i}`);
    writeFileSync(file, stream.subarray(h.offset, headers[i + 1]?.offset ?? stream.length));
    return progsDump(file);
  });
}

const names = (cmds: DumpedCommand[]): Set<string> => new Set(cmds.map((c) => c.command));

function checkAgainstProgs(t: Test, stream: Buffer, name: string): DumpedCommand[] {
  const ours = dumpSendStream(stream);
  t.same(canonicalDump(ours), progsDumpAll(stream, name), 'the same commands and fields as btrfs receive --dump');
  const commandFrames = frames(stream).filter((f) => f.kind === 'command');
  t.same(ours.map((c) => [c.index, c.offset]), commandFrames.map((f) => [f.index, f.offset]), 'every command, numbered and placed');
  return ours;
}

const FULL = ['SUBVOL', 'MKFILE', 'MKDIR', 'MKNOD', 'MKFIFO', 'MKSOCK', 'SYMLINK', 'RENAME', 'LINK', 'SET_XATTR', 'CLONE', 'CHMOD', 'CHOWN', 'UTIMES', 'END'];
const INCREMENTAL = ['SNAPSHOT', 'RENAME', 'LINK', 'UNLINK', 'RMDIR', 'REMOVE_XATTR', 'WRITE', 'TRUNCATE', 'CHMOD', 'UTIMES', 'END'];

interface Variant {
  file: string;
  subvols: string[];
  options: SendOptions;
  /** Commands the stream must contain, so a comparison of two empty dumps cannot pass. */
  has: string[];
  hasNot: string[];
}

const variants: Variant[] = [
  { file: 'full-v1', subvols: [s1], options: { proto: 1 }, has: [...FULL, 'WRITE'], hasNot: ['ENCODED_WRITE'] },
  { file: 'full-v2', subvols: [s1], options: { proto: 2 }, has: [...FULL, 'WRITE'], hasNot: ['ENCODED_WRITE'] },
  { file: 'full-v2-compressed', subvols: [s1], options: { proto: 2, compressed: true }, has: [...FULL, 'ENCODED_WRITE'], hasNot: [] },
  { file: 'incr-v1', subvols: [s2], options: { proto: 1, parent: s1 }, has: INCREMENTAL, hasNot: ['FALLOCATE', 'FILEATTR'] },
  { file: 'incr-v2', subvols: [s2], options: { proto: 2, parent: s1 }, has: [...INCREMENTAL, 'FALLOCATE', 'FILEATTR'], hasNot: [] },
  { file: 'two-streams-v2', subvols: [s1, s2], options: { proto: 2 }, has: FULL, hasNot: ['SNAPSHOT'] },
  { file: 'multi-e-v2', subvols: [s1, s2], options: { proto: 2, endCmd: true }, has: FULL, hasNot: ['SNAPSHOT'] },
];

const streams = new Map<string, Buffer>();

for (const v of variants) {
  t.test(v.file, async (t) => {
    const stream = send(join(out, `${v.file}.bin`), v.subvols, v.options);
    streams.set(v.file, stream);
    const ours = checkAgainstProgs(t, stream, v.file);
    const present = names(ours);
    for (const c of v.has) t.ok(present.has(c), `has ${c}`);
    for (const c of v.hasNot) t.notOk(present.has(c), `has no ${c}`);
    const utimes = ours.filter((c) => c.command === 'UTIMES');
    t.ok(utimes.every((c) => (c.otime !== undefined) === (v.options.proto === 2)), 'UTIMES carries OTIME exactly in v2');
    if (!v.options.parent) {
      t.ok(ours.some((c) => c.path === LONG_NAME), 'a 255-byte name');
      t.ok(ours.some((c) => c.pathTo === 'sp ace') && ours.some((c) => c.pathTo === '\u00e9t\u00e9'), 'names with a space and UTF-8');
      t.ok(ours.some((c) => c.path === '' && c.command === 'CHOWN'), 'the subvolume root as the empty path');
      const big = ours.find((c) => c.path === 'huge' && (c.command === 'WRITE' || c.command === 'ENCODED_WRITE'));
      t.equal(big?.fileOffset, 2n ** 54n + 4096n, 'an offset beyond 2^53 is a bigint');
    }
  });
}

t.test('streams back to back and subvolumes in one stream', async (t) => {
  const two = dumpSendStream(streams.get('two-streams-v2')!);
  t.same([...new Set(two.map((c) => c.stream))], [1, 2], 'two streams');
  t.same(two.filter((c) => c.command === 'END').map((c) => c.stream), [1, 2], 'one END each');
  t.same(two.map((c) => c.index), two.map((_, i) => i + 1), 'commands numbered across streams');
  const e = dumpSendStream(streams.get('multi-e-v2')!);
  t.ok(e.every((c) => c.stream === 1), 'one stream header');
  t.same(e.filter((c) => c.command === 'SUBVOL').map((c) => c.path), ['s1', 's2'], 'two subvolumes');
  t.same(e.filter((c) => c.command === 'END').length, 1, 'one END');
  t.same(canonicalDump(e), canonicalDump(two), 'the same commands as the two streams');
});

t.test('a --no-data stream is refused where its first UPDATE_EXTENT is', async (t) => {
  const file = join(out, 'no-data.bin');
  const stream = send(file, [s1], { proto: 2, noData: true });
  const first = progsDump(file).findIndex((c) => c.op === 'update_extent');
  t.ok(first > 0, 'btrfs-progs sees update_extent commands');
  t.throws(() => dumpSendStream(stream), {
    code: 'ERR_SEND_STREAM_UNSUPPORTED',
    reason: 'stream has no file data (sent with --no-data)',
    command: first + 1,
    commandName: 'UPDATE_EXTENT',
  });
  try {
    dumpSendStream(stream);
  } catch (err) {
    t.ok(isSendStreamError(err));
  }
});

t.test('the committed kernel streams agree with btrfs-progs too', async (t) => {
  if (process.env.BV_UPDATE_STREAM_FIXTURES === '1') {
    for (const v of variants) copyFileSync(join(out, `${v.file}.bin`), join(FIXTURES, `${v.file}.bin`));
  }
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.bin') && !f.startsWith('crash-'));
  t.ok(files.length >= variants.length, 'one per variant at least');
  for (const f of files) {
    t.test(f, async (t) => {
      checkAgainstProgs(t, readFileSync(join(FIXTURES, f)), f);
    });
  }
});

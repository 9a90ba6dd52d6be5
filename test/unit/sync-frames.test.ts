// Sync's packed framing (protocol 2) read from a hostile peer: items, tree
// records and their entries, files records, statuses. Valid ones decode to
// what was encoded; random bytes, truncations and mutations of valid ones
// are refused with the decoders' own errors (the host fails with
// ERR_PROTOCOL), never a read past the end, a RangeError from Buffer, a
// hang, or more memory than the item's bound.
import { PassThrough } from 'node:stream';
import t from 'tap';

import { PACKED_STAT_BYTES, PackedEntries, PackedEntryError } from '../../src/btrfs/packed.js';
import { FrameReader } from '../../src/replication/frames.js';
import { fileRecords, ItemError, MAX_ITEM_BYTES, readItem, readStatus, statusItem, TAG_FILES, TAG_TREE, treeRecordHead, treeRecords } from '../../src/replication/sync-frames.js';
import { compareDirectory, countSkipped, LocalEntries, NameError, type TreeSide } from '../../src/replication/sync-tree.js';

/** A deterministic generator (xorshift32). */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return { next, int: (n: number) => next() % n, bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => next() & 0xff)) };
}

function stat(mode: number, size: number, mtime: bigint): Buffer {
  const b = Buffer.alloc(PACKED_STAT_BYTES);
  b.writeUInt32LE(mode, 0);
  b.writeUInt32LE(1000, 4);
  b.writeUInt32LE(1000, 8);
  b.writeUInt32LE(1, 12);
  b.writeBigUInt64LE(BigInt(size), 16);
  b.writeBigInt64LE(mtime, 24);
  b.writeBigUInt64LE(257n, 32);
  b.writeBigUInt64LE(42n, 40);
  return b;
}

function entry(name: string, mode: number, size: number, mtime: bigint, target?: string): Buffer {
  const n = Buffer.from(name);
  const parts = [stat(mode, size, mtime), Buffer.from([n.length]), n];
  if (target !== undefined) {
    const tb = Buffer.from(target);
    const len = Buffer.alloc(2);
    len.writeUInt16LE(tb.length);
    parts.push(len, tb);
  }
  return Buffer.concat(parts);
}

const T0 = 1_700_000_000_000_000_000n;
const FILE = 0o100644;
const DIR = 0o040755;
const LINK = 0o120777;

function record(path: string, entries: Buffer[]): Buffer {
  const body = Buffer.concat(entries);
  return Buffer.concat([treeRecordHead(Buffer.from(path), stat(DIR, 4096, T0), entries.length, body.length), body]);
}

/** A side that records what it is told. */
function side(): TreeSide & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    label: 'peer',
    ahead: (ns) => (ns > T0 + 10n ** 12n ? 'ahead' : null),
    aheadFrom: () => Number(T0),
    skip: (path, reason) => log.push(`skip ${path}: ${reason}`),
    kept: () => log.push('kept'),
    want: (e, local) => log.push(`want ${e.path}${local ? ' over' : ''}`),
    symlink: (e) => log.push(`symlink ${e.path} -> ${e.target}`),
  };
}

const peerErrors = (err: unknown) => err instanceof ItemError || err instanceof PackedEntryError || err instanceof NameError;

t.test('a tree item decodes to its records, compared with the local listing side by side', async (t) => {
  const payload = Buffer.concat([
    record('', [entry('a', FILE, 1, T0), entry('d', DIR, 0, T0), entry('fifo', 0o010644, 0, T0), entry('l', LINK, 1, T0, 'x'), entry('z', FILE, 5, T0 + 2n * 10n ** 12n)]),
    record('d', [entry('new', FILE, 3, T0)]),
  ]);
  const records = treeRecords(payload);
  t.same(
    records.map((r) => [r.path, r.entries.left]),
    [
      ['', 5],
      ['d', 1],
    ],
  );
  const local = Buffer.concat([entry('a', FILE, 1, T0), entry('b', FILE, 1, T0), entry('l', LINK, 1, T0, 'y')]);
  const s = side();
  compareDirectory(s, '', records[0]!.entries, new LocalEntries(new PackedEntries(local, 3)));
  t.same(s.log, ['kept', 'skip fifo: a fifo on peer: not copied', 'want l over'.replace('want', 'symlink').replace(' over', ' -> x'), 'skip z: ahead: not copied']);
  const s2 = side();
  compareDirectory(s2, 'd', records[1]!.entries, null);
  t.same(s2.log, ['want d/new']);
  t.equal(countSkipped('', treeRecords(payload)[0]!.entries), 4, 'all but the subdirectory, which counts itself');
});

t.test('names no path can carry are refused or skipped, never used', async (t) => {
  for (const bad of ['.', '..', 'a/b', 'a\0b']) {
    const r = treeRecords(record('', [entry(bad, FILE, 1, T0)]))[0]!;
    t.throws(() => compareDirectory(side(), '', r.entries, null), NameError, JSON.stringify(bad));
  }
  const raw = Buffer.concat([stat(FILE, 1, T0), Buffer.from([2, 0x61, 0xff])]);
  const s = side();
  compareDirectory(s, '', treeRecords(Buffer.concat([treeRecordHead(Buffer.alloc(0), stat(DIR, 0, T0), 1, raw.length), raw]))[0]!.entries, null);
  t.match(s.log, [/^skip a.: a name not UTF-8 on peer: not copied$/]);
  t.throws(() => treeRecords(record('../x', [])), ItemError, 'a record of a path that is not one');
  t.throws(() => treeRecords(record('/abs', [])), ItemError);
});

t.test('files items and statuses decode to what was encoded', async (t) => {
  const st = stat(FILE, 3, T0);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(3);
  const code = Buffer.from('ENOENT');
  const msg = Buffer.from('gone');
  const msgLen = Buffer.alloc(2);
  msgLen.writeUInt16LE(msg.length);
  const count = Buffer.alloc(4);
  count.writeUInt32LE(2);
  const payload = Buffer.concat([count, Buffer.from([0]), st, len, Buffer.from('abc'), Buffer.from([2, code.length]), code, msgLen, msg]);
  const recs = fileRecords(payload, 2);
  t.match(recs[0], { kind: 'whole', stat: { size: 3, mtimeNs: T0 }, length: 3 });
  t.equal(payload.toString('utf8', (recs[0] as { offset: number }).offset, (recs[0] as { offset: number }).offset + 3), 'abc');
  t.same(recs[1], { kind: 'unreadable', code: 'ENOENT', message: 'gone' });
  t.throws(() => fileRecords(payload, 1), ItemError, 'more files than were asked for');
  t.same(readStatus(statusItem(true)), { complete: true, why: '' });
  t.same(readStatus(statusItem(false, 'changed')), { complete: false, why: 'changed' });
});

t.test('fuzz: random and mutated items are refused with the decoders own errors, quickly', async (t) => {
  const r = rng(25);
  const valid = Buffer.concat([
    record('', [entry('a', FILE, 1, T0), entry('b', LINK, 1, T0, 'target'), entry('c', DIR, 0, T0)]),
    record('c', [entry('x', FILE, 1, T0), entry('y', 0o020644, 0, T0)]),
  ]);
  const started = Date.now();
  let refused = 0;
  for (let i = 0; i < 20_000; i++) {
    let input: Buffer;
    const how = i % 4;
    if (how === 0) input = r.bytes(r.int(300));
    else if (how === 1) input = valid.subarray(0, r.int(valid.length));
    else {
      input = Buffer.from(valid);
      for (let k = 0; k < 1 + r.int(4); k++) input[r.int(input.length)] = r.next() & 0xff;
    }
    try {
      for (const rec of treeRecords(input)) {
        const local = new LocalEntries(new PackedEntries(Buffer.concat([entry('a', FILE, 1, T0), entry('b', LINK, 1, T0, 't')]), 2));
        if (i % 2) compareDirectory(side(), rec.path, rec.entries, local);
        else countSkipped(rec.path, rec.entries);
      }
      fileRecords(input, 5);
      readStatus(input);
    } catch (err) {
      if (!peerErrors(err)) {
        t.fail(`input ${i} (${input.toString('hex').slice(0, 120)}): ${(err as Error).stack}`);
        break;
      }
      refused++;
    }
  }
  t.ok(refused > 10_000, `${refused} of 20,000 refused`);
  t.ok(Date.now() - started < 20_000, `in ${Date.now() - started} ms`);
});

t.test('readItem: a JSON line or an item; unknown tags and oversized lengths refused before the bytes are read', async (t) => {
  const input = new PassThrough();
  const reader = new FrameReader(input, 'peer');
  const head = (tag: number, n: number) => {
    const b = Buffer.alloc(5);
    b[0] = tag;
    b.writeUInt32LE(n, 1);
    return b;
  };
  input.write(Buffer.concat([head(TAG_TREE, 3), Buffer.from('abc'), Buffer.from('{"end":true}\n'), head(TAG_FILES, MAX_ITEM_BYTES + 1)]));
  t.match(await readItem(reader), { kind: 'item', tag: TAG_TREE, payload: Buffer.from('abc') });
  t.same(await readItem(reader), { kind: 'line', line: { end: true } });
  await t.rejects(readItem(reader), ItemError, 'an item longer than the bound, refused from its head');
  const other = new PassThrough();
  other.write(head(0x01, 1));
  await t.rejects(readItem(new FrameReader(other, 'peer')), ItemError, 'an unknown tag');
});

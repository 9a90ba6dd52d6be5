// The conformance harness can fail: receivers that are wrong in exactly one
// fact are reported with exactly that difference, and the documented
// exceptions (expected.ts) stay as narrow as their reasons.
import t from 'tap';

import {
  breakLink,
  corruptingReceiver,
  failingReceiver,
  flipByte,
  forgetfulReceiver,
  keepTimes,
  nudgeTime,
} from '../fixtures/conformance/faulty-receivers.js';
import { CANDIDATE_VS_REFERENCE, explain, SOURCE_VS_REFERENCE, type CandidateContext } from '../fixtures/conformance/expected.js';
import { conformance, runScenario, type Report } from '../fixtures/conformance/harness.js';
import { History, KiB, rand, zeros, type Op } from '../fixtures/conformance/history.js';
import { diffManifests, parseManifest, type Diff, type Manifest } from '../fixtures/conformance/manifest.js';
import { btrfsProgsReceiver } from '../fixtures/conformance/receivers.js';
import type { Scenario } from '../fixtures/conformance/scenario.js';

/** One snapshot holding one instance of every fact a corruption changes. */
const target: Scenario = {
  name: 'self-test-target',
  group: 'self-test',
  mirrors: 'self-test',
  summary: 'a file per kind of fact',
  build(h) {
    h.file('data', rand('data', 200 * KiB));
    h.file('zeros', rand('z1', 64 * KiB)).append('zeros', zeros(128 * KiB)).append('zeros', rand('z2', 64 * KiB));
    h.file('mode-file', 'm').file('times', 't').file('xattr-file', 'x').setxattr('xattr-file', 'user.k', 'v');
    h.file('a', 'linked').link('a', 'b').file('gone', 'to be removed').mkdir('d').file('d/owned', 'o').snapshot();
  },
};

const twoSnapshots: Scenario = {
  name: 'self-test-chain',
  group: 'self-test',
  mirrors: 'self-test',
  summary: 'a full and an incremental stream',
  build(h) {
    h.file('f', 'one').snapshot().append('f', 'two').snapshot();
  },
};

const ops = (build: (h: History) => unknown): Op[] => {
  const h = new History();
  build(h);
  return h.ops;
};

/** [path, key] of every finding's differences. */
const diffKeys = (r: Report): string[][] => r.findings.flatMap((f) => (f.diffs ?? []).map((d) => [d.path, d.key]));

const corruptions: { what: string; ops: Op[]; expect: string[][] }[] = [
  { what: 'one byte of data', ops: [keepTimes('data', flipByte('data', 1000))], expect: [['data', 'sha256']] },
  { what: 'one mode bit', ops: ops((h) => h.chmod('mode-file', 0o654)), expect: [['mode-file', 'mode']] },
  { what: 'one mtime nanosecond', ops: [nudgeTime('times', 'mtime')], expect: [['times', 'mtime']] },
  { what: 'one atime nanosecond', ops: [nudgeTime('times', 'atime')], expect: [['times', 'atime']] },
  { what: 'one xattr value', ops: ops((h) => h.setxattr('xattr-file', 'user.k', 'w')), expect: [['xattr-file', 'xattr:user.k']] },
  {
    what: 'one hard link broken',
    ops: [keepTimes('.', breakLink('b'))],
    expect: [
      ['a', 'links'],
      ['a', 'nlink'],
      ['b', 'links'],
      ['b', 'nlink'],
    ],
  },
  {
    what: 'zeros punched into a hole',
    ops: [keepTimes('zeros', ...ops((h) => h.punch('zeros', 64 * KiB, 128 * KiB)))],
    expect: [['zeros', 'data']],
  },
  { what: 'one owner', ops: ops((h) => h.chown('d/owned', 1, 0)), expect: [['d/owned', 'uid']] },
  {
    what: 'one file missing',
    ops: [keepTimes('.', ...ops((h) => h.unlink('gone')))],
    expect: [
      ['.', 'entries'],
      ['gone', '(path)'],
    ],
  },
  {
    what: 'one file too many',
    ops: [keepTimes('d', ...ops((h) => h.file('d/extra')))],
    expect: [
      ['d', 'entries'],
      ['d/extra', '(path)'],
    ],
  },
];

t.test('a receiver that is right passes: the fault injection itself changes nothing', async (t) => {
  const r = await conformance(target, 'v2', corruptingReceiver([]));
  t.same(r.findings, []);
});

for (const c of corruptions) {
  t.test(`${c.what}: reported as exactly that difference`, async (t) => {
    const r = await conformance(target, 'v2', corruptingReceiver(c.ops));
    t.same(
      r.findings.map((f) => [f.check, f.snapshot]),
      [['candidate', 'snap1']],
      'one finding: the candidate tree of snap1',
    );
    t.same(diffKeys(r), c.expect);
  });
}

t.test('runScenario fails the one assertion concerned, with a readable difference', async (t) => {
  const calls: { ok: boolean; message: string; findings?: string }[] = [];
  const recorder = {
    ok: (ok: boolean, message: string, extra: { findings?: string }) => calls.push({ ok, message, ...extra }),
    comment: () => undefined,
  };
  await runScenario(recorder, target, 'v1', corruptingReceiver(ops((h) => h.chmod('mode-file', 0o654))));
  const failed = calls.filter((c) => !c.ok);
  t.same(
    failed.map((c) => c.message),
    ['snap1: the receiver under test matches btrfs receive'],
  );
  t.equal(failed[0]?.findings, 'snap1:\n  mode-file  mode: reference 0644 | candidate 0654');
  t.ok(calls.length > 1 && calls.every((c) => c.ok || c === failed[0]), 'every other check passed');
});

t.test('a receiver that fails on the second stream is reported, and what it did not receive', async (t) => {
  const r = await conformance(twoSnapshots, 'v2', failingReceiver(1));
  const byCheck = (c: string) => r.findings.filter((f) => f.check === c);
  t.equal(byCheck('candidate-receive').length, 1);
  t.match(byCheck('candidate-receive')[0], { snapshot: 'snap2', message: /^stream 2 \(v2-2\.stream\): injected failure/ });
  t.same(byCheck('candidate'), [], 'snap1 was compared and matches');
  t.match(
    byCheck('candidate-subvolumes').map((f) => f.message),
    [/holds \[snap1\], expected exactly \[snap1, snap2\]/, /^snap2 \(stream 2\): not a subvolume/],
  );
  t.equal(r.findings.length, 3);
});

t.test('a receiver that forgets the received identity and the read-only flag is reported', async (t) => {
  const r = await conformance(target, 'v2', forgetfulReceiver);
  t.same(
    r.findings.map((f) => f.check),
    ['candidate-subvolumes', 'candidate-subvolumes', 'candidate-subvolumes'],
  );
  t.match(
    r.findings.map((f) => f.message),
    [
      /^snap1 \(stream 1\): received_uuid null, the stream says [0-9a-f-]{36}$/,
      /^snap1 \(stream 1\): stransid 0, the stream says \d+$/,
      /^snap1 \(stream 1\): not read-only$/,
    ],
  );
});

t.test('a scenario whose streams lack the command it claims to exercise is reported', async (t) => {
  const claims: Scenario = { ...twoSnapshots, name: 'self-test-claims-clone', streamHas: ['clone', 'v2:write'] };
  const r = await conformance(claims, 'v2', btrfsProgsReceiver);
  t.same(
    r.findings.map((f) => f.message),
    ['no v2 stream has a "clone" command'],
  );
});

// The documented exceptions, on hand-made manifests: each covers its case only.
/** 'path key value' lines (the value may hold spaces) -> a manifest. */
const m = (lines: string[]): Manifest => parseManifest(lines.map((l) => l.replace(' ', '\t').replace(' ', '\t')).join('\n'));
const fileWith = (extra: string[]): Manifest => m(['f type file', 'f mode 0644', 'f uid 0', 'f gid 0', ...extra]);
const ctx = (over: Partial<CandidateContext> = {}): CandidateContext => ({
  variant: 'v1',
  incremental: true,
  rootWindow: null,
  source: fileWith([]),
  parentSource: null,
  sourceRootMtime: undefined,
  ...over,
});
/** Names of the rules that explain the differences between @a and @b, sorted. */
const covered = (a: Manifest, b: Manifest, c: CandidateContext, rules = SOURCE_VS_REFERENCE): string[] =>
  [...explain(diffManifests(a, b), rules, c, a, b).expected.keys()].sort();

t.test('holes as zeros: only more data, only v1 (or prealloc), only incremental', async (t) => {
  const src = fileWith(['f data 0..4096 8192..12288']);
  const more = fileWith(['f data 0..12288']);
  const less = fileWith(['f data 0..4096']);
  t.same(covered(src, more, ctx()), ['v1 incremental: holes arrive as zeros']);
  t.same(covered(src, less, ctx()), [], 'missing data is never expected');
  t.same(covered(src, more, ctx({ variant: 'v2' })), [], 'v2 punches holes');
  t.same(covered(src, more, ctx({ incremental: false })), [], 'a full stream keeps holes');
  const pre = fileWith(['f data 0..4096', 'f prealloc 4096..8192']);
  const v2 = ctx({ variant: 'v2' });
  t.same(covered(pre, fileWith(['f data 0..8192']), v2), ['incremental: prealloc ranges arrive as zeros', 'prealloc extents not sent']);
  t.same(covered(pre, fileWith(['f data 0..12288']), v2), ['prealloc extents not sent'], 'zeros beyond the prealloc range are not');
});

t.test('top directory mtime: only ".", only mtime, only inside the receive window (or the source value)', async (t) => {
  const w = { from: 1_000_000_000_000n, to: 2_000_000_000_000n };
  const at = (v: string, path = '.') => m([`${path} type dir`, `${path} mtime ${v}`]);
  const src = at('5.000000000');
  t.same(covered(src, at('1500.000000000'), ctx({ rootWindow: w })), ['top directory mtime = receive time']);
  t.same(covered(src, at('2000.000000001'), ctx({ rootWindow: w })), [], 'outside the window');
  t.same(covered(src, at('1500.000000000'), ctx()), [], 'no orphan renames through the top directory');
  t.same(covered(at('5.000000000', 'd'), at('1500.000000000', 'd'), ctx({ rootWindow: w })), [], 'another directory');
  const cand = ctx({ rootWindow: w, sourceRootMtime: '5.000000000' });
  const ref = at('1400.000000000');
  const keeps = covered(ref, at('5.000000000'), cand, CANDIDATE_VS_REFERENCE);
  t.same(keeps, ['top directory mtime = receive time'], 'the candidate may keep the source value');
  t.same(covered(ref, at('6.000000000'), cand, CANDIDATE_VS_REFERENCE), [], 'but no other');
});

t.test('setuid lost: only the S_ISUID/S_ISGID bits, only when the owner changed and the mode did not', async (t) => {
  const src = fileWith(['f mode 4755', 'f uid 1000']);
  const ref = fileWith(['f mode 0755', 'f uid 1000']);
  const parent = fileWith(['f mode 4755', 'f uid 0']);
  t.same(covered(src, ref, ctx({ source: src, parentSource: parent })), ['setuid/setgid lost: CHOWN without CHMOD']);
  t.same(covered(src, ref, ctx({ source: src, parentSource: src })), [], 'owner unchanged');
  t.same(covered(src, fileWith(['f mode 0700', 'f uid 1000']), ctx({ source: src, parentSource: parent })), [], 'other bits differ');
  const chmodded = fileWith(['f mode 0755', 'f uid 0']);
  t.same(covered(src, ref, ctx({ source: src, parentSource: chmodded })), [], 'mode changed too (CHMOD is sent)');
});

t.test('an explained difference is inherited only with the same values on both sides', async (t) => {
  const d = (b: string): Diff => ({ path: 'f', key: 'mode', a: '4755', b });
  const previous = new Map([['f\0mode', { a: '4755', b: '0755', rule: 'setuid/setgid lost: CHOWN without CHMOD' }]]);
  const empty = m([]);
  const again = explain([d('0755')], SOURCE_VS_REFERENCE, ctx(), empty, empty, previous);
  t.same([...again.expected.keys()], ['setuid/setgid lost: CHOWN without CHMOD']);
  t.same(explain([d('0750')], SOURCE_VS_REFERENCE, ctx(), empty, empty, previous).unexpected, [d('0750')]);
});

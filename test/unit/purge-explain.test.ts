// The decisions of decidePurge (what `purge --explain` prints and what purge
// deletes): on random listings they delete exactly what the original's
// compute_purges does (a transcription of the Python, below, as the
// oracle), every candidate gets one decision, and the reasons name the rule
// that decided: the reference's worked example (section 2.7), the
// straddling slot, dates that do not parse, dates after the purge's time,
// protections that override the pattern.
import t from 'tap';

import { decidePurge, planPurge, type Protection, type PurgePlan } from '../../src/store/purge-plan.js';
import { formatMinutes, formatNaive } from '../../src/store/purge-rules.js';
import { DEFAULT_DTFORMAT as F, formatTimestamp, parseTimestamp } from '../../src/util/timestamp.js';

// Naive and real arithmetic agree in UTC: the oracle uses Date differences.
process.env.TZ = 'UTC';

const H = 3600e3;
const M = 60e3;
const NOW = new Date(2024, 0, 10, 12, 0, 0);
const snap = (volume: string, d: Date, host?: string) => `${volume}@${formatTimestamp(d, F)}${host ? `@${host}` : ''}`;
const plan = (names: string[], pattern: string | number[], now = NOW, protections: Protection[] = []): PurgePlan =>
  decidePurge({ names, volume: 'db', pattern, now, dtformat: F, protections });
const reasonOf = (p: PurgePlan, name: string) => p.decisions.find((d) => d.name === name);

/**
 * The original's compute_purges, line by line: durations descending; per
 * segment a fresh `last_timeframe`; skip if `age > p and p < max_age` or
 * `age < next`; delete if the timeframe repeats or `age > max_age`. Ages are
 * int(total_seconds) / 60; the timeframe is computed on whole seconds
 * (exactly what Python's float // gives for these ages, see purge-plan.ts).
 * Returns the list with its duplicates, in the original's order.
 */
function computePurges(names: string[], volume: string, minutes: number[], now: Date): string[] {
  const pattern = [...minutes].sort((a, b) => b - a);
  const maxAge = pattern[0]!;
  const out: string[] = [];
  const candidates = names.filter((n) => n.startsWith(`${volume}@`)).sort();
  for (let i = 0; i + 1 < pattern.length; i++) {
    const p = pattern[i]!;
    const next = pattern[i + 1]!;
    let last: number | null = null;
    for (const name of candidates) {
      const date = parseTimestamp(name.split('@')[1]!, F);
      if (date === null) continue;
      const seconds = Math.trunc((now.getTime() - date.getTime()) / 1000);
      const age = seconds / 60;
      if ((age > p && p < maxAge) || age < next) continue;
      const timeframe = Math.floor(seconds / (next * 60));
      if (timeframe === last || age > maxAge) out.push(name);
      last = timeframe;
    }
  }
  return out;
}

/** A small deterministic PRNG (mulberry32): the same cases at every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('on random listings the plan deletes what compute_purges deletes, in its order, and decides every candidate once', async (t) => {
  const rnd = random(23);
  const DURATIONS = [1, 5, 30, 60, 90, 120, 360, 1440, 2880, 10080, 43200];
  let deletions = 0;
  for (let run = 0; run < 400; run++) {
    const pattern = Array.from({ length: 2 + Math.floor(rnd() * 3) }, () => DURATIONS[Math.floor(rnd() * DURATIONS.length)]!);
    const max = Math.max(...pattern);
    const names = new Set<string>(['db@invalid', 'other@2024-01-01T00:00:00.000000']);
    const count = Math.floor(rnd() * 60);
    for (let i = 0; i < count; i++) {
      // Ages from 2 h in the future to 3 times the longest duration; some on whole minutes (bucket edges).
      const seconds = Math.floor((rnd() * 3.1 * max - 120) * 60);
      const age = rnd() < 0.3 ? Math.round(seconds / 60) * 60 : seconds;
      names.add(snap('db', new Date(NOW.getTime() - age * 1000), rnd() < 0.1 ? 'node2' : undefined));
    }
    const listing = [...names];
    const p = plan(listing, pattern);
    const expected = [...new Set(computePurges(listing, 'db', pattern, NOW))];
    const label = `run ${run}: ${pattern.map(formatMinutes).join(':')}, ${count} snapshots`;
    if (JSON.stringify(p.doomed) !== JSON.stringify(expected)) {
      t.same(p.doomed, expected, label);
      return;
    }
    const candidates = listing.filter((n) => n.startsWith('db@')).sort();
    t.same(p.decisions.map((d) => d.name), candidates, `${label}: one decision per candidate, by name`);
    t.same(
      p.decisions.filter((d) => d.decision === 'DELETE').map((d) => d.name).sort(),
      [...expected].sort(),
      `${label}: DELETE decisions are the deletions`,
    );
    t.same(planPurge({ names: listing, volume: 'db', pattern, now: NOW, dtformat: F }), expected, `${label}: planPurge is the plan's deletions`);
    deletions += expected.length;
  }
  t.ok(deletions > 1000, `the cases delete something (${deletions} deletions)`);
});

t.test("the reference's worked example: 2h:6h:1d over 28 hourly snapshots aged 0h50 .. 27h50", async (t) => {
  const byAge = Array.from({ length: 28 }, (_, h) => snap('db', new Date(NOW.getTime() - h * H - 50 * M)));
  const p = plan(byAge, '2h:6h:1d');
  const kept = [0, 1, 3, 5, 11, 17, 23].map((h) => byAge[h]!).sort();
  t.same(p.decisions.filter((d) => d.decision === 'KEEP').map((d) => d.name), kept, 'the reference keeps exactly these');
  t.equal(p.doomed.length, 21);
  const why = (h: number) => reasonOf(p, byAge[h]!)!;
  t.same(why(0), { name: byAge[0], decision: 'KEEP', reason: 'younger than 2h', rule: { kind: 'younger', than: '2h' } });
  t.same(why(1).reason, 'younger than 2h');
  t.same(why(27), { name: byAge[27], decision: 'DELETE', reason: "older than 1d, the pattern's last step", rule: { kind: 'older', than: '1d' } });
  t.same(why(24).rule, { kind: 'older', than: '1d' });
  const slot6 = { from: '2024-01-09T12:00:00', to: '2024-01-09T18:00:00' };
  t.same(why(23), {
    name: byAge[23],
    decision: 'KEEP',
    reason: 'kept for its 6h slot 2024-01-09T12:00:00 to 2024-01-09T18:00:00 (one per 6h between 6h and 1d old)',
    rule: { kind: 'slot', every: '6h', upTo: '1d', slot: slot6 },
  });
  t.same(why(22), {
    name: byAge[22],
    decision: 'DELETE',
    reason: `${byAge[23]} is kept for the same 6h slot 2024-01-09T12:00:00 to 2024-01-09T18:00:00 (one per 6h between 6h and 1d old)`,
    rule: { kind: 'same-slot', every: '6h', upTo: '1d', slot: slot6, kept: byAge[23] },
  });
  t.same(why(5).reason, 'kept for its 2h slot 2024-01-10T06:00:00 to 2024-01-10T08:00:00 (one per 2h between 2h and 6h old)');
  t.same(why(4).reason, `${byAge[5]} is kept for the same 2h slot 2024-01-10T06:00:00 to 2024-01-10T08:00:00 (one per 2h between 2h and 6h old)`);
  t.same(why(3).rule, { kind: 'slot', every: '2h', upTo: '6h', slot: { from: '2024-01-10T08:00:00', to: '2024-01-10T10:00:00' } });
});

t.test("the straddling slot: 60m:120m:180m:240m:300m on 20 hourly snapshots keeps 2 (the original's 18 deletions)", async (t) => {
  const byAge = Array.from({ length: 20 }, (_, h) => snap('db', new Date(NOW.getTime() - h * H)));
  const p = plan(byAge, '60m:120m:180m:240m:300m');
  t.same(p.decisions.filter((d) => d.decision === 'KEEP').map((d) => d.name), [byAge[1], byAge[0]]);
  // 7 h opens the 4h slot (4 h to 8 h old) and is older than 5 h: 5 h and 4 h, in that slot, go with it.
  const straddle = { kind: 'straddling-slot', every: '4h', upTo: '5h', first: byAge[7], longest: '5h', slot: { from: '2024-01-10T04:00:00', to: '2024-01-10T08:00:00' } };
  t.same(reasonOf(p, byAge[5]!)!.rule, straddle);
  t.same(reasonOf(p, byAge[4]!)!.rule, straddle, '4 h is kept by the next step, deleted by this one: deleted');
  t.equal(
    reasonOf(p, byAge[4]!)!.reason,
    `in the 4h slot 2024-01-10T04:00:00 to 2024-01-10T08:00:00 of ${byAge[7]}, which is older than 5h: a slot reaching past the pattern's last step keeps nothing (the original's rule)`,
  );
  // 3 h shares the next step's 3h slot with 4 h, which that step keeps but the first step deleted.
  t.same(reasonOf(p, byAge[3]!)!.rule, {
    kind: 'same-slot', every: '3h', upTo: '4h', kept: byAge[4], keptDeleted: true, slot: { from: '2024-01-10T06:00:00', to: '2024-01-10T09:00:00' },
  });
  t.match(reasonOf(p, byAge[3]!)!.reason, /^in the same 3h slot .* as db@\S+, which another step deletes \(one per 3h between 3h and 4h old; the original's rule\)$/);
});

t.test('undated names, zoned dates and dates after the time of the purge are kept, and say why', async (t) => {
  const future = snap('db', new Date(NOW.getTime() + 3 * H));
  const p = decidePurge({ names: ['db@invalid', 'db@2024-01-01 00:00+0100', future], volume: 'db', pattern: '1h:1d', now: NOW, dtformat: F });
  t.same(p.decisions.map((d) => [d.name, d.decision, d.rule]), [
    ['db@2024-01-01 00:00+0100', 'KEEP', { kind: 'undated', why: 'format' }],
    [future, 'KEEP', { kind: 'younger', than: '1h', future: true }],
    ['db@invalid', 'KEEP', { kind: 'undated', why: 'format' }],
  ]);
  t.equal(reasonOf(p, future)!.reason, 'younger than 1h (dated after the time of the purge)');
  t.equal(reasonOf(p, 'db@invalid')!.reason, 'no date in its name as DTFORMAT reads it: never purged');
  const zoned = decidePurge({ names: ['db@2020-01-01 00:00+0100'], volume: 'db', pattern: '1h:1d', now: NOW, dtformat: '%Y-%m-%d %H:%M%z' });
  t.same(zoned.decisions[0], {
    name: 'db@2020-01-01 00:00+0100', decision: 'KEEP', reason: 'its date carries a UTC offset: never purged (as the original)', rule: { kind: 'undated', why: 'offset' },
  });
});

t.test('a protection keeps a snapshot the pattern deletes, says why and what the pattern said; the others keep their decisions', async (t) => {
  const old = snap('db', new Date(NOW.getTime() - 100 * H));
  const older = snap('db', new Date(NOW.getTime() - 200 * H));
  const young = snap('db', new Date(NOW.getTime() - 10 * M));
  const protections: Protection[] = [
    { name: old, reason: "kept for peer node2's next incremental (the newest snapshot sent to it)", rule: { kind: 'replication', role: 'sent', peer: 'node2' } },
    { name: old, reason: 'in use by volume view', rule: { kind: 'in-use', volumes: ['view'] } },
    { name: young, reason: 'the newest state of the cluster volume (epoch 4)', rule: { kind: 'cluster-state', epoch: 4 } },
  ];
  const p = plan([older, old, young], '1h:1d', NOW, protections);
  t.same(p.doomed, [older]);
  t.same(reasonOf(p, old), {
    name: old,
    decision: 'KEEP',
    reason: "kept for peer node2's next incremental (the newest snapshot sent to it); in use by volume view (the pattern alone would delete it: older than 1d, the pattern's last step)",
    rule: { kind: 'replication', role: 'sent', peer: 'node2' },
    pattern: { decision: 'DELETE', reason: "older than 1d, the pattern's last step", rule: { kind: 'older', than: '1d' } },
    protections: protections.slice(0, 2).map(({ reason, rule }) => ({ reason, rule })),
  });
  t.same(reasonOf(p, young)!.reason, 'the newest state of the cluster volume (epoch 4)', 'kept by the pattern too: the protection is the reason, nothing overridden');
  t.same(reasonOf(p, young)!.pattern, { decision: 'KEEP', reason: 'younger than 1h', rule: { kind: 'younger', than: '1h' } });
  t.same(reasonOf(p, older)!.decision, 'DELETE');
  const bare = decidePurge({ names: [older, old], volume: 'db', pattern: '1h:1d', now: NOW, dtformat: F, keep: [old] });
  t.same([bare.doomed, reasonOf(bare, old)!.rule], [[older], { kind: 'protected' }], 'a name kept without a reason');
});

t.test('durations and slot bounds as people read them', async (t) => {
  t.same([1, 59, 60, 90, 1440, 2880, 10080, 20160, 43200, 525600, 1051200].map(formatMinutes), ['1m', '59m', '1h', '90m', '1d', '2d', '1w', '2w', '30d', '1y', '2y']);
  t.equal(formatNaive(Date.UTC(2024, 0, 10, 12, 0, 0, 999)), '2024-01-10T12:00:00');
  t.equal(formatNaive(-62135596800001), null, 'before year 1');
  t.equal(formatNaive(-9e18), null, 'beyond what Date holds');
  const p = plan([snap('db', new Date(NOW.getTime() - 600 * 24 * H))], '1y:3000y');
  t.same(p.decisions[0]!.rule, { kind: 'slot', every: '1y', upTo: '3000y', slot: { from: '2022-01-10T12:00:00', to: '2023-01-10T12:00:00' } }, 'y is 365 days');
  // A pattern of millennia: a slot that starts before year 1.
  const ancient = new Date(NOW.getTime());
  ancient.setFullYear(424);
  const r = plan([snap('db', ancient)], '1500y:2000y');
  t.match(r.decisions[0], { decision: 'KEEP', rule: { kind: 'slot', every: '1500y', slot: { from: null, to: /^05\d\d-/ } } });
  t.match(r.decisions[0]!.reason, /^kept for its 1500y slot before 0001-01-01T00:00:00 to 05\d\d-\d\d-\d\dT12:00:00 /);
});

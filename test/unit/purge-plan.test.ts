// The original's purge expectations (test.py: test_purge, test_compute_purge,
// test_compute_purge2) plus the worked example of the reference, section 2.7.
// Results marked "CPython" were checked against the original compute_purges.
import t from 'tap';
import { parsePurgePattern, planPurge } from '../../src/store/purge-plan.js';
import { DEFAULT_DTFORMAT as F, formatTimestamp } from '../../src/util/timestamp.js';

// Python's test builds names with naive arithmetic (now - timedelta(hours=h));
// in UTC real and naive arithmetic agree, so names built from instants match.
process.env.TZ = 'UTC';

const H = 3600e3;
const M = 60e3;
const at = (base: Date, ms: number): Date => new Date(base.getTime() + ms);
const name = (volume: string, d: Date): string => `${volume}@${formatTimestamp(d, F)}`;
const purge = (names: string[], pattern: string | number[], now: Date, keep?: Iterable<string>): string[] =>
  planPurge({ names, volume: 'vol', pattern, now, dtformat: F, keep });

/** test.py create_20_hourly_snapshots: ages 0..19 h, a fresh send marker, `@invalid`. */
function twentyHourly(t0: Date): string[] {
  const names = Array.from({ length: 20 }, (_, h) => name('vol', at(t0, -h * H)));
  return [...names, `${name('vol', t0)}@127.1.2.3`, 'vol@invalid'];
}
const survivors = (names: string[], deleted: string[]): string[] => names.filter((n) => !deleted.includes(n));
const T0 = new Date(2024, 0, 10, 12, 0, 0, 123);

t.test('parsePurgePattern', async (t) => {
  t.same(parsePurgePattern('2h:2h'), [120, 120], 'duplicates allowed');
  t.same(parsePurgePattern('60m:120m:300m:240m:180m'), [60, 120, 180, 240, 300], 'sorted, order-free');
  t.same(parsePurgePattern('4h:1d:2w:2y'), [240, 1440, 20160, 1051200], 'y is 365 days');
  t.same(parsePurgePattern('1y:1m'), [1, 525600], 'm is minutes');
  t.same(parsePurgePattern('007h:1d'), [420, 1440], 'leading zeros');
  const bad: Array<[unknown, string]> = [
    ['60m:plop:3000m', 'invalid purge pattern "60m:plop:3000m": "plop" is not <number><m|h|d|w|y>'],
    ['0h:1d', 'invalid purge pattern "0h:1d": "0h" must be greater than zero'],
    ['1d:000m', 'invalid purge pattern "1d:000m": "000m" must be greater than zero'],
    ['2h', 'invalid purge pattern "2h": needs at least two durations'],
    ['-2h:1d', 'invalid purge pattern "-2h:1d": "-2h" is not <number><m|h|d|w|y>'],
    ['2:1d', 'invalid purge pattern "2:1d": "2" is not <number><m|h|d|w|y>'],
    ['2x:1d', 'invalid purge pattern "2x:1d": "2x" is not <number><m|h|d|w|y>'],
    ['2H:1d', 'invalid purge pattern "2H:1d": "2H" is not <number><m|h|d|w|y>'],
    ['\u0662h:1d', 'invalid purge pattern "\u0662h:1d": "\u0662h" is not <number><m|h|d|w|y>'],
    [' 2h:1d', 'invalid purge pattern " 2h:1d": " 2h" is not <number><m|h|d|w|y>'],
    ['1.5h:1d', 'invalid purge pattern "1.5h:1d": "1.5h" is not <number><m|h|d|w|y>'],
    ['2h:', 'invalid purge pattern "2h:": "" is not <number><m|h|d|w|y>'],
    ['', 'invalid purge pattern "": "" is not <number><m|h|d|w|y>'],
    ['1h:99999999999999999y', 'invalid purge pattern "1h:99999999999999999y": "99999999999999999y" is too large'],
    [42, 'invalid purge pattern: expected a string like "4h:1d:2w", got number'],
  ];
  for (const [text, message] of bad) {
    t.throws(() => parsePurgePattern(text), { code: 'ERR_INVALID_PURGE_PATTERN', message }, String(text));
  }
});

t.test('test_purge: 20 hourly snapshots, a marker and an invalid name', async (t) => {
  const names = twentyHourly(T0);
  // Python's test purges right after creating the names, within the same second.
  for (const delay of [0, 500]) {
    const now = at(T0, delay);
    const first = purge(names, '2h:2h', now);
    t.equal(first.length, 18, `2h:2h deletes 18 (+${delay} ms)`);
    t.same(survivors(names, first), [names[0], names[1], names[20], 'vol@invalid'], 'kept: 0 h, 1 h, marker, invalid');
    t.same(purge(survivors(names, first), '2h:2h', now), [], 'a second run deletes nothing');

    const fifteen = purge(names, '2h:4h:8h:16h', now);
    t.equal(fifteen.length, 15, '2h:4h:8h:16h deletes 15');
    t.same(survivors(names, fifteen), [0, 1, 3, 7, 15].map((h) => names[h]).concat(names[20]!, 'vol@invalid'));

    const unsorted = purge(names, '60m:120m:300m:240m:180m', now);
    t.equal(unsorted.length, 18, 'unsorted pattern deletes 18');
    t.same(survivors(names, unsorted), [names[0], names[1], names[20], 'vol@invalid']);
    t.same(purge(names, [300, 60, 240, 180, 120], now), unsorted, 'minutes array, any order, same result');
  }
  // The 18 depends on that timing: from 1 s on, ages stop being whole hours
  // and the original (CPython, same inputs) deletes 16.
  t.equal(purge(names, '60m:120m:300m:240m:180m', at(T0, 1500)).length, 16);
  t.throws(() => purge(names, '60m:plop:3000m', T0), { code: 'ERR_INVALID_PURGE_PATTERN' });
  t.same(purge([], '2h:2h', T0), [], 'no snapshots: harmless');
});

t.test('only <volume>@ entries are candidates; unparsable ones are never deleted', async (t) => {
  const old = at(T0, -400 * H);
  const others = [name('vol2', old), name('vo', old), name('vol.x', old), name('other', old), 'vol', 'volume'];
  const unparsable = ['vol@invalid', 'vol@', 'vol@2023-02-29T00:00:00.000000', `vol@${formatTimestamp(old, '%Y%m%d')}`,
    `${name('vol', old)}x`, `vol@${formatTimestamp(old, F)}Z`];
  const deleted = purge([...others, ...unparsable, name('vol', old), `${name('vol', old)}@node2`], '1h:1d', T0);
  t.same(deleted, [name('vol', old), `${name('vol', old)}@node2`], 'send markers are candidates too');
  t.throws(() => planPurge({ names: [], volume: 'x@y', pattern: '1h:1d', now: T0, dtformat: F }), { code: 'ERR_INVALID_VOLUME_NAME' });
  t.throws(() => purge([], [60], T0), { code: 'ERR_INVALID_PURGE_PATTERN', message: /needs at least two/ });
  for (const p of [[0, 60], [-60, 60], [1.5, 60], [Number.NaN, 60]]) {
    t.throws(() => purge([], p, T0), { code: 'ERR_INVALID_PURGE_PATTERN', message: /positive whole number of minutes/ }, String(p));
  }
  // Snapshots dated after `now` (clock moved back) have negative ages: kept.
  t.same(purge([name('vol', at(T0, 5 * H)), name('vol', at(T0, 50 * H))], '1h:2h', T0), []);
});

t.test('worked example of section 2.7: 2h:6h:1d on ages 0h50..27h50', async (t) => {
  const now = T0;
  const ageOf = new Map<string, number>();
  const names = Array.from({ length: 28 }, (_, h) => {
    const n = name('vol', at(now, -(h * H + 50 * M)));
    ageOf.set(n, h);
    return n;
  });
  const deleted = purge(names, '2h:6h:1d', now);
  t.equal(deleted.length, 21);
  t.same(survivors(names, deleted).map((n) => ageOf.get(n)), [0, 1, 3, 5, 11, 17, 23], 'kept: 0h50 1h50 3h50 5h50 11h50 17h50 23h50');
  // Order of the original's list: segment (1d, 6h) oldest first, then (6h, 2h).
  t.same(deleted.map((n) => ageOf.get(n)), [27, 26, 25, 24, 22, 21, 20, 19, 18, 16, 15, 14, 13, 12, 10, 9, 8, 7, 6, 4, 2]);
});

t.test('test_compute_purge: 5000 hourly snapshots, half-hour offset, 1d:1w:4w:1y keep 40', async (t) => {
  const now = T0;
  const names = Array.from({ length: 5000 }, (_, h) => name('foobar', at(now, -(h * H + 30 * M))));
  const deleted = planPurge({ names, volume: 'foobar', pattern: [60 * 24, 60 * 24 * 7, 60 * 24 * 7 * 4, 60 * 24 * 365], now, dtformat: F });
  t.equal(names.length - deleted.length, 40);
  t.equal(new Set(deleted).size, deleted.length, 'no name twice');
});

t.test('test_compute_purge2: 3000 hourly snapshots purged every hour for 3000 hours end with 4', async (t) => {
  // As test.py: no new snapshot is added; the same set ages one hour per pass.
  const start = T0;
  let names = Array.from({ length: 3000 }, (_, h) => name('foobar', at(start, -h * H)));
  for (let h = 0; h < 3000; h++) {
    const deleted = new Set(planPurge({ names, volume: 'foobar', pattern: '1d:1w:4w:1y', now: at(start, h * H), dtformat: F }));
    names = names.filter((n) => !deleted.has(n));
  }
  t.equal(names.length, 4);
});

t.test('a name the original lists twice is returned once', async (t) => {
  // With the largest duration repeated, the second segment walks the
  // over-age snapshots again: CPython lists 07:00, 08:40, 09:30 twice each.
  const now = new Date(2024, 0, 10, 12, 0);
  const names = [300, 200, 150, 90, 30].map((m) => name('vol', at(now, -m * M)));
  t.same(purge(names, '1h:2h:2h', now), names.slice(0, 3));
});

t.test('keep: protected names are not returned and change no other decision', async (t) => {
  const now = T0;
  const names = Array.from({ length: 28 }, (_, h) => name('vol', at(now, -(h * H + 50 * M))));
  const base = purge(names, '2h:6h:1d', now);
  const byAge = (h: number): string => names[h]!;
  // 22h50 is deleted by the original; protecting it keeps it and nothing else.
  t.same(purge(names, '2h:6h:1d', now, [byAge(22)]), base.filter((n) => n !== byAge(22)));
  // 23h50 survives anyway. Dropping it from the walk would make 22h50 the
  // first of its bucket and wrongly keep it: the answer must not move.
  t.same(purge(names, '2h:6h:1d', now, new Set([byAge(23)])), base);
  // Over-age and several at once; unknown names are ignored.
  const keep = [byAge(27), byAge(4), byAge(13), 'vol@nope', 'other@x'];
  t.same(purge(names, '2h:6h:1d', now, keep), base.filter((n) => !keep.includes(n)));
  t.equal(purge(names, '2h:6h:1d', now, names).length, 0, 'all protected');
});

t.test('candidates are sorted by code point, as Python sorts str', async (t) => {
  // Both parse as the year 2020 (Python's \d is Unicode) and share a bucket:
  // the first by code point (fullwidth U+FF12 < U+1D7D0) is kept (CPython).
  // UTF-16 order would put the astral one first and delete the other.
  const fullwidth = 'vol@\uff12\uff10\uff12\uff10';
  const astral = `vol@${[...'2020'].map((c) => String.fromCodePoint(0x1d7ce + Number(c))).join('')}`;
  const deleted = planPurge({ names: [astral, fullwidth], volume: 'vol', pattern: [10080, 5256000], now: T0, dtformat: '%Y' });
  t.same(deleted, [astral]);
});

t.test('another DTFORMAT: name order, not time order, drives the walk (CPython)', async (t) => {
  const now = new Date(2024, 2, 2, 12, 0);
  const fmt = '%d.%m.%Y %H:%M';
  const names = Array.from({ length: 15 }, (_, i) => `vol@${formatTimestamp(at(now, -i * 5 * H), fmt)}`);
  const deleted = planPurge({ names, volume: 'vol', pattern: '6h:1d:2d', now, dtformat: fmt });
  t.same(deleted, ['vol@01.03.2024 06:00', 'vol@01.03.2024 11:00', 'vol@28.02.2024 14:00', 'vol@28.02.2024 19:00',
    'vol@29.02.2024 00:00', 'vol@29.02.2024 05:00', 'vol@29.02.2024 10:00', 'vol@29.02.2024 20:00']);
});

t.test('timestamps with a %z offset are never deleted (Python: naive - aware raises)', async (t) => {
  const fmt = '%Y-%m-%d %H:%M%z';
  const names = ['vol@2020-01-01 00:00+0000', 'vol@2020-01-01 00:00Z', 'vol@2020-01-01 00:00'];
  t.same(planPurge({ names, volume: 'vol', pattern: '1h:1d', now: T0, dtformat: fmt }), []);
  t.same(planPurge({ names, volume: 'vol', pattern: '1h:1d', now: T0, dtformat: '%Y-%m-%d %H:%M' }), ['vol@2020-01-01 00:00']);
});

t.test('ages are naive wall-clock differences, as in Python', async (t) => {
  process.env.TZ = 'Europe/Paris';
  try {
    // 04:30 CEST, 2 h of real time after 01:30 CET, but 3 h of wall clock.
    const now = new Date('2024-03-31T02:30:00Z');
    const names = ['vol@2024-03-31T01:30:00.000000', 'vol@2024-03-31T04:00:00.000000'];
    t.same(purge(names, '1h:150m', now), ['vol@2024-03-31T01:30:00.000000'], 'older than 150 min by the wall clock');
  } finally {
    process.env.TZ = 'UTC';
  }
});

// How fast is bench/purge.mjs's job (a timed test would only measure the machine's load).
t.test('10,000 names of one volume among others', async (t) => {
  const now = T0;
  const names = Array.from({ length: 10000 }, (_, i) => name('vol', at(now, -i * 17 * M)));
  names.push(...Array.from({ length: 2000 }, (_, i) => name('other', at(now, -i * H))));
  const deleted = purge(names, '1h:1d:1w:4w:1y', now);
  t.ok(deleted.length > 9000, `deletes most (${deleted.length})`);
  t.ok(deleted.every((n) => n.startsWith('vol@')), 'only the volume\'s own');
});

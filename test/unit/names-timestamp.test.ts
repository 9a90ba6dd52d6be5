// Expected values marked "CPython" were checked against Python 3's
// datetime.strftime/strptime, the functions the original names and purges with.
import t from 'tap';
import {
  isSendMarker,
  parseSnapshotName,
  snapshotName,
  validateHostName,
  validateSnapshotName,
  validateVolumeName,
} from '../../src/store/names.js';
import {
  checkDtformat,
  DEFAULT_DTFORMAT,
  formatTimestamp,
  parseTimestamp,
  parseTimestampParts,
  validateDtformat,
  wallClockParts,
  wholeSecondsBetween,
} from '../../src/util/timestamp.js';

// Local time is what names hold; pin it so expectations do not depend on the machine.
process.env.TZ = 'UTC';

const F = DEFAULT_DTFORMAT;
const parts = (text: string, fmt = F): number[] | null => {
  const p = parseTimestampParts(text, fmt);
  return p && [p.year, p.month, p.day, p.hour, p.minute, p.second, p.microsecond];
};

t.test('default DTFORMAT formats like datetime.now().strftime', async (t) => {
  t.equal(F, '%Y-%m-%dT%H:%M:%S.%f');
  t.equal(formatTimestamp(new Date(2024, 0, 10, 12, 0, 0, 123), F), '2024-01-10T12:00:00.123000');
  t.equal(formatTimestamp(new Date(2024, 11, 31, 23, 59, 59, 999), F), '2024-12-31T23:59:59.999000');
  t.equal(formatTimestamp(new Date(2024, 0, 1, 0, 0, 0, 1), F), '2024-01-01T00:00:00.001000');
});

t.test('every supported directive, C locale, naive %z/%Z (CPython)', async (t) => {
  const fmt = '%Y|%m|%d|%H|%M|%S|%f|%y|%j|%b|%B|%a|%A|%p|%I|%z|%Z|%%|T x';
  t.equal(formatTimestamp(new Date(2024, 11, 31, 0, 5, 9, 7), fmt),
    '2024|12|31|00|05|09|007000|24|366|Dec|December|Tue|Tuesday|AM|12|||%|T x');
  t.equal(formatTimestamp(new Date(2023, 6, 4, 13, 0, 0), fmt),
    '2023|07|04|13|00|00|000000|23|185|Jul|July|Tue|Tuesday|PM|01|||%|T x');
  t.equal(formatTimestamp(new Date(2023, 6, 9, 12, 0, 0), '%a %A %I%p'), 'Sun Sunday 12PM');
});

t.test('parse: the example of the reference, microseconds kept', async (t) => {
  t.same(parts('2024-01-10T12:00:00.123456'), [2024, 1, 10, 12, 0, 0, 123456]);
  const d = parseTimestamp('2024-01-10T12:00:00.123456', F);
  t.ok(d instanceof Date);
  t.equal(d!.getTime(), new Date(2024, 0, 10, 12, 0, 0, 123).getTime(), 'local time, ms precision');
  t.equal(parseTimestampParts('2024-01-10T12:00:00.123456', F)!.utcOffset, null, 'naive');
});

t.test('round trips', async (t) => {
  const dates = [new Date(2024, 0, 10, 12, 0, 0, 123), new Date(2024, 1, 29, 0, 0, 0), new Date(1999, 11, 31, 23, 59, 59, 999),
    new Date(2030, 6, 1, 12, 30, 5, 50)];
  const formats: Array<[string, number]> = [[F, 1], ['%Y%m%d%H%M%S', 1000], ['%d %B %Y %I.%M.%S %p', 1000],
    ['%a %d %b %y %H:%M:%S.%f', 1], ['%Y-%j %H%M%S', 1000]];
  for (const [fmt, resolution] of formats) {
    for (const d of dates) {
      const text = formatTimestamp(d, fmt);
      const back = parseTimestamp(text, fmt);
      t.equal(back?.getTime(), Math.floor(d.getTime() / resolution) * resolution, `${fmt}: ${text}`);
    }
  }
});

t.test('parse is strict like strptime and never throws on garbage', async (t) => {
  for (const bad of ['invalid', '', '2024-02-30T00:00:00.000000', '2023-02-29T00:00:00.0', '2024-01-10T12:00:60.0',
    '2024-01-10T24:00:00.0', '2024-13-10T12:00:00.0', '0000-01-10T12:00:00.0', '2024-01-10T12:00:00.1234567',
    '2024-01-10T12:00:00.123456x', ' 2024-01-10T12:00:00.1', '2024-01-10T12:00:00', '2024-01-10 12:00:00.1',
    '2024-1-10T12:00:00.', '20240110T120000.1', '2024-01-10T12:00:00.1\n', '2024-01-10T12:00:00.1@host']) {
    t.equal(parseTimestamp(bad, F), null, JSON.stringify(bad));
  }
  t.equal(parseTimestamp(42 as unknown as string, F), null, 'not a string');
  t.equal(parseTimestamp('\u0000\ud800', F), null, 'lone surrogate and NUL');
});

t.test('parse accepts what strptime accepts (CPython)', async (t) => {
  t.same(parts('2024-1-5T1:2:3.5'), [2024, 1, 5, 1, 2, 3, 500000], 'unpadded fields, %f right-padded');
  t.same(parts('2024-01-10t12:00:00.000001'), [2024, 1, 10, 12, 0, 0, 1], 'case-insensitive literal');
  t.same(parts('2024-01- 5T12:00:00.0'), [2024, 1, 5, 12, 0, 0, 0], 'space-padded %d');
  t.same(parts('\u0662\u0660\u0662\u0664-01-10T12:00:00.0'), [2024, 1, 10, 12, 0, 0, 0], 'Arabic-Indic digits: Python \\d is Unicode');
  t.same(parts('\u{1D7D0}\u{1D7CE}\u{1D7D0}\u{1D7D2}', '%Y'), [2024, 1, 1, 0, 0, 0, 0], 'astral digits');
  t.same(parts('2024   01', '%Y %m'), [2024, 1, 1, 0, 0, 0, 0], 'a format space matches a run of whitespace');
  t.equal(parts('202401', '%Y %m'), null, '... but at least one');
  t.equal(parts('68 69', '%y'), null, 'unconverted data remains');
  t.same(parts('68', '%y'), [2068, 1, 1, 0, 0, 0, 0], '%y pivot');
  t.same(parts('69', '%y'), [1969, 1, 1, 0, 0, 0, 0]);
  t.same(parts('12 am', '%I %p'), [1900, 1, 1, 0, 0, 0, 0], '12 AM is midnight, year defaults to 1900');
  t.same(parts('12 PM', '%I %p'), [1900, 1, 1, 12, 0, 0, 0]);
  t.same(parts('01 pm', '%I %p'), [1900, 1, 1, 13, 0, 0, 0]);
  t.same(parts('12', '%I'), [1900, 1, 1, 0, 0, 0, 0], '%I without %p is AM');
  t.same(parts('2024 060', '%Y %j'), [2024, 2, 29, 0, 0, 0, 0], '%j in a leap year');
  t.same(parts('2023 366', '%Y %j'), [2024, 1, 1, 0, 0, 0, 0], 'day 366 of a common year rolls over');
  t.same(parts('2024-12-25 001', '%Y-%m-%d %j'), [2024, 1, 1, 0, 0, 0, 0], '%j overrides month and day');
  t.same(parts('Fri 10 JANUARY 2024', '%a %d %B %Y'), [2024, 1, 10, 0, 0, 0, 0], 'weekday names are not checked against the date');
  t.equal(parts('Fry 10 January 2024', '%a %d %B %Y'), null, 'but must be names');
  t.equal(parts('02-29', '%m-%d'), null, 'year-less Feb 29 fails, as in Python');
  t.same(parts('02-28', '%m-%d'), [1900, 2, 28, 0, 0, 0, 0]);
  t.same(parts('2024 UTC', '%Y %Z'), [2024, 1, 1, 0, 0, 0, 0]);
  t.equal(parseTimestampParts('2024 gmt', '%Y %Z')!.utcOffset, null, '%Z does not make it aware');
  t.equal(parts('2024 CET', '%Y %Z'), null, 'only UTC and GMT (the plugin container has no TZ)');
  t.same(parts('10%', '%d%%'), [1900, 1, 10, 0, 0, 0, 0], '%% is a literal %');
  t.equal(parts('10', '%d%%'), null);
});

t.test('%z: aware timestamps (CPython)', async (t) => {
  const fmt = '%Y-%m-%dT%H:%M%z';
  t.equal(parseTimestampParts('2024-01-10T12:00+0130', fmt)!.utcOffset, 5400);
  t.equal(parseTimestampParts('2024-01-10T12:00-05:30', fmt)!.utcOffset, -19800);
  t.equal(parseTimestampParts('2024-01-10T12:00+01:00:30.5', fmt)!.utcOffset, 3630);
  t.equal(parseTimestampParts('2024-01-10T12:00Z', fmt)!.utcOffset, 0);
  t.equal(parseTimestamp('2024-01-10T12:00+0130', fmt)!.toISOString(), '2024-01-10T10:30:00.000Z', 'the stated instant');
  for (const bad of ['2024-01-10T12:00z', '2024-01-10T12:00+2400', '2024-01-10T12:00+01:0030', '2024-01-10T12:00+0100:30', '2024-01-10T12:00']) {
    t.equal(parseTimestampParts(bad, fmt), null, bad);
  }
  t.equal(formatTimestamp(new Date(2024, 0, 10, 12), fmt), '2024-01-10T12:00', 'formats empty: naive');
});

t.test('DTFORMAT errors and validation', async (t) => {
  t.throws(() => formatTimestamp(new Date(), '%Y-%Q'), { code: 'ERR_INVALID_DTFORMAT', message: /"%Q" is not supported/ });
  t.throws(() => parseTimestamp('2024', '%Y%'), { code: 'ERR_INVALID_DTFORMAT', message: /stray "%"/ });
  t.throws(() => formatTimestamp(new Date(NaN), F), TypeError);
  t.equal(parseTimestamp('2024 2024', '%Y %Y'), null, 'a repeated directive never parses (Python: regex error)');
  t.equal(validateDtformat(F), F);
  t.equal(checkDtformat(F), F, 'the default passes the whole check (validateDtformat takes it on trust)');
  t.equal(validateDtformat('%Y%m%d-%H%M%S'), '%Y%m%d-%H%M%S');
  for (const [bad, why] of [['', /non-empty/], ['%Y/%m/%d', /"\/" cannot appear/], ['%Y@%m', /"@" cannot appear/],
    ['%Y-%m-%d%z', /does not parse back/], ['%Y %Z', /does not parse back/], ['%Y %Y', /does not parse back/], ['%c', /not supported/]] as const) {
    t.throws(() => validateDtformat(bad), { code: 'ERR_INVALID_DTFORMAT', message: why }, JSON.stringify(bad));
  }
  t.throws(() => validateDtformat(7), { code: 'ERR_INVALID_DTFORMAT' });
});

t.test('snapshot names and send markers', async (t) => {
  const date = new Date(2024, 0, 10, 12, 0, 0, 123);
  t.equal(snapshotName('db', date, F), 'db@2024-01-10T12:00:00.123000');
  t.throws(() => snapshotName('x@y', date, F), { code: 'ERR_INVALID_VOLUME_NAME' });
  t.throws(() => snapshotName('a'.repeat(250), date, F), { code: 'ERR_INVALID_SNAPSHOT_NAME', message: /bytes long/ });

  const s = parseSnapshotName('db@2024-01-10T12:00:00.123456', F)!;
  t.same({ ...s, date: s.date?.getTime() }, { volume: 'db', timestamp: '2024-01-10T12:00:00.123456', host: null,
    date: new Date(2024, 0, 10, 12, 0, 0, 123).getTime() });
  const m = parseSnapshotName('db@2024-01-10T12:00:00.123456@127.1.2.3', F)!;
  t.equal(m.timestamp, '2024-01-10T12:00:00.123456');
  t.equal(m.host, '127.1.2.3');
  t.ok(m.date);
  const inv = parseSnapshotName('vol@invalid', F)!;
  t.same([inv.volume, inv.timestamp, inv.date, inv.host], ['vol', 'invalid', null, null]);
  t.equal(parseSnapshotName('novolume', F), null);
  t.same(parseSnapshotName('a@b@c@d', F)!.host, 'c@d');

  t.ok(isSendMarker('db@2024-01-10T12:00:00.123456@node2'));
  for (const no of ['db@2024-01-10T12:00:00.123456', 'db', 'a@b@c@d', 'a@@c', 'a@b@', '@b@c']) t.notOk(isSendMarker(no), no);
});

t.test('volume names', async (t) => {
  for (const ok of ['a', 'db_1.data-2', '0', 'A.b', 'a'.repeat(255), 'a..b']) t.equal(validateVolumeName(ok), ok);
  const refused: Array<[unknown, RegExp]> = [
    ['../x', /contains "\/"/], ['a/b', /contains "\/"/], ['x@y', /contains "@"/],
    ['', /is empty/], ['a'.repeat(300), /300 bytes long, the limit is 255/], ['é'.repeat(150), /300 bytes long/],
    ['a\0b', /NUL/], ['é', /contains "é": only letters, digits/], ['a b', /contains " "/], ['.', /reserved/],
    ['..', /reserved/], ['-a', /must start with a letter or a digit/], ['_a', /must start with a letter or a digit/],
    [42, /must be a string, got number/], [null, /got null/], [undefined, /got undefined/], ['a\nb', /contains "\\n"/],
  ];
  for (const [name, why] of refused) {
    t.throws(() => validateVolumeName(name), { code: 'ERR_INVALID_VOLUME_NAME', message: why }, JSON.stringify(name) ?? String(name));
  }
});

t.test('snapshot name validation', async (t) => {
  for (const ok of ['db@2024-01-10T12:00:00.123456', 'db@invalid', 'db@x@127.1.2.3', `a@${'b'.repeat(253)}`]) {
    t.equal(validateSnapshotName(ok), ok);
  }
  const refused: Array<[unknown, RegExp]> = [
    ['db', /has no "@"/], ['db@', /nothing after "@"/], ['@x', /volume name is empty/], ['db@a/b', /contains "\/"/],
    ['x/y@z', /volume name "x\/y" contains "\/"/], ['db@a\0', /NUL/], [`a@${'b'.repeat(254)}`, /256 bytes long/],
    ['.x@y', /must start with a letter/], ['../x@y', /volume name "..\/x" contains/], [1, /must be a string/],
  ];
  for (const [name, why] of refused) {
    t.throws(() => validateSnapshotName(name), { code: 'ERR_INVALID_SNAPSHOT_NAME', message: why }, String(name));
  }
});

t.test('host names', async (t) => {
  for (const ok of ['localhost', 'node-2.example.com', '127.1.2.3', '::1', 'fe80::1', '2001:db8::8a2e:370:7334', 'wronghost.mlf',
    'remote_host', 'a_b', 'a'.repeat(63), `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`]) {
    t.equal(validateHostName(ok), ok, ok);
  }
  const refused: Array<[unknown, RegExp]> = [
    ['root@host', /without a user/], ['-oProxyCommand=x', /label "-oProxyCommand=x"/], ['_', /label "_"/],
    ['host name', /not a DNS name/], ['', /empty/], ['999.1.1.1', /neither a valid IPv4/], ['1234', /neither a valid IPv4/],
    ['[::1]', /not a DNS name/], ['fe80::1%eth0', /not a DNS name/], ['a..b', /label ""/], ['host.', /label ""/],
    [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`, /254 characters long/],
    ['a'.repeat(64), /1 to 63/], ['a-.b', /label "a-"/], [null, /must be a string/],
  ];
  for (const [host, why] of refused) {
    t.throws(() => validateHostName(host), { code: 'ERR_INVALID_HOST', message: why }, String(host));
  }
});

t.test('naive wall-clock seconds, truncated toward zero like int(total_seconds())', async (t) => {
  const p = (text: string) => parseTimestampParts(text, F)!;
  t.equal(wholeSecondsBetween(p('2024-01-10T12:00:00.0'), p('2024-01-10T11:00:00.000001')), 3599);
  t.equal(wholeSecondsBetween(p('2024-01-10T11:00:00.000001'), p('2024-01-10T12:00:00.0')), -3599, 'toward zero');
  t.equal(wholeSecondsBetween(p('2024-01-11T00:00:00.5'), p('2024-01-10T23:59:59.9')), 0);
  t.equal(wholeSecondsBetween(p('9999-12-31T23:59:59.999999'), p('0001-01-01T00:00:00.0')), 315537897599);
  // Across the spring-forward change: Python's naive subtraction sees 3 h, not 2.
  process.env.TZ = 'Europe/Paris';
  try {
    const now = wallClockParts(new Date('2024-03-31T02:30:00Z')); // 04:30 CEST
    t.same([now.hour, now.minute], [4, 30]);
    t.equal(wholeSecondsBetween(now, p('2024-03-31T01:30:00.0')), 3 * 3600);
  } finally {
    process.env.TZ = 'UTC';
  }
});

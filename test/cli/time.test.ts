// --now values: ISO 8601 read as local time, or at the zone given.
import t from 'tap';

import { parseIsoTime } from '../../src/cli/time.js';

t.test('local forms', async (t) => {
  t.same(parseIsoTime('2024-01-10'), new Date(2024, 0, 10));
  t.same(parseIsoTime('2024-01-10T12:34'), new Date(2024, 0, 10, 12, 34));
  t.same(parseIsoTime('2024-01-10 12:34:56'), new Date(2024, 0, 10, 12, 34, 56));
  t.same(parseIsoTime('2024-01-10T12:34:56.5'), new Date(2024, 0, 10, 12, 34, 56, 500));
  t.same(parseIsoTime('2024-01-10T12:34:56.123456'), new Date(2024, 0, 10, 12, 34, 56, 123), 'microseconds cut to ms');
  t.same(parseIsoTime('2024-02-29T00:00:00'), new Date(2024, 1, 29), 'a leap day');
});

t.test('with a zone', async (t) => {
  t.same(parseIsoTime('2024-01-10T11:00:00Z'), new Date(Date.UTC(2024, 0, 10, 11)));
  t.same(parseIsoTime('2024-01-10T12:00:00+01:00'), new Date(Date.UTC(2024, 0, 10, 11)));
  t.same(parseIsoTime('2024-01-10T06:30:00-0430'), new Date(Date.UTC(2024, 0, 10, 11)));
  t.same(parseIsoTime('2024-01-10T23:30:00.250-02:00'), new Date(Date.UTC(2024, 0, 11, 1, 30, 0, 250)));
});

t.test('anything else is refused', async (t) => {
  for (const text of [
    '', 'now', 'yesterday', '10/01/2024', '2024-1-10', '2024-01-10T12', '2024-01-10Z', '2024-02-30', '2023-02-29',
    '2024-13-01', '2024-01-10T24:00:00', '2024-01-10T12:60:00', '2024-01-10T12:00:60', '2024-01-10T12:00:00+01',
    '0099-01-01', ' 2024-01-10', '2024-01-10T12:00:00.', '1704888000',
  ]) {
    t.equal(parseIsoTime(text), null, JSON.stringify(text));
  }
});

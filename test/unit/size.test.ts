// Sizes as users write them (util/size.ts): -o size=, resize, RECEIVE_RESERVE.
import t from 'tap';

import { formatSize, parseSize } from '../../src/util/size.js';

t.test('parseSize: bytes, binary units, case-insensitive, i?B suffix', async (t) => {
  const cases: Array<[string, number | null]> = [
    ['0', 0],
    ['1048576', 1048576],
    ['1K', 1024],
    ['10G', 10 * 1024 ** 3],
    ['10g', 10 * 1024 ** 3],
    ['512 M', 512 * 1024 ** 2],
    ['64MiB', 64 * 1024 ** 2],
    ['2TB', 2 * 1024 ** 4],
    [' 3M ', 3 * 1024 ** 2],
    ['1.5G', null],
    ['-1', null],
    ['10X', null],
    ['G', null],
    ['', null],
    ['1e9', null],
  ];
  for (const [text, bytes] of cases) t.equal(parseSize(text), bytes, JSON.stringify(text));
  t.notOk(Number.isSafeInteger(parseSize('99999999999999999999')), 'too large to be exact: not a safe integer');
  t.notOk(Number.isSafeInteger(parseSize('9000T')));
});

t.test('formatSize: the largest unit, two decimals at most', async (t) => {
  t.equal(formatSize(0), '0');
  t.equal(formatSize(1000), '1000');
  t.equal(formatSize(1536), '1.5K');
  t.equal(formatSize(10 * 1024 ** 3), '10G');
  t.equal(formatSize(8191 * 1024 ** 4), '8191T');
  t.equal(formatSize(100 * 1024 ** 2 + 12345), '100.01M');
});

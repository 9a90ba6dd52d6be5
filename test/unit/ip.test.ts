// Our IP literal checks agree with node:net's on a spread of inputs.
import { isIPv4 as netV4, isIPv6 as netV6 } from 'node:net';
import t from 'tap';

import { isIPv4, isIPv6 } from '../../src/util/ip.js';
import { randomHex } from '../../src/util/random-hex.js';

const samples = [
  '127.0.0.1', '0.0.0.0', '255.255.255.255', '256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', ' 1.2.3.4', '1.2.3.4 ',
  '::', '::1', 'fe80::1', '2001:db8::8a2e:370:7334', '::ffff:1.2.3.4', '1::2::3', '12345::', 'g::1', ':::', '1:2:3:4:5:6:7:8',
  '1:2:3:4:5:6:7:8:9', '[::1]', 'fe80::1%eth0', 'localhost', '', '1.2.3.4:80', '::1.2.3', 'FE80::ABCD',
];

t.test('isIPv4 and isIPv6 match node:net (zones excluded on purpose)', async (t) => {
  for (const s of samples) {
    t.equal(isIPv4(s), netV4(s), `v4 ${JSON.stringify(s)}`);
    t.equal(isIPv6(s), netV6(s) && !s.includes('%'), `v6 ${JSON.stringify(s)}`);
  }
});

t.test('randomHex', async (t) => {
  t.match(randomHex(12), /^[0-9a-f]{12}$/);
  t.match(randomHex(3), /^[0-9a-f]{3}$/);
  t.equal(new Set(Array.from({ length: 1000 }, () => randomHex(12))).size, 1000);
});

// Peer specs (what users type as <host>) and the transfer helpers: rate
// parsing, the progress line, and the Meter's count and bandwidth limit.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';

import { checkPeerSpec, parsePeer } from '../../src/replication/peer.js';
import { Meter, parseRate, progressLine, type Progress } from '../../src/replication/transfer.js';

t.test('peer specs: name, name:port, user@, IPv6 in brackets; the label never has the user', async (t) => {
  const cases: Array<[string, { user: string; host: string; port: number; label: string }]> = [
    ['node2', { user: 'root', host: 'node2', port: 1122, label: 'node2' }],
    ['node2:1122', { user: 'root', host: 'node2', port: 1122, label: 'node2' }],
    ['node2:2222', { user: 'root', host: 'node2', port: 2222, label: 'node2:2222' }],
    ['admin@node2', { user: 'admin', host: 'node2', port: 1122, label: 'node2' }],
    ['admin@node2.example.com:22', { user: 'admin', host: 'node2.example.com', port: 22, label: 'node2.example.com:22' }],
    ['10.0.0.2', { user: 'root', host: '10.0.0.2', port: 1122, label: '10.0.0.2' }],
    ['fd00::2', { user: 'root', host: 'fd00::2', port: 1122, label: '[fd00::2]' }],
    ['[fd00::2]:2222', { user: 'root', host: 'fd00::2', port: 2222, label: '[fd00::2]:2222' }],
    ['[fd00::2]', { user: 'root', host: 'fd00::2', port: 1122, label: '[fd00::2]' }],
  ];
  for (const [spec, want] of cases) {
    const p = parsePeer(spec, 1122);
    t.same({ user: p.user, host: p.host, port: p.port, label: p.label }, want, spec);
    t.equal(p.spec, spec);
  }
  t.equal(parsePeer('node2:2222', 2222).label, 'node2', 'the default port is left out of the label');
});

t.test('bad peer specs: ERR_INVALID_HOST naming the spec and what is wrong', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['', /^host "": expected name, name:port/],
    [7, /^host "7": expected name/],
    ['a@b@c', /^host "a@b@c": more than one "@"$/],
    ['-x@node2', /^host "-x@node2": user "-x" is not a user name$/],
    ['@node2', /^host "@node2": user "" is not a user name$/],
    ['node2:', /port "" must be a number from 1 to 65535/],
    ['node2:0', /port "0" must be a number from 1 to 65535/],
    ['node2:65536', /port "65536" must be a number from 1 to 65535/],
    ['node2:22x', /port "22x"/],
    ['[node2]:22', /"node2" in brackets is not an IPv6 address/],
    ['bad_host!', /^host "bad_host!" is not a DNS name or an IP address/],
    ['root@bad host', /^host "root@bad host": "bad host" is not a DNS name/],
    ['x'.repeat(300), /is 300 characters long/],
    ['node2;rm -rf /', /is not a DNS name/],
    ['node2 -oProxyCommand=x', /is not a DNS name/],
  ];
  for (const [spec, err] of cases) {
    t.throws(() => parsePeer(spec, 1122), { code: 'ERR_INVALID_HOST', message: err }, String(spec).slice(0, 40));
  }
  t.throws(() => parsePeer('node2', 0), { code: 'ERR_INVALID_HOST', message: /^host "node2": no port: give name:port \(SSH_PORT is 0 here/ });
  t.equal(parsePeer('node2:22', 0).port, 22, 'an explicit port works without a default');
  t.same(checkPeerSpec('admin@node2'), { user: 'admin', host: 'node2', port: undefined }, 'syntax only: no default port needed');
});

t.test('parseRate: bytes per second, K/M/G powers of 1024', async (t) => {
  const cases: Array<[string, number | null]> = [
    ['512', 512],
    ['512K', 512 * 1024],
    ['10M', 10 * 1024 * 1024],
    ['10m', 10 * 1024 * 1024],
    ['1.5M', 1.5 * 1024 * 1024],
    ['2G', 2 * 1024 ** 3],
    ['10MB', 10 * 1024 * 1024],
    ['10MiB/s', 10 * 1024 * 1024],
    [' 20M ', 20 * 1024 * 1024],
    ['0', null],
    ['0.5', null],
    ['-1M', null],
    ['10T', null],
    ['fast', null],
    ['', null],
    ['1e6', null],
  ];
  for (const [text, want] of cases) t.equal(parseRate(text), want, JSON.stringify(text));
});

t.test('progressLine: bytes, total, rate, elapsed, ETA only while running', async (t) => {
  const p: Progress = { bytes: 12.5 * 1024 * 1024, total: 40 * 1024 * 1024, elapsedMs: 2000, rate: 6.25 * 1024 * 1024, done: false };
  t.equal(progressLine(p), '12.5 MiB of ~40.0 MiB, 6.3 MiB/s, 2s, ETA 4s');
  t.equal(progressLine({ ...p, done: true }), '12.5 MiB of ~40.0 MiB, 6.3 MiB/s, 2s');
  t.equal(progressLine({ ...p, total: null }), '12.5 MiB, 6.3 MiB/s, 2s');
  t.equal(progressLine({ bytes: 100, total: 50, elapsedMs: 0, rate: 0, done: false }), '100 B of ~50 B, 0 B/s, 0s', 'no ETA past the estimate or without a rate');
  t.equal(progressLine({ bytes: 0, total: null, elapsedMs: 3_725_000, rate: 0, done: true }), '0 B, 0 B/s, 1h02m');
  t.match(progressLine({ ...p, elapsedMs: 125_000 }), /, 2m05s, /);
});

/** Pushes `total` bytes through `meter` in 16 KiB chunks; resolves with what came out. */
async function through(meter: Meter, total: number): Promise<number> {
  let out = 0;
  const chunk = Buffer.alloc(16 * 1024, 7);
  let left = total;
  await pipeline(
    new Readable({
      read() {
        if (left <= 0) return void this.push(null);
        const n = Math.min(left, chunk.length);
        left -= n;
        this.push(chunk.subarray(0, n));
      },
    }),
    meter,
    new Writable({
      write(c: Buffer, _e, cb) {
        out += c.length;
        cb();
      },
    }),
  );
  return out;
}

t.test('Meter counts every byte and reports progress, the last one done', async (t) => {
  const reports: Progress[] = [];
  const meter = new Meter({ total: 1 << 20, onProgress: (p) => reports.push(p), intervalMs: 0 });
  t.equal(await through(meter, 1 << 20), 1 << 20, 'everything passes through');
  t.equal(meter.bytes, 1 << 20);
  t.ok(reports.length > 10, 'reports along the way');
  t.same(reports.at(-1)!.done, true);
  t.equal(reports.at(-1)!.bytes, 1 << 20);
  t.equal(reports.filter((r) => r.done).length, 1, 'one final report');
  t.ok(reports.every((r, i) => i === 0 || r.bytes >= reports[i - 1]!.bytes), 'monotonic');
});

t.test('Meter with a limit holds the rate: 256 KiB at 128 KiB/s takes about a second after the burst', async (t) => {
  // The bucket starts full (one second of budget), so 256 KiB at 128 KiB/s
  // needs about one more second: a lower bound, which load cannot break.
  const started = Date.now();
  const out = await through(new Meter({ limit: 128 * 1024 }), 256 * 1024);
  const elapsed = Date.now() - started;
  t.equal(out, 256 * 1024);
  t.ok(elapsed >= 850, `limited: ${elapsed} ms`);
  const free = Date.now();
  await through(new Meter({}), 4 << 20);
  t.ok(Date.now() - free < elapsed * 4, 'without a limit nothing waits');
});

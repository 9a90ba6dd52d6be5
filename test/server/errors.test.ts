// The server's pure parts: the error mapping, the body parser, field checks,
// and the respond middleware facing an unexpected error (no btrfs needed).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import t from 'tap';

import { BtrfsError } from '../../src/btrfs/index.js';
import { createLogger } from '../../src/log.js';
import { ScheduleError } from '../../src/scheduler/schedule-file.js';
import { StoreError } from '../../src/store/errors.js';
import { parsePurgePattern } from '../../src/store/purge-plan.js';
import { parseJsonBody } from '../../src/server/body.js';
import { errorAnswer, RequestError } from '../../src/server/errors.js';
import { onlyFields, optionalDate, stringOrInteger } from '../../src/server/fields.js';
import { fallback, respond } from '../../src/server/middleware.js';
import { call } from '../fixtures/daemon.js';

t.test('errorAnswer: status, one-line message, code, expected', async (t) => {
  t.same(errorAnswer(new RequestError('ERR_UNKNOWN_ENDPOINT', 'unknown endpoint: POST /x')), {
    status: 404, message: 'unknown endpoint: POST /x', code: 'ERR_UNKNOWN_ENDPOINT', expected: true,
  });
  t.equal(errorAnswer(new RequestError('ERR_BODY_TOO_LARGE', 'big')).status, 413);
  t.equal(errorAnswer(new RequestError('ERR_METHOD_NOT_ALLOWED', 'm')).status, 405);
  t.same(errorAnswer(new StoreError('ERR_VOLUME_IN_USE', 'v: in use')), { status: 500, message: 'v: in use', code: 'ERR_VOLUME_IN_USE', expected: true });
  t.same(errorAnswer(new ScheduleError('ERR_SCHEDULE_PAUSED', 'Schedule is globally paused')).message, 'Schedule is globally paused');
  const btrfs = BtrfsError.fromCode('EEXIST', 'BTRFS_IOC_SNAP_CREATE_V2', '/v/a');
  t.same(errorAnswer(btrfs), { status: 500, message: "EEXIST: file already exists, BTRFS_IOC_SNAP_CREATE_V2 '/v/a'", code: 'EEXIST', expected: true });
  let purge: unknown;
  try {
    parsePurgePattern('1h:x');
  } catch (err) {
    purge = err;
  }
  t.same(errorAnswer(purge), {
    status: 500, message: 'Invalid purge pattern "1h:x": "x" is not <number><m|h|d|w|y>', code: 'ERR_INVALID_PURGE_PATTERN', expected: true,
  });
  t.same(errorAnswer(new TypeError('x is not a function\n  more')), { status: 500, message: 'internal error: x is not a function more', code: undefined, expected: false });
  t.same(errorAnswer('a string'), { status: 500, message: 'internal error: a string', code: undefined, expected: false });
  t.equal(errorAnswer(Object.assign(new Error('disk'), { code: 'EIO' })).code, 'EIO', 'an unknown error keeps its code for the log');
});

t.test('parseJsonBody', async (t) => {
  const enc = (s: string) => new TextEncoder().encode(s);
  t.same(parseJsonBody(new Uint8Array()), {});
  t.same(parseJsonBody(enc(' \r\n\t')), {});
  t.same(parseJsonBody(enc('{"Name":"v"}\n')), { Name: 'v' });
  t.same(parseJsonBody(enc('\uFEFF{}'.slice(1))), {});
  t.throws(() => parseJsonBody(enc('{"a":1}{"b":2}')), { code: 'ERR_INVALID_REQUEST', message: /^request body is not JSON/ });
  t.throws(() => parseJsonBody(new Uint8Array([0xc3, 0x28])), { code: 'ERR_INVALID_REQUEST', message: 'request body is not valid UTF-8' });
  const proto = parseJsonBody(enc('{"__proto__":{"Name":"polluted"}}'));
  t.equal(({} as Record<string, unknown>).Name, undefined, 'no prototype pollution');
  t.equal(Object.getPrototypeOf(proto), Object.prototype);
});

t.test('field checks', async (t) => {
  t.same(optionalDate({ Now: '2024-01-10T12:00:00.5+01:00' }, 'Now'), new Date('2024-01-10T11:00:00.500Z'));
  t.equal(optionalDate({ Now: null }, 'Now'), undefined);
  t.throws(() => optionalDate({ Now: '2024-02-30T00:00:00Z' }, 'Now'), { message: /^Now must be an RFC 3339 date-time/ });
  for (const bad of ['2024-13-01T00:00:00Z', '2023-02-29T00:00:00Z', '2024-01-10T24:00:00Z', '2024-01-10T12:60:00Z', '2024-01-10T12:00:00+24:00', '2024-01-10', '1704888000']) {
    t.throws(() => optionalDate({ Now: bad }, 'Now'), { message: /RFC 3339/ }, bad);
  }
  t.same(optionalDate({ Now: '2024-02-29 23:59:59z' }, 'Now'), new Date('2024-02-29T23:59:59Z'), 'a space and a lower-case z are RFC 3339 too');
  t.equal(stringOrInteger({ Timer: 60 }, 'Timer'), 60);
  t.throws(() => stringOrInteger({ Timer: 2 ** 60 }, 'Timer'), { message: /^Timer must be a string or a whole number/ });
  t.doesNotThrow(() => onlyFields({ Name: 'v' }, ['Name', 'Target']));
  t.throws(() => onlyFields({ TARGET: 'v' }, ['Name', 'Target']), { message: 'unknown field "TARGET"; did you mean "Target"?' });
  t.throws(() => onlyFields({ constructor: 1 }, ['Name']), { message: 'unknown field "constructor" (expected Name)' });
  t.equal((() => {
    try {
      return stringOrInteger({}, 'toString');
    } catch (err) {
      return (err as Error).message;
    }
  })(), 'toString is required', 'inherited properties are not fields');
});

t.test('an unexpected error: "internal error", logged at ERROR with its stack', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bv-respond-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logs: string[] = [];
  const app = new Koa();
  app.silent = true;
  app.use(respond({ logger: createLogger('INFO', (l) => logs.push(l)) }));
  app.use(fallback());
  app.use(async (ctx) => {
    if (ctx.path === '/boom') throw new TypeError('boom');
  });
  // eslint-disable-next-line @typescript-eslint/no-misused-promises -- koa's handler settles its own errors (ctx.onerror)
  const server = createServer(app.callback());
  const socket = join(dir, 's.sock');
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const r = await call(socket, '/boom', {});
  t.same([r.status, r.body], [500, { Err: 'internal error: boom' }]);
  t.equal(logs.length, 1, 'one line');
  t.match(logs[0], /ERROR POST \/boom - -> 500 \{"Err":"internal error: boom"\} \(\d+\.\d ms\)\\nTypeError: boom\\n {4}at /);
  const miss = await call(socket, '/nothing', {});
  t.same([miss.status, miss.body], [404, { Err: 'unknown endpoint: POST /nothing' }]);
});

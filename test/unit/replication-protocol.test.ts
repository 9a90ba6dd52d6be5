// The request protocol's framing and checks, which every peer (trusted or
// not) goes through: request shapes, JSON lines split anywhere, what follows
// a line kept for the caller, limits, a closed channel, a peer's error words.
import { PassThrough } from 'node:stream';
import t from 'tap';

import { answerError } from '../../src/replication/peer-answers.js';
import { readLine } from '../../src/replication/frames.js';
import { parseRequest, PROTOCOL_VERSION } from '../../src/replication/protocol.js';

const v = PROTOCOL_VERSION;

t.test('parseRequest: the shapes of each request, defaults filled in', async (t) => {
  t.same(parseRequest({ v, op: 'list', volume: 'db' }), { v, op: 'list', volume: 'db', test: false });
  t.same(parseRequest({ v, op: 'receive', volume: 'db', snapshot: 'db@x', test: true }), { v, op: 'receive', volume: 'db', snapshot: 'db@x', test: true });
  t.same(parseRequest({ v, op: 'send', volume: 'db', snapshot: 'db@x' }), { v, op: 'send', volume: 'db', snapshot: 'db@x', parent: null, test: false });
  t.match(parseRequest({ v, op: 'send', volume: 'db', snapshot: 'db@x', parent: 'db@w' }), { parent: 'db@w' });
});

t.test('parseRequest refuses what is not a request, naming why', async (t) => {
  const cases: Array<[unknown, string, RegExp]> = [
    [null, 'ERR_BAD_REQUEST', /a request is a JSON object/],
    [[1], 'ERR_BAD_REQUEST', /a request is a JSON object/],
    ['list', 'ERR_BAD_REQUEST', /a request is a JSON object/],
    [{ op: 'list', volume: 'db' }, 'ERR_BAD_REQUEST', /v must be a number/],
    [{ v: 99, op: 'list', volume: 'db' }, 'ERR_PROTOCOL_VERSION', /protocol version 99 is not spoken here \(this server speaks 1\)/],
    [{ v, op: 'shell', volume: 'db' }, 'ERR_BAD_REQUEST', /unknown request "shell"/],
    [{ v, op: 'list' }, 'ERR_BAD_REQUEST', /volume must be a string/],
    [{ v, op: 'list', volume: 7 }, 'ERR_BAD_REQUEST', /volume must be a string/],
    [{ v, op: 'list', volume: 'db', test: 'yes' }, 'ERR_BAD_REQUEST', /test must be a boolean/],
    [{ v, op: 'list', volume: 'db', snapshot: 'db@x' }, 'ERR_BAD_REQUEST', /unknown field "snapshot" in a list request/],
    [{ v, op: 'receive', volume: 'db' }, 'ERR_BAD_REQUEST', /snapshot must be a string/],
    [{ v, op: 'send', volume: 'db', snapshot: 'db@x', parent: 3 }, 'ERR_BAD_REQUEST', /parent must be a string/],
    [{ v, op: 'list', volume: 'db', __proto__x: 1 }, 'ERR_BAD_REQUEST', /unknown field "__proto__x"/],
  ];
  for (const [value, code, message] of cases) t.throws(() => parseRequest(value), { code, message }, JSON.stringify(value));
});

t.test('readLine: a line split across chunks; what follows is left for the caller', async (t) => {
  const input = new PassThrough();
  const line = readLine(input);
  input.write('{"a":');
  input.write('1}\nRAW');
  input.write('BYTES');
  t.same(await line, { a: 1 });
  input.end();
  const rest: Buffer[] = [];
  for await (const chunk of input) rest.push(chunk as Buffer);
  t.equal(Buffer.concat(rest).toString(), 'RAWBYTES', 'the bytes after the line are not lost');
});

t.test('readLine: two lines in one chunk are read one by one', async (t) => {
  const input = new PassThrough();
  input.write('{"n":1}\n{"n":2}\n');
  t.same(await readLine(input), { n: 1 });
  t.same(await readLine(input), { n: 2 });
});

t.test('readLine refuses a line too long, not JSON, or a channel that ends first', async (t) => {
  let input = new PassThrough();
  let line = readLine(input, 1024);
  for (let i = 0; i < 10; i++) input.write('x'.repeat(200));
  await t.rejects(line, { code: 'ERR_BAD_REQUEST', message: /a line longer than 1024 bytes/ });

  input = new PassThrough();
  line = readLine(input);
  input.write('{"a":\n');
  await t.rejects(line, { code: 'ERR_BAD_REQUEST', message: 'a line that is not JSON' });

  input = new PassThrough();
  line = readLine(input);
  input.end('{"a":1');
  await t.rejects(line, { code: 'ERR_PEER_CLOSED' });

  input = new PassThrough();
  line = readLine(input);
  input.destroy(new Error('link down'));
  await t.rejects(line, /link down/);
});

t.test("answerError: the peer's code and words, made printable and bounded", async (t) => {
  t.equal(answerError({ ok: true }, 'node2'), null);
  let e = answerError({ ok: false, code: 'ERR_NO_SUCH_SNAPSHOT', error: 'no such snapshot: db@x' }, 'node2')!;
  t.same([e.code, e.message], ['ERR_NO_SUCH_SNAPSHOT', 'node2: no such snapshot: db@x']);
  e = answerError({ ok: false, code: 'not a code; rm', error: 'x' }, 'node2')!;
  t.equal(e.code, 'ERR_PEER_FAILED', 'a code not of the ERR_* form is not taken');
  e = answerError({ ok: false, error: 'evil \u001b]0;owned\u0007 title\nsecond line' }, 'node2')!;
  t.notMatch(e.message, /[\u0000-\u001f]/, 'no terminal escape or newline from a peer');
  t.match(e.message, /evil \\u001b\]0;owned\\u0007 title\\u000asecond line/);
  e = answerError({ ok: false, error: 'y'.repeat(100_000) }, 'node2')!;
  t.ok(e.message.length < 1100, 'bounded');
  t.match(e.message, /…\(100000 chars\)$/);
  t.equal(answerError('garbage', 'node2')!.message, 'node2: an answer that is not one');
  t.equal(answerError(null, 'node2')!.code, 'ERR_PEER_FAILED');
});

// The error class every refused send stream becomes.
import t from 'tap';

import { isBtrfsError, isSendStreamError, SendStreamError } from '../../src/btrfs/index.js';

t.test('shape and message', async (t) => {
  const e = new SendStreamError({ code: 'ERR_SEND_STREAM_CHECKSUM', reason: 'bad checksum', command: 37, commandType: 15, commandName: 'WRITE', path: 'a/b', offset: 4242 });
  t.ok(e instanceof Error);
  t.equal(e.name, 'SendStreamError');
  t.notOk(Object.keys(e).includes('name'), 'name is not an own enumerable field');
  t.equal(e.message, "ERR_SEND_STREAM_CHECKSUM: bad checksum, command 37 (WRITE 'a/b')");
  t.same({ ...e }, { code: 'ERR_SEND_STREAM_CHECKSUM', reason: 'bad checksum', command: 37, commandType: 15, commandName: 'WRITE', path: 'a/b', offset: 4242 });
  t.match(e.stack, /SendStreamError: ERR_SEND_STREAM_CHECKSUM/);
});

t.test('the location says what is known', async (t) => {
  const msg = (fields: Partial<ConstructorParameters<typeof SendStreamError>[0]>) =>
    new SendStreamError({ code: 'ERR_SEND_STREAM_INVALID', reason: 'r', command: 0, offset: 0, ...fields }).message;
  t.equal(msg({}), 'ERR_SEND_STREAM_INVALID: r, stream header');
  t.equal(msg({ command: 5 }), 'ERR_SEND_STREAM_INVALID: r, command 5', 'header not read');
  t.equal(msg({ command: 5, commandType: 21, commandName: 'END' }), 'ERR_SEND_STREAM_INVALID: r, command 5 (END)', 'no path');
  t.equal(msg({ command: 5, commandType: 18, commandName: 'CHMOD', path: '' }), "ERR_SEND_STREAM_INVALID: r, command 5 (CHMOD '')", 'the root');
  const bare = new SendStreamError({ code: 'ERR_SEND_STREAM_TRUNCATED', reason: 'r', command: 0, offset: 0 });
  for (const key of ['commandType', 'commandName', 'path']) t.notOk(key in bare, `no ${key} when unknown`);
});

t.test('isSendStreamError', async (t) => {
  const e = new SendStreamError({ code: 'ERR_SEND_STREAM_TRUNCATED', reason: 'the input is empty', command: 0, offset: 0 });
  t.equal(isSendStreamError(e), true);
  t.equal(isBtrfsError(e), false, 'not a BtrfsError');
  t.equal(isSendStreamError(new Error('x')), false);
  t.equal(isSendStreamError(null), false);
  t.equal(isSendStreamError({ code: 'ERR_SEND_STREAM_TRUNCATED' }), false, 'duck typing is not enough');
  t.equal(isSendStreamError(Object.create({ [Symbol.for('buttervolume.SendStreamError')]: true })), true, 'recognised across copies of the module');
});

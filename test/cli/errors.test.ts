// The CLI's one error mapping, in process: the line, the usage line, the
// exit status, --debug's stacks, and the wording of the store's "not found".
import t from 'tap';

import { about, CliError, describeError, reportError, UsageError } from '../../src/cli/errors.js';
import { StoreError } from '../../src/store/errors.js';

const report = (err: unknown, context: { command?: string; debug?: boolean } = {}) => {
  let text = '';
  const status = reportError(err, { ...context, write: (s) => (text += s) });
  return { status, text };
};

t.test('expected failures: one line, exit status 1', async (t) => {
  t.same(report(new CliError('no such volume: db'), { command: 'snapshot' }), { status: 1, text: 'buttervolume: snapshot: no such volume: db\n' });
  t.same(report(new StoreError('ERR_NOT_BTRFS', 'not a btrfs filesystem: /v'), { command: 'rm' }), {
    status: 1,
    text: 'buttervolume: rm: not a btrfs filesystem: /v\n',
  });
  const sys = Object.assign(new Error('EACCES: permission denied, open \'/x\''), { code: 'EACCES', syscall: 'open' });
  t.same(report(sys), { status: 1, text: "buttervolume: EACCES: permission denied, open '/x'\n" }, 'before a command is known');
  t.equal(describeError(new CliError('two\n  lines')), 'two lines', 'never a newline');
  t.equal(describeError('a string'), 'a string (internal error; run with --debug for the stack trace)');
});

t.test('usage errors: exit status 2, then the usage line', async (t) => {
  t.same(report(new UsageError('missing argument <volume>', 'buttervolume snapshot [--json] <volume>'), { command: 'snapshot' }), {
    status: 2,
    text: 'buttervolume: snapshot: missing argument <volume>\nusage: buttervolume snapshot [--json] <volume>\n',
  });
});

t.test('a bug says so, without a stack; --debug shows the stacks of the error and its causes', async (t) => {
  const bug = new TypeError("Cannot read properties of undefined (reading 'x')", { cause: new RangeError('deeper') });
  const plain = report(bug, { command: 'clone' });
  t.same(plain, {
    status: 1,
    text: "buttervolume: clone: Cannot read properties of undefined (reading 'x') (internal error; run with --debug for the stack trace)\n",
  });
  const debug = report(bug, { command: 'clone', debug: true });
  t.equal(debug.status, 1);
  const lines = debug.text.split('\n');
  t.equal(lines[0], plain.text.trimEnd(), 'the same line first');
  t.equal(lines[1], "TypeError: Cannot read properties of undefined (reading 'x')");
  t.match(lines[2], /^\s+at /);
  t.ok(lines.includes('caused by:'));
  t.ok(lines.includes('RangeError: deeper'));
});

t.test('about() names what was not found; other errors pass through', async (t) => {
  const rethrown = (err: unknown, subject: Parameters<typeof about>[0]) => {
    try {
      about(subject)(err);
    } catch (e) {
      return e;
    }
    return undefined;
  };
  const noVolume = new StoreError('ERR_VOLUME_NOT_FOUND', 'No such volume');
  const e1 = rethrown(noVolume, { volume: 'db' }) as CliError;
  t.same([e1 instanceof CliError, e1.message, e1.cause], [true, 'no such volume: db', noVolume]);
  const e2 = rethrown(new StoreError('ERR_SNAPSHOT_NOT_FOUND', 'No such snapshot'), { snapshot: 'db@x' }) as Error;
  t.equal(e2.message, 'no such snapshot: db@x');
  const other = new StoreError('ERR_VOLUME_IN_USE', 'db: in use');
  t.equal(rethrown(other, { volume: 'db' }), other);
  t.equal(rethrown(noVolume, { snapshot: 'db@x' }), noVolume, 'no volume named: the store says it');
});

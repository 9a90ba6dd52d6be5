// schedule.csv: the original's format, the Schedule endpoint's rules, the
// refusals the original did not have, and the file's atomic writes and pause.
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

/** The files of `dir` but the schedule's lock file (`<SCHEDULE>.lock`, which stays). */
const filesIn = (dir: string): string[] => readdirSync(dir).filter((f) => !f.endsWith('.lock'));

import { formatCsvRow, readCsvRecords } from '../../src/scheduler/csv.js';
import {
  ScheduleError,
  ScheduleFile,
  applyScheduleChange,
  checkPurgePattern,
  formatScheduledLine,
  parseAction,
  parseSchedule,
  serializeSchedule,
  type ScheduleEntry,
} from '../../src/scheduler/schedule-file.js';

const root = mkdtempSync(join(tmpdir(), 'bv-schedule-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
/** A fresh directory and a schedule path inside it. */
function fresh(): { dir: string; path: string } {
  const dir = join(root, `case-${(counter += 1)}`);
  mkdirSync(dir);
  return { dir, path: join(dir, 'schedule.csv') };
}

const entry = (name: string, action: string, timer: number, active = true): ScheduleEntry => ({ name, action, timer, active });

const REFERENCE = [
  'db,snapshot,60,True',
  'db,replicate:node2,120,True',
  'db,purge:4h:1d:2w:2y,1440,False',
  'db,"synchronize:node2,node3",60,True',
  '',
].join('\n');

t.test('the reference file parses and serialises back byte for byte', async (t) => {
  const { entries, problems } = parseSchedule(REFERENCE);
  t.same(problems, []);
  t.same(entries, [
    entry('db', 'snapshot', 60),
    entry('db', 'replicate:node2', 120),
    entry('db', 'purge:4h:1d:2w:2y', 1440, false),
    entry('db', 'synchronize:node2,node3', 60),
  ]);
  t.equal(serializeSchedule(entries), REFERENCE);
  t.same(parseSchedule(REFERENCE.replace(/\n/g, '\r\n')).entries, entries, 'CRLF, as Python writes it');
  t.same(parseSchedule(`\n${REFERENCE}\n  \n\n`).entries, entries, 'blank lines ignored');
  t.equal(serializeSchedule([]), '');
});

t.test('3-column lines of older versions read as active, written with 4', async (t) => {
  const { entries, problems } = parseSchedule('db,snapshot,60\nlogs,"synchronize:a,b",5\r\nold,snapshot,30,\n');
  t.same(problems, []);
  t.same(entries, [entry('db', 'snapshot', 60), entry('logs', 'synchronize:a,b', 5), entry('old', 'snapshot', 30)]);
  t.equal(serializeSchedule(entries), 'db,snapshot,60,True\nlogs,"synchronize:a,b",5,True\nold,snapshot,30,True\n');
  t.equal(parseSchedule('db,snapshot,60,false\n').entries[0]!.active, false, 'Active is case-insensitive');
});

t.test('CSV quoting as Python csv does it', async (t) => {
  t.equal(formatCsvRow(['a', 'b,c', 'say "hi"', 'x\ny', 'z\r']), 'a,"b,c","say ""hi""","x\ny","z\r"');
  t.same(readCsvRecords('"a""b",c\n').map((r) => r.fields), [['a"b', 'c']]);
  t.same(readCsvRecords('a"b,c\n').map((r) => r.fields), [['a"b', 'c']], 'a quote inside an unquoted field is literal');
  t.same(readCsvRecords('"ab"c,d').map((r) => r.fields), [['abc', 'd']], 'text after a closing quote is kept');
  const multi = readCsvRecords('x,"a\r\nb",y\r\nnext,1\n');
  t.same(multi.map((r) => [r.line, r.fields]), [[1, ['x', 'a\r\nb', 'y']], [3, ['next', '1']]], 'quoted newline, line numbers');
  t.equal(multi[0]!.raw, 'x,"a\r\nb",y');
  t.same(readCsvRecords('\uFEFFa,b').map((r) => r.fields), [['a', 'b']], 'BOM dropped');
});

t.test('invalid timers, actions and names are refused with ERR_INVALID_SCHEDULE', async (t) => {
  const cases: [string, string | number, RegExp, string?][] = [
    ['snapshot', 'demain', /invalid timer "demain": expected a number of minutes, or 0 \(or delete\), pause, resume/],
    ['snapshot', '²', /invalid timer "²"/],
    ['snapshot', '-1', /invalid timer "-1"/],
    ['snapshot', '1.5', /invalid timer "1\.5"/],
    ['snapshot', '', /invalid timer ""/],
    ['snapshot', ' 60', /invalid timer " 60"/],
    ['snapshot', -1, /invalid timer "-1"/],
    ['snapshot', 1.5, /invalid timer "1\.5"/],
    ['snapshot', '52560001', /at most 52560000 minutes/],
    ['replicat:x', '60', /unknown action "replicat:x": expected snapshot, replicate:<host>, purge:<pattern> or synchronize:<host>\[,<host>\.\.\.\]/],
    ['Snapshot', '60', /unknown action "Snapshot"/],
    ['snapshot:x', '60', /snapshot takes no argument/],
    ['purge:2h:plop', '60', /invalid purge pattern "2h:plop": "plop" is not <number><m\|h\|d\|w\|y>/],
    ['purge:2h', '60', /invalid purge pattern "2h": needs at least two durations/],
    ['purge:0h:1d', '60', /invalid purge pattern "0h:1d": "0h" must be greater than zero/],
    ['purge:2h:-1d', '60', /"-1d" is not <number>/],
    ['purge:', '60', /purge needs a retention pattern/],
    ['purge', '60', /purge needs a retention pattern/],
    ['replicate:bad host', '60', /host "bad host" is not a DNS name/],
    ['replicate:', '60', /invalid action "replicate:": replicate needs a host/],
    ['replicate', '60', /replicate needs a host/],
    ['replicate:-oProxyCommand=x', '60', /label "-oProxyCommand=x"/],
    ['replicate:node_2;rm', '60', /not a DNS name/],
    ['replicate:999.1.1.1', '60', /neither a valid IPv4 address nor a DNS name/],
    ['replicate:[::1', '60', /not a DNS name/],
    ['replicate:fe80::1%eth0', '60', /port "1%eth0" must be a number/],
    ['replicate:bob@@node2', '60', /more than one "@"/],
    ['replicate:-x@node2', '60', /user "-x" is not a user name/],
    ['replicate:node-', '60', /label "node-"/],
    [`replicate:${'a'.repeat(254)}`, '60', /254 characters long, the limit is 253/],
    ['replicate:a..b', '60', /label ""/],
    ['synchronize:', '60', /synchronize needs hosts/],
    ['synchronize:a,,b', '60', /host "": expected name, name:port/],
    ['synchronize:a,b c', '60', /host "b c"/],
    ['snapshot', '60', /volume name "a@b" contains "@"/, 'a@b'],
    ['snapshot', '60', /volume name "a b" contains " ": only letters, digits/, 'a b'],
    ['snapshot', '60', /volume name "-x" must start with a letter or a digit/, '-x'],
    ['snapshot', '60', /volume name "\.hidden" must start/, '.hidden'],
    ['snapshot', '60', /volume name "a\/b" contains "\/"/, 'a/b'],
    ['snapshot', '60', /volume name is empty/, ''],
    ['snapshot', '60', /is 256 bytes long, the limit is 255/, 'v'.repeat(256)],
  ];
  for (const [action, timer, message, name = 'db'] of cases) {
    t.throws(
      () => applyScheduleChange([], { name, action, timer }),
      { name: 'ScheduleError', code: 'ERR_INVALID_SCHEDULE', message },
      `${name} ${action} ${String(timer)}`,
    );
  }
  t.equal(checkPurgePatternError('60m:120m:300m:240m:180m'), undefined, 'order is free');
  t.equal(checkPurgePatternError('2h:2h'), undefined, 'duplicates allowed');
  t.match(checkPurgePatternError('2h:1x'), /"1x" is not <number>/);
});

function checkPurgePatternError(pattern: string): string | undefined {
  try {
    checkPurgePattern(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

t.test('accepted actions, parsed', async (t) => {
  t.same(parseAction('snapshot'), { kind: 'snapshot' });
  t.same(parseAction('replicate:node2.example.com'), { kind: 'replicate', host: 'node2.example.com' });
  t.same(parseAction('replicate:node-2'), { kind: 'replicate', host: 'node-2' });
  t.same(parseAction('replicate:remote_host'), { kind: 'replicate', host: 'remote_host' }, 'ssh aliases with "_" (the original README example)');
  t.same(parseAction('replicate:10.0.0.1'), { kind: 'replicate', host: '10.0.0.1' });
  t.same(parseAction('replicate:fe80::1'), { kind: 'replicate', host: 'fe80::1' });
  t.same(parseAction('replicate:localhost'), { kind: 'replicate', host: 'localhost' });
  t.same(parseAction('replicate:root@node2'), { kind: 'replicate', host: 'root@node2' }, 'a user, as ssh took it');
  t.same(parseAction('replicate:[::1]:2222'), { kind: 'replicate', host: '[::1]:2222' }, 'an IPv6 literal with a port');
  t.same(parseAction('purge:4h:1d:2w:2y'), { kind: 'purge', pattern: '4h:1d:2w:2y' });
  t.same(parseAction('synchronize:node2,node3'), { kind: 'synchronize', hosts: ['node2', 'node3'] });
  t.same(applyScheduleChange([], { name: 'a'.repeat(255), action: 'snapshot', timer: 1 }).length, 1, '255-byte name');
});

t.test("applyScheduleChange: the Schedule endpoint's semantics", async (t) => {
  const start = Object.freeze([entry('a', 'snapshot', 60), entry('b', 'snapshot', 60), entry('c', 'snapshot', 60)]);

  const added = applyScheduleChange(start, { name: 'd', action: 'replicate:node2', timer: '120' });
  t.same(added.map((e) => e.name), ['a', 'b', 'c', 'd'], 'a new job is appended');
  t.same(added[3], entry('d', 'replicate:node2', 120));

  const paused = applyScheduleChange(start, { name: 'b', action: 'snapshot', timer: 'pause' });
  t.same(paused[1], entry('b', 'snapshot', 60, false));
  const replaced = applyScheduleChange(paused, { name: 'b', action: 'snapshot', timer: 15 });
  t.same(replaced, [start[0], entry('b', 'snapshot', 15), start[2]], 'replaced in place, active again');
  t.same(applyScheduleChange(paused, { name: 'b', action: 'snapshot', timer: 'resume' })[1], entry('b', 'snapshot', 60));

  for (const timer of ['0', 'delete', '00', 0]) {
    t.same(applyScheduleChange(start, { name: 'b', action: 'snapshot', timer }).map((e) => e.name), ['a', 'c'], `delete with ${JSON.stringify(timer)}`);
  }
  t.same(applyScheduleChange(start, { name: 'zz', action: 'snapshot', timer: 0 }), start, 'deleting an absent job is not an error');
  t.same(applyScheduleChange(start, { name: 'b', action: 'replicate:x', timer: 0 }), start, 'keyed by name AND action');

  for (const timer of ['pause', 'resume']) {
    t.throws(() => applyScheduleChange(start, { name: 'b', action: 'purge:1h:1d', timer }), {
      code: 'ERR_SCHEDULED_JOB_NOT_FOUND',
      message: `there is no scheduled job "purge:1h:1d" for volume "b" to ${timer}`,
    });
  }
  t.equal(start.length, 3, 'input untouched');
  t.same(start[1], entry('b', 'snapshot', 60));
});

t.test('formatScheduledLine: the original CLI line, trailing space included', async (t) => {
  t.equal(formatScheduledLine(entry('db', 'snapshot', 60)), 'snapshot 60 db ');
  t.equal(formatScheduledLine(entry('db', 'synchronize:n2,n3', 5, false)), 'synchronize:n2,n3 5 db (paused)');
});

t.test('bad lines are reported while good lines still load', async (t) => {
  const text = [
    'db,snapshot,60,True', // 1
    'db,replicat:node2,60,True', // 2
    'db,snapshot,demain,True', // 3
    'web,snapshot,30', // 4
    'db,snapshot,10,True', // 5 duplicate of 1
    'db,snapshot', // 6
    'db,snapshot,60,True,extra', // 7
    'x,"snapshot,60,True', // 8 unterminated quote
    'web,snapshot,0,True', // 9
    'web,purge:1h:1d,60,maybe', // 10
    'bad name,snapshot,60,True', // 11
    'last,snapshot,1,False', // 12
  ].join('\r\n');
  const { entries, problems } = parseSchedule(text);
  t.same(entries, [entry('db', 'snapshot', 60), entry('web', 'snapshot', 30), entry('last', 'snapshot', 1, false)]);
  t.same(
    problems.map((p) => p.line),
    [2, 3, 5, 6, 7, 8, 9, 10, 11],
  );
  const byLine = new Map(problems.map((p) => [p.line, p]));
  t.match(byLine.get(2)!.error, /unknown action "replicat:node2"/);
  t.match(byLine.get(3)!.error, /invalid timer "demain": expected a whole number of minutes/);
  t.equal(byLine.get(5)!.error, 'same volume and action as line 1; ignored');
  t.equal(byLine.get(6)!.error, 'expected 3 or 4 columns (Name,Action,Timer,Active), found 2');
  t.equal(byLine.get(7)!.error, 'expected 3 or 4 columns (Name,Action,Timer,Active), found 5');
  t.equal(byLine.get(8)!.error, 'a quoted field is never closed (missing ")');
  t.equal(byLine.get(8)!.text, 'x,"snapshot,60,True');
  t.match(byLine.get(9)!.error, /a scheduled job runs every 1 minute or more/);
  t.equal(byLine.get(10)!.error, 'Active must be True or False, found "maybe"');
  t.match(byLine.get(11)!.error, /volume name "bad name" contains " "/);
});

t.test("the original's test_schedule_snapshot, on the file", async (t) => {
  const { path } = fresh();
  const file = new ScheduleFile(path);
  t.same(await file.read(), { entries: [], problems: [] }, 'missing file: empty schedule');
  const [vol1, vol2] = ['buttervolume-test-1', 'buttervolume-test-2'];
  await file.update({ name: vol1, action: 'snapshot', timer: 60 });
  await file.update({ name: vol2, action: 'snapshot', timer: 60 });
  const { entries } = await file.read();
  t.equal(entries.length, 2);
  t.equal(entries[0]!.action, 'snapshot');
  t.equal(entries[1]!.timer, 60);
  t.equal(readFileSync(path, 'utf8').split('\n')[1], `${vol2},snapshot,60,True`);
  await file.update({ name: vol1, action: 'snapshot', timer: 0 });
  t.same(readFileSync(path, 'utf8').split('\n').filter(Boolean), [`${vol2},snapshot,60,True`]);
  t.equal((await file.read()).entries.length, 1);
  const left = await file.update({ name: vol2, action: 'snapshot', timer: 'delete' });
  t.same(left, []);
  t.equal(readFileSync(path, 'utf8'), '');
});

t.test('atomic writes: no temp file left, mode kept, parent created, symlink followed', async (t) => {
  const { dir, path } = fresh();
  const file = new ScheduleFile(path);
  await file.write([entry('db', 'snapshot', 60)]);
  chmodSync(path, 0o600);
  await file.update({ name: 'db', action: 'purge:1h:1d', timer: 60 });
  t.same(filesIn(dir), ['schedule.csv']);
  t.equal(statSync(path).mode & 0o777, 0o600, 'mode of the replaced file kept');
  t.equal(readFileSync(path, 'utf8'), 'db,snapshot,60,True\ndb,purge:1h:1d,60,True\n');

  const nested = new ScheduleFile(join(dir, 'a', 'b', 'schedule.csv'));
  await nested.update({ name: 'x', action: 'snapshot', timer: 1 });
  t.equal(readFileSync(nested.path, 'utf8'), 'x,snapshot,1,True\n');

  const linked = join(dir, 'link.csv');
  symlinkSync(path, linked);
  await new ScheduleFile(linked).update({ name: 'z', action: 'snapshot', timer: 5 });
  t.ok(lstatSync(linked).isSymbolicLink(), 'the link stays a link');
  t.match(readFileSync(path, 'utf8'), /^z,snapshot,5,True$/m, 'its target was written');
});

t.test('a failed write leaves the old file and no temp file', async (t) => {
  const { dir, path } = fresh();
  const file = new ScheduleFile(path);
  await file.write([entry('db', 'snapshot', 60)]);
  await t.rejects(file.write([entry('db', 'snapshot:x', 60)]), { code: 'ERR_INVALID_SCHEDULE' });
  await t.rejects(file.update({ name: 'db', action: 'snapshot', timer: 'demain' }), { code: 'ERR_INVALID_SCHEDULE' });
  t.equal(readFileSync(path, 'utf8'), 'db,snapshot,60,True\n');

  const blocked = join(dir, 'is-a-directory');
  mkdirSync(blocked);
  await t.rejects(new ScheduleFile(blocked).write([entry('db', 'snapshot', 60)]), { code: 'EISDIR' });
  t.same(filesIn(dir).sort(), ['is-a-directory', 'schedule.csv'], 'temp file removed');
});

t.test('concurrent updates are serialised: none is lost', async (t) => {
  const { dir, path } = fresh();
  const a = new ScheduleFile(path);
  const b = new ScheduleFile(join(dir, '.', 'schedule.csv')); // same file, another instance
  await Promise.all(
    Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).update({ name: `vol${i}`, action: 'snapshot', timer: i + 1 })),
  );
  const { entries, problems } = await a.read();
  t.same(problems, []);
  t.equal(entries.length, 50);
  t.same(new Set(entries.map((e) => e.name)), new Set(Array.from({ length: 50 }, (_, i) => `vol${i}`)));
  t.same(filesIn(dir), ['schedule.csv']);
});

t.test('global pause and resume', async (t) => {
  const { dir, path } = fresh();
  const file = new ScheduleFile(path);
  await file.update({ name: 'db', action: 'snapshot', timer: 60 });
  t.equal(await file.isPaused(), false);
  await file.pause();
  t.equal(await file.isPaused(), true);
  t.same(filesIn(dir), ['schedule.csv.disabled']);
  t.equal(readFileSync(`${path}.disabled`, 'utf8'), 'db,snapshot,60,True\n');
  await t.rejects(file.update({ name: 'db', action: 'snapshot', timer: 5 }), {
    name: 'ScheduleError',
    code: 'ERR_SCHEDULE_PAUSED',
    message: 'Schedule is globally paused',
  });
  await file.pause(); // no-op
  t.equal(readFileSync(`${path}.disabled`, 'utf8'), 'db,snapshot,60,True\n');
  await file.resume();
  t.equal(await file.isPaused(), false);
  t.same(filesIn(dir), ['schedule.csv']);
  t.same((await file.read()).entries, [entry('db', 'snapshot', 60)]);
  await file.resume(); // no-op
  t.same(filesIn(dir), ['schedule.csv']);

  const empty = fresh();
  const none = new ScheduleFile(join(empty.dir, 'sub', 'schedule.csv'));
  await none.pause();
  t.equal(await none.isPaused(), true, 'pausing without a file records the pause');
  t.equal(readFileSync(none.disabledPath, 'utf8'), '');
  await none.resume();
  t.equal(readFileSync(none.path, 'utf8'), '');
  await none.update({ name: 'db', action: 'snapshot', timer: 1 });
  t.same((await none.read()).entries, [entry('db', 'snapshot', 1)]);
});

t.test('update keeps unreadable lines where they were, and can delete them', async (t) => {
  const { path } = fresh();
  writeFileSync(path, 'db,snapshot,60,True\r\ndb,replicate:old host,60,True\r\nweb,snapshot,5\r\n');
  const file = new ScheduleFile(path);
  const after = await file.update({ name: 'db', action: 'snapshot', timer: 30 });
  t.same(after, [entry('db', 'snapshot', 30), entry('web', 'snapshot', 5)]);
  t.equal(readFileSync(path, 'utf8'), 'db,snapshot,30,True\ndb,replicate:old host,60,True\nweb,snapshot,5,True\n');
  const { problems } = await file.read();
  t.same(problems.map((p) => [p.line, p.text]), [[2, 'db,replicate:old host,60,True']]);

  await file.update({ name: 'db', action: 'replicate:old host', timer: 'delete' });
  t.equal(readFileSync(path, 'utf8'), 'db,snapshot,30,True\nweb,snapshot,5,True\n');
  await t.rejects(file.update({ name: 'db', action: 'purge:1h:1d', timer: 'pause' }), { code: 'ERR_SCHEDULED_JOB_NOT_FOUND' });
});

t.test('ScheduleError is an Error with a non-enumerable name', async (t) => {
  const err = new ScheduleError('ERR_INVALID_SCHEDULE', 'x');
  t.ok(err instanceof Error);
  t.equal(err.name, 'ScheduleError');
  t.notOk(Object.keys(err).includes('name'));
});

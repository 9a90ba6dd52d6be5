// The command line itself: version, help, usage errors (exit 2 with the
// command's usage line), configuration errors, --debug, and send/sync,
// which check their arguments before touching the configuration or the store.
// None of these touch a store: the variables point at paths that must stay
// untouched.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import { COMMANDS, usageOf } from '../../src/cli/spec.js';
import { hasStack, runCli } from './fixtures/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'bv-cli-usage-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const env = {
  BUTTERVOLUME_CONFIG: join(dir, 'none.ini'),
  BUTTERVOLUME_VOLUMES_PATH: join(dir, 'volumes'),
  BUTTERVOLUME_SNAPSHOTS_PATH: join(dir, 'snapshots'),
  BUTTERVOLUME_SCHEDULE: join(dir, 'schedule.csv'),
  BUTTERVOLUME_RUNPATH: join(dir, 'run'),
};
const bv = (...args: string[]) => runCli(args, env);
const usage = (name: string) => `usage: ${usageOf(COMMANDS.find((c) => c.name === name)!)}\n`;
const PROGRAM_USAGE = 'usage: buttervolume [--debug] <command> [<args>] (buttervolume --help lists the commands)\n';

t.test('--version prints "buttervolume <package.json version>"', async (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  for (const args of [['--version'], ['snapshot', '--version']]) {
    const r = await bv(...args);
    t.same([r.code, r.stdout, r.stderr], [0, `buttervolume ${version}\n`, ''], args.join(' '));
  }
});

t.test('--help, and no command at all, print the help with an example of each command', async (t) => {
  const help = await bv('--help');
  t.equal(help.code, 0);
  t.equal(help.stderr, '');
  for (const c of COMMANDS) {
    t.match(help.stdout, new RegExp(`^  ${c.name}\\b`, 'm'), `${c.name} listed`);
    t.match(help.stdout, new RegExp(`^  buttervolume ${c.name}\\b`, 'm'), `an example of ${c.name}`);
  }
  const bare = await bv();
  t.same([bare.code, bare.stdout, bare.stderr], [0, help.stdout, ''], 'no subcommand prints the help');
  t.same((await bv('-h')).stdout, help.stdout, '-h');
});

t.test('<command> --help prints its usage line, options and examples', async (t) => {
  for (const c of COMMANDS) {
    const r = await bv(c.name, '--help');
    t.equal(r.code, 0, c.name);
    t.ok(r.stdout.startsWith(`Usage: ${usageOf(c)}\n`), `${c.name}: usage first`);
    for (const e of c.examples) t.ok(r.stdout.includes(`  buttervolume ${e}\n`), `${c.name}: example ${e}`);
    for (const o of c.options) t.ok(r.stdout.includes(o.flags), `${c.name}: option ${o.flags}`);
  }
});

t.test('usage errors: one line naming the problem, the usage line, exit status 2', async (t) => {
  const cases: Array<[string[], string]> = [
    [['frobnicate'], `buttervolume: frobnicate: unknown command\n${PROGRAM_USAGE}`],
    [['--bogus'], `buttervolume: unknown option --bogus\n${PROGRAM_USAGE}`],
    [['snapshot'], `buttervolume: snapshot: missing argument <volume>\n${usage('snapshot')}`],
    [['snapshot', 'a', 'b'], `buttervolume: snapshot: unexpected argument b\n${usage('snapshot')}`],
    [['snapshot', '--force', 'a'], `buttervolume: snapshot: unknown option --force\n${usage('snapshot')}`],
    [['snapshots', 'a', 'b', 'c'], `buttervolume: snapshots: unexpected arguments b, c\n${usage('snapshots')}`],
    [['schedule', 'snapshot', '60'], `buttervolume: schedule: missing argument <volume>\n${usage('schedule')}`],
    [['restore'], `buttervolume: restore: missing argument <snapshot|volume>\n${usage('restore')}`],
    [['clone', 'a'], `buttervolume: clone: missing argument <new_volume>\n${usage('clone')}`],
    [['send', 'host'], `buttervolume: send: missing argument <snapshot>\n${usage('send')}`],
    [['sync', 'v'], `buttervolume: sync: missing argument <host>\n${usage('sync')}`],
    [['rm'], `buttervolume: rm: missing argument <snapshot>\n${usage('rm')}`],
    [['rm', 'a@b', '--json'], `buttervolume: rm: unknown option --json\n${usage('rm')}`],
    [['purge', '2h:1d'], `buttervolume: purge: missing argument <volume>\n${usage('purge')}`],
    [['purge', '--now'], `buttervolume: purge: option --now needs a value\n${usage('purge')}`],
    [['purge', '--now', 'yesterday', '2h:1d', 'v'],
      `buttervolume: purge: invalid --now "yesterday": expected an ISO 8601 time such as 2024-01-10T12:00:00 (local time) or 2024-01-10T11:00:00Z\n${usage('purge')}`],
    [['purge', '--now', '2024-02-30', '2h:1d', 'v'],
      `buttervolume: purge: invalid --now "2024-02-30": expected an ISO 8601 time such as 2024-01-10T12:00:00 (local time) or 2024-01-10T11:00:00Z\n${usage('purge')}`],
    [['run', 'now'], `buttervolume: run: unexpected argument now\n${usage('run')}`],
    [['scheduled', 'stop'], `buttervolume: scheduled: unknown action "stop": expected list, pause, resume or run\n${usage('scheduled')}`],
    [['scheduled', 'list', '--now', '2024-01-10'], `buttervolume: scheduled: --now goes with run only\n${usage('scheduled')}`],
    [['scheduled', 'run', '--now', '10/01/2024'],
      `buttervolume: scheduled: invalid --now "10/01/2024": expected an ISO 8601 time such as 2024-01-10T12:00:00 (local time) or 2024-01-10T11:00:00Z\n${usage('scheduled')}`],
  ];
  for (const [args, stderr] of cases) {
    const r = await bv(...args);
    t.same([r.code, r.stdout, r.stderr], [2, '', stderr], args.join(' '));
  }
  t.notOk(existsSync(env.BUTTERVOLUME_VOLUMES_PATH), 'no store was opened');
  t.notOk(existsSync(env.BUTTERVOLUME_SCHEDULE), 'no schedule was written');
});

t.test('send and sync check their arguments before opening the store', async (t) => {
  // Valid arguments go on to open the store, which is not on btrfs here
  // (and is kept apart from the paths the other tests want untouched).
  const elsewhere = { ...env, BUTTERVOLUME_VOLUMES_PATH: join(dir, 'send', 'volumes'), BUTTERVOLUME_SNAPSHOTS_PATH: join(dir, 'send', 'snapshots') };
  const notBtrfs = `not a btrfs filesystem: ${elsewhere.BUTTERVOLUME_VOLUMES_PATH}`;
  const cases: Array<[string[], string]> = [
    [['send', 'node2', 'db@2024-01-10T12:00:00.000000'], `buttervolume: send: ${notBtrfs}\n`],
    [['send', 'root@node2:2222', 'db@2024-01-10T12:00:00.000000'], `buttervolume: send: ${notBtrfs}\n`],
    [['send', 'a@b@node2', 'db@2024-01-10T12:00:00.000000'], 'buttervolume: send: host "a@b@node2": more than one "@"\n'],
    [['send', 'node2:99999', 'db@2024-01-10T12:00:00.000000'], 'buttervolume: send: host "node2:99999": port "99999" must be a number from 1 to 65535\n'],
    [['send', 'node2', 'db'], 'buttervolume: send: snapshot name "db" has no "@" (expected <volume>@<date>)\n'],
    [['sync', 'db', 'node2', 'node3'], `buttervolume: sync: ${notBtrfs}\n`],
    [['sync', 'db@x', 'node2'], 'buttervolume: sync: volume name "db@x" contains "@", which separates a volume from its snapshot date\n'],
    [['sync', 'db', 'node2', 'bad_host!'], 'buttervolume: sync: host "bad_host!" is not a DNS name or an IP address: label "bad_host!" must be 1 to 63 letters, digits, "_" or inner "-"\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = await runCli(args, elsewhere);
    t.same([r.code, r.stdout, r.stderr], [1, '', stderr], args.join(' '));
  }
});

t.test('configuration errors: one line naming the variable, exit status 1', async (t) => {
  let r = await runCli(['snapshot', 'v'], { ...env, BUTTERVOLUME_TIMER: 'soon' });
  t.same([r.code, r.stdout, r.stderr], [1, '', 'buttervolume: snapshot: BUTTERVOLUME_TIMER="soon" (environment): must be a positive whole number of seconds\n']);
  r = await runCli(['snapshots'], { ...env, BUTTERVOLUME_VOLUMES_PATH: 'relative/path' });
  t.same([r.code, r.stderr], [1, 'buttervolume: snapshots: BUTTERVOLUME_VOLUMES_PATH="relative/path" (environment): must be an absolute path (starting with /)\n']);
  r = await runCli(['scheduled'], { ...env, BUTTERVOLUME_LOGLEVEL: 'LOUD' });
  t.match(r.stderr, /^buttervolume: scheduled: BUTTERVOLUME_LOGLEVEL="LOUD" \(environment\): must be one of DEBUG/);
  t.equal(r.code, 1);
  t.notOk(existsSync(env.BUTTERVOLUME_VOLUMES_PATH), 'nothing created');
});

t.test('no stack trace without --debug; with it, the stack and its causes', async (t) => {
  const plain = await runCli(['snapshot', 'v'], { ...env, BUTTERVOLUME_TIMER: 'soon' });
  t.notOk(hasStack(plain.stderr));
  t.equal(plain.stderr.split('\n').length, 2, 'one line');
  const debug = await runCli(['snapshot', 'v', '--debug'], { ...env, BUTTERVOLUME_TIMER: 'soon' });
  t.equal(debug.code, 1);
  t.ok(debug.stderr.startsWith('buttervolume: snapshot: BUTTERVOLUME_TIMER="soon"'), 'the same line first');
  t.ok(hasStack(debug.stderr), 'then the stack');
  t.match(debug.stderr, /ConfigError/);
  const usageDebug = await bv('--debug', 'snapshot');
  t.equal(usageDebug.code, 2);
  t.ok(hasStack(usageDebug.stderr), '--debug before the command works too');
});

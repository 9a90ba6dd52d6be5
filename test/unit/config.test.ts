// loadConfig: environment > config.ini [DEFAULT] > defaults, and a one-line
// ConfigError for every value that cannot work.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';

import { CONFIG_VARIABLES, ConfigError, DEFAULT_CONFIG_FILE, loadConfig, type Config } from '../../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'bv-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const missing = join(dir, 'does-not-exist.ini');

let counter = 0;
function ini(text: string): string {
  const path = join(dir, `config-${(counter += 1)}.ini`);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError thrown by loadConfig, or a failed assertion. */
function configError(t: Test, options: Parameters<typeof loadConfig>[0]): ConfigError {
  try {
    loadConfig(options);
  } catch (err) {
    t.type(err, ConfigError);
    t.equal((err as ConfigError).code, 'ERR_INVALID_CONFIG');
    t.notMatch((err as Error).message, /\n/, 'message is one line');
    return err as ConfigError;
  }
  t.fail('loadConfig did not throw');
  return new ConfigError('', '');
}

t.test('defaults of the original, paths without trailing slash, frozen', async (t) => {
  const config = loadConfig({ env: {}, iniPath: missing });
  t.same(
    { ...config, configFile: { ...config.configFile } },
    {
      volumesPath: '/var/lib/buttervolume/volumes',
      snapshotsPath: '/var/lib/buttervolume/snapshots',
      testRemotePath: '/var/lib/buttervolume/received',
      schedulePath: '/etc/buttervolume/schedule.csv',
      driverName: 'anybox/buttervolume:latest',
      runPath: '/run/docker',
      socketPath: '/run/docker/plugins/btrfs.sock',
      timerSeconds: 60,
      dtFormat: '%Y-%m-%dT%H:%M:%S.%f',
      logLevel: 'INFO',
      sshPort: 1122,
      sshPath: '/var/lib/buttervolume/ssh',
      replicationIdleSeconds: 60,
      receiveReserve: { percent: 5 },
      quotas: 'off',
      syncClockSkewSeconds: 300,
      sendReadAhead: true,
      nodeName: hostname(),
      handoverTimeoutSeconds: 25,
      failoverAfterSeconds: 60,
      metricsAddress: null,
      configFile: { path: missing, found: false },
      warnings: [],
    },
  );
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.configFile));
  t.throws(() => {
    (config as { timerSeconds: number }).timerSeconds = 1;
  }, TypeError);
});

t.test('CONFIG_VARIABLES documents the defaults loadConfig uses', async (t) => {
  const config = loadConfig({ env: {}, iniPath: missing });
  t.same(
    CONFIG_VARIABLES.map((v) => v.name),
    ['VOLUMES_PATH', 'SNAPSHOTS_PATH', 'TEST_REMOTE_PATH', 'SCHEDULE', 'DRIVERNAME', 'RUNPATH', 'SOCKET', 'TIMER', 'DTFORMAT', 'LOGLEVEL', 'SSH_PORT', 'SSH_PATH', 'REPLICATION_IDLE_TIMEOUT', 'RECEIVE_RESERVE', 'QUOTAS', 'SYNC_CLOCK_SKEW', 'SEND_READ_AHEAD', 'NODE_NAME', 'HANDOVER_TIMEOUT', 'FAILOVER_AFTER', 'METRICS_ADDRESS'],
  );
  const shown = (value: unknown): string =>
    value === null ? '' : typeof value === 'object' && 'percent' in value ? `${(value as { percent: number }).percent}%` : String(value);
  for (const v of CONFIG_VARIABLES) {
    const expected = v.default.replace('$RUNPATH', '/run/docker').replace('$HOSTNAME', hostname()).replace(/(.)\/$/, '$1');
    t.equal(shown(config[v.field as keyof Config]), expected, `${v.name} default`);
  }
  t.equal(CONFIG_VARIABLES.find((v) => v.name === 'TIMER')!.env, 'BUTTERVOLUME_TIMER');
  t.equal(CONFIG_VARIABLES.find((v) => v.name === 'SSH_PORT')!.env, 'BUTTERVOLUME_SSH_PORT');
  t.equal(CONFIG_VARIABLES.find((v) => v.name === 'SSH_PORT')!.plainEnv, 'SSH_PORT');
  t.equal(DEFAULT_CONFIG_FILE, '/etc/buttervolume/config.ini');
});

t.test('environment wins over config.ini, which wins over the default', async (t) => {
  const iniPath = ini('[DEFAULT]\nTIMER = 120\nVOLUMES_PATH = /ini/volumes/\nLOGLEVEL = debug\n');
  const config = loadConfig({ env: { BUTTERVOLUME_TIMER: '30' }, iniPath });
  t.equal(config.timerSeconds, 30, 'environment');
  t.equal(config.volumesPath, '/ini/volumes', 'config.ini');
  t.equal(config.logLevel, 'DEBUG', 'config.ini, case-insensitive level');
  t.equal(config.snapshotsPath, '/var/lib/buttervolume/snapshots', 'default');
  t.same(config.configFile, { path: iniPath, found: true });
});

t.test('an empty or blank environment value falls through', async (t) => {
  const iniPath = ini('[DEFAULT]\nTIMER = 120\n');
  t.equal(loadConfig({ env: { BUTTERVOLUME_TIMER: '' }, iniPath }).timerSeconds, 120);
  t.equal(loadConfig({ env: { BUTTERVOLUME_TIMER: '  ' }, iniPath }).timerSeconds, 120);
  t.equal(loadConfig({ env: { BUTTERVOLUME_VOLUMES_PATH: '' }, iniPath: missing }).volumesPath, '/var/lib/buttervolume/volumes');
  t.equal(loadConfig({ env: { SSH_PORT: '' }, iniPath: missing }).sshPort, 1122);
});

t.test('SOCKET is derived from the effective RUNPATH unless set', async (t) => {
  t.equal(loadConfig({ env: { BUTTERVOLUME_RUNPATH: '/tmp/rp/' }, iniPath: missing }).socketPath, '/tmp/rp/plugins/btrfs.sock');
  const iniPath = ini('[DEFAULT]\nRUNPATH = /ini/run\n');
  t.equal(loadConfig({ env: {}, iniPath }).socketPath, '/ini/run/plugins/btrfs.sock');
  const both = loadConfig({ env: { BUTTERVOLUME_RUNPATH: '/env/run', BUTTERVOLUME_SOCKET: '/s/b.sock' }, iniPath });
  t.equal(both.runPath, '/env/run');
  t.equal(both.socketPath, '/s/b.sock');
});

t.test('BUTTERVOLUME_CONFIG names the config.ini; iniPath overrides it', async (t) => {
  const a = ini('[DEFAULT]\nTIMER = 7\n');
  const b = ini('[DEFAULT]\nTIMER = 8\n');
  t.equal(loadConfig({ env: { BUTTERVOLUME_CONFIG: a } }).timerSeconds, 7);
  t.equal(loadConfig({ env: { BUTTERVOLUME_CONFIG: a }, iniPath: b }).timerSeconds, 8);
  const gone = loadConfig({ env: { BUTTERVOLUME_CONFIG: missing } });
  t.equal(gone.timerSeconds, 60, 'missing file: defaults');
  t.same(gone.configFile, { path: missing, found: false });
});

t.test('config.ini is read like configparser', async (t) => {
  const iniPath = ini(
    '\uFEFF# comment\r\n; other comment\r\n[DEFAULT]\r\n' +
      'Timer: 90\r\n' + // ':' delimiter, key case-insensitive
      'volumes_PATH   =   /v/x//y/  \r\n' + // trimmed, normalised
      'dtformat = %%Y%%m%%d-%%H%%M%%S\r\n' + // Python's escaping
      'snapshots_path = %(volumes_path)s/../snaps\r\n' + // interpolation
      '[other]\r\nTIMER = 5\r\nloglevel = nonsense\r\n' +
      '[DEFAULT]\r\nloglevel = warn\r\n',
  );
  const config = loadConfig({ env: {}, iniPath });
  t.equal(config.timerSeconds, 90, 'other sections ignored');
  t.equal(config.volumesPath, '/v/x/y');
  t.equal(config.dtFormat, '%Y%m%d-%H%M%S');
  t.equal(config.snapshotsPath, '/v/x/snaps');
  t.equal(config.logLevel, 'WARNING');
});

t.test('inline text after a value is kept, so a bad value is reported', async (t) => {
  const iniPath = ini('[DEFAULT]\nTIMER = 60 # seconds\n');
  const err = configError(t, { env: {}, iniPath });
  t.equal(err.message, `TIMER="60 # seconds" (${iniPath} line 2): must be a positive whole number of seconds`);
  t.equal(err.variable, 'TIMER');
  t.equal(err.source, `${iniPath} line 2`);
});

t.test('a single % in DTFORMAT is taken literally (the original refused it)', async (t) => {
  const iniPath = ini('[DEFAULT]\nDTFORMAT = %Y-%m-%dT%H:%M:%S.%f\n');
  t.equal(loadConfig({ env: {}, iniPath }).dtFormat, '%Y-%m-%dT%H:%M:%S.%f');
  t.equal(loadConfig({ env: { BUTTERVOLUME_DTFORMAT: '%%Y%Y%m%d%H%M%S' }, iniPath }).dtFormat, '%%Y%Y%m%d%H%M%S', 'no interpolation of the environment');
});

t.test('unknown keys in config.ini are warned about', async (t) => {
  const iniPath = ini('[DEFAULT]\nVOLUME_PATH = /typo\nSSH_PORT = 22\n');
  const config = loadConfig({ env: {}, iniPath });
  t.same(config.warnings, [`${iniPath} line 2: unknown key "volume_path" ignored`]);
  t.ok(Object.isFrozen(config.warnings));
});

t.test('SSH_PORT: BUTTERVOLUME_SSH_PORT, then SSH_PORT (the plugin setting), then config.ini, then 1122', async (t) => {
  const iniPath = ini('[DEFAULT]\nSSH_PORT = 22\nSSH_PATH = /ini/ssh\n');
  t.equal(loadConfig({ env: {}, iniPath }).sshPort, 22, 'config.ini');
  t.equal(loadConfig({ env: { SSH_PORT: '2222' }, iniPath }).sshPort, 2222, 'the plain variable the original plugin sets');
  t.equal(loadConfig({ env: { SSH_PORT: '2222', BUTTERVOLUME_SSH_PORT: '3333' }, iniPath }).sshPort, 3333);
  t.equal(loadConfig({ env: {}, iniPath }).sshPath, '/ini/ssh');
  t.equal(loadConfig({ env: { BUTTERVOLUME_SSH_PATH: '/env/ssh/' }, iniPath }).sshPath, '/env/ssh');
  t.throws(() => loadConfig({ env: { SSH_PORT: 'x' }, iniPath }), { message: 'SSH_PORT="x" (environment): must be a port number from 1 to 65535 (0: no SSH server)' });
  t.equal(loadConfig({ env: { SSH_PORT: '0' }, iniPath }).sshPort, 0, '0 turns the server off');
});

t.test('malformed or unreadable config.ini', async (t) => {
  const cases: [string, RegExp][] = [
    ['TIMER = 5\n', /line 1: a section header such as \[DEFAULT\] must come before "TIMER = 5"/],
    ['[DEFAULT]\nTIMER 5\n', /line 2: expected "key = value", a \[section\] header or a comment, got "TIMER 5"/],
    ['[DEFAULT]\n= 5\n', /line 2: expected "key = value"/],
    ['[DEFAULT]\nTIMER = 5\ntimer = 6\n', /line 3: key "timer" is already set in \[DEFAULT\] on line 2/],
    ['[DEFAULT]\nSOCKET = %(nope)s/x\n', /line 2: %\(nope\)s refers to "nope", which is not set in \[DEFAULT\]/],
    ['[DEFAULT]\na = %(b)s\nb = %(a)s\n', /interpolation nested deeper than 10 levels/],
  ];
  for (const [text, message] of cases) {
    const iniPath = ini(text);
    const err = configError(t, { env: {}, iniPath });
    t.match(err.message, message, JSON.stringify(text));
    t.ok(err.message.startsWith(`config file ${iniPath} line `), 'names the file');
    t.equal(err.variable, undefined);
  }
  const directory = join(dir, 'a-directory.ini');
  mkdirSync(directory);
  const err = configError(t, { env: {}, iniPath: directory });
  t.match(err.message, `config file ${directory} cannot be read: EISDIR`);
});

t.test('a value continued on an indented line is refused', async (t) => {
  const iniPath = ini('[DEFAULT]\nVOLUMES_PATH = /a\n  /b\n');
  const err = configError(t, { env: {}, iniPath });
  t.equal(err.message, `VOLUMES_PATH="/a\\n/b" (${iniPath} line 2): must be a single line without control characters`);
});

t.test('invalid values: one line naming the variable, its source and the problem', async (t) => {
  const env = (name: string, value: string): [Record<string, string>, string] => [
    { [name]: value },
    `${name}=${JSON.stringify(value)} (environment): `,
  ];
  const cases: [Record<string, string>, string, string][] = [
    [...env('BUTTERVOLUME_TIMER', 'abc'), 'must be a positive whole number of seconds'],
    [...env('BUTTERVOLUME_TIMER', '0'), 'must be a positive whole number of seconds'],
    [...env('BUTTERVOLUME_TIMER', '-5'), 'must be a positive whole number of seconds'],
    [...env('BUTTERVOLUME_TIMER', '1.5'), 'must be a positive whole number of seconds'],
    [...env('BUTTERVOLUME_TIMER', '６０'), 'must be a positive whole number of seconds'],
    [...env('BUTTERVOLUME_TIMER', '2147484'), 'must be at most 2147483 seconds (about 24 days)'],
    [...env('BUTTERVOLUME_LOGLEVEL', 'verbose'), 'must be one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL'],
    [...env('BUTTERVOLUME_DTFORMAT', 'snapshot'), 'must contain at least one strftime directive such as %Y'],
    [...env('BUTTERVOLUME_DTFORMAT', '100%%'), 'must contain at least one strftime directive such as %Y'],
    [...env('BUTTERVOLUME_DTFORMAT', '%Y%'), 'stray "%" at the end'],
    [...env('BUTTERVOLUME_DTFORMAT', '%Y-%Q'), '"%Q" is not supported (use %Y %m %d %H %M %S %f %y %j %b %B %a %A %p %I %z %Z %%)'],
    [...env('BUTTERVOLUME_DTFORMAT', '%x'), '"%x" is not supported (use %Y %m %d %H %M %S %f %y %j %b %B %a %A %p %I %z %Z %%)'],
    [...env('BUTTERVOLUME_DTFORMAT', '%Y%z'), 'its output "2024" does not parse back'],
    [...env('BUTTERVOLUME_DTFORMAT', '%Y-%m-%Y'), 'its output "2024-01-2024" does not parse back'],
    [...env('BUTTERVOLUME_DTFORMAT', '%Y/%m'), '"/" cannot appear in a snapshot name'],
    [...env('BUTTERVOLUME_DTFORMAT', '%Y@%m'), '"@" cannot appear in a snapshot name'],
    [...env('BUTTERVOLUME_DTFORMAT', '%Y'), 'it does not show the second (%S), so two snapshots taken a second apart could get the same name'],
    [...env('BUTTERVOLUME_DTFORMAT', '%Y-%m-%d %I:%M:%S'), 'it does not show AM/PM (%H, or %I with %p), so two snapshots taken a second apart could get the same name'],
    [...env('BUTTERVOLUME_DRIVERNAME', 'my plugin'), 'must be a plugin reference such as anybox/buttervolume:latest (no spaces, no leading "-")'],
    [...env('BUTTERVOLUME_DRIVERNAME', '-x'), 'must be a plugin reference such as anybox/buttervolume:latest (no spaces, no leading "-")'],
    [...env('SSH_PORT', '-1'), 'must be a port number from 1 to 65535 (0: no SSH server)'],
    [...env('SSH_PORT', '70000'), 'must be a port number from 1 to 65535 (0: no SSH server)'],
    [...env('SSH_PORT', 'ssh'), 'must be a port number from 1 to 65535 (0: no SSH server)'],
    [...env('BUTTERVOLUME_REPLICATION_IDLE_TIMEOUT', '0'), 'must be a whole number of seconds from 1 to 86400'],
    [...env('BUTTERVOLUME_REPLICATION_IDLE_TIMEOUT', '1m'), 'must be a whole number of seconds from 1 to 86400'],
    [...env('BUTTERVOLUME_SYNC_CLOCK_SKEW', '-1'), 'must be a whole number of seconds from 0 to 31622400'],
    [...env('BUTTERVOLUME_SEND_READ_AHEAD', 'maybe'), 'must be true or false'],
    [...env('BUTTERVOLUME_RECEIVE_RESERVE', '60%'), 'a percentage must be from 0% to 50%'],
    [...env('BUTTERVOLUME_RECEIVE_RESERVE', 'lots'), 'must be a size such as 1G or 512M (binary units K, M, G, T) or a percentage such as 5%'],
    [...env('BUTTERVOLUME_RECEIVE_RESERVE', '1.5G'), 'must be a size such as 1G or 512M (binary units K, M, G, T) or a percentage such as 5%'],
    [...env('BUTTERVOLUME_NODE_NAME', 'node 1'), 'must be a host name (letters, digits, "." and "-")'],
    [...env('BUTTERVOLUME_HANDOVER_TIMEOUT', '0'), 'must be a whole number of seconds from 1 to 3600'],
  ];
  for (const name of ['VOLUMES_PATH', 'SNAPSHOTS_PATH', 'TEST_REMOTE_PATH', 'SCHEDULE', 'RUNPATH', 'SOCKET']) {
    cases.push([...env(`BUTTERVOLUME_${name}`, 'var/lib/x'), 'must be an absolute path (starting with /)']);
  }
  const long = `/${'s'.repeat(110)}`;
  cases.push([...env('BUTTERVOLUME_SOCKET', long), 'is 111 bytes long; a unix socket path can have at most 107']);
  for (const [envVars, prefix, problem] of cases) {
    const err = configError(t, { env: envVars, iniPath: missing });
    t.equal(err.message, prefix + problem);
    t.equal(err.source, 'environment');
    t.equal(err.variable, Object.keys(envVars)[0]!.replace(/^BUTTERVOLUME_/, ''));
  }
});

t.test('a bad value from config.ini names the file and line', async (t) => {
  const iniPath = ini('[DEFAULT]\n\nRUNPATH = run/docker\n');
  const err = configError(t, { env: {}, iniPath });
  t.equal(err.message, `RUNPATH="run/docker" (${iniPath} line 3): must be an absolute path (starting with /)`);
});

t.test('accepted variants', async (t) => {
  const config = loadConfig({
    env: {
      BUTTERVOLUME_LOGLEVEL: 'Critical',
      BUTTERVOLUME_TIMER: ' 300 ',
      SSH_PORT: '22',
      BUTTERVOLUME_DTFORMAT: '%Y%m%d%H%M%S%%',
      BUTTERVOLUME_SCHEDULE: '/etc/bv/./sched.csv',
      BUTTERVOLUME_RECEIVE_RESERVE: '512M',
      BUTTERVOLUME_REPLICATION_IDLE_TIMEOUT: '5',
      BUTTERVOLUME_SYNC_CLOCK_SKEW: '0',
    },
    iniPath: missing,
  });
  t.same(config.receiveReserve, { bytes: 512 * 1024 * 1024 });
  t.equal(config.replicationIdleSeconds, 5);
  t.equal(config.syncClockSkewSeconds, 0);
  t.equal(config.sendReadAhead, true);
  for (const [value, on] of [['false', false], ['OFF', false], ['0', false], ['Yes', true], [' on ', true]] as const) {
    t.equal(loadConfig({ env: { BUTTERVOLUME_SEND_READ_AHEAD: value }, iniPath: missing }).sendReadAhead, on, `SEND_READ_AHEAD=${value}`);
  }
  t.same(loadConfig({ env: { BUTTERVOLUME_RECEIVE_RESERVE: '1GiB' }, iniPath: missing }).receiveReserve, { bytes: 1024 ** 3 });
  t.same(loadConfig({ env: { BUTTERVOLUME_RECEIVE_RESERVE: '2.5%' }, iniPath: missing }).receiveReserve, { percent: 2.5 });
  t.equal(config.logLevel, 'CRITICAL');
  t.equal(config.timerSeconds, 300);
  t.equal(config.sshPort, 22);
  t.equal(config.dtFormat, '%Y%m%d%H%M%S%%');
  t.equal(config.schedulePath, '/etc/bv/sched.csv');
  for (const [name, level] of [['warn', 'WARNING'], ['FATAL', 'CRITICAL'], ['error', 'ERROR']] as const) {
    t.equal(loadConfig({ env: { BUTTERVOLUME_LOGLEVEL: name }, iniPath: missing }).logLevel, level);
  }
});

t.test('METRICS_ADDRESS: empty (not served), or an address and port', async (t) => {
  t.equal(loadConfig({ env: {}, iniPath: missing }).metricsAddress, null);
  t.same(loadConfig({ env: { BUTTERVOLUME_METRICS_ADDRESS: '127.0.0.1:9323' }, iniPath: missing }).metricsAddress, { host: '127.0.0.1', port: 9323 });
  t.same(loadConfig({ env: { BUTTERVOLUME_METRICS_ADDRESS: '[::1]:9323' }, iniPath: missing }).metricsAddress, { host: '::1', port: 9323 });
  t.same(loadConfig({ env: {}, iniPath: ini('[DEFAULT]\nmetrics_address = localhost:9100\n') }).metricsAddress, { host: 'localhost', port: 9100 });
  for (const bad of ['9323', '0.0.0.0', ':9323', '127.0.0.1:0', '127.0.0.1:70000', 'a b:1', 'http://x:1']) {
    const err = configError(t, { env: { BUTTERVOLUME_METRICS_ADDRESS: bad }, iniPath: missing });
    t.equal(err.variable, 'METRICS_ADDRESS', `${bad}: refused`);
  }
});

t.test('QUOTAS: off (the default), simple or qgroup, from the environment or config.ini', async (t) => {
  t.equal(loadConfig({ env: {}, iniPath: missing }).quotas, 'off');
  t.equal(loadConfig({ env: { BUTTERVOLUME_QUOTAS: 'simple' }, iniPath: missing }).quotas, 'simple');
  t.equal(loadConfig({ env: { BUTTERVOLUME_QUOTAS: ' QGroup ' }, iniPath: missing }).quotas, 'qgroup', 'case-insensitive, trimmed');
  t.equal(loadConfig({ env: {}, iniPath: ini('[DEFAULT]\nquotas = simple\n') }).quotas, 'simple');
  const err = configError(t, { env: { BUTTERVOLUME_QUOTAS: 'on' }, iniPath: missing });
  t.equal(err.variable, 'QUOTAS');
  t.equal(err.message, 'BUTTERVOLUME_QUOTAS="on" (environment): must be off, simple (btrfs simple quotas, Linux 6.7+) or qgroup (full qgroups)');
});

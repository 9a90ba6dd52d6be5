// `buttervolume doctor`, the checks of this host: each seen OK on a sound
// setup (a real daemon on a real btrfs) and failing on a broken one: paths on
// two filesystems or not on btrfs, a stale socket, a file in its place, a
// private key others may read, files others may write, too little space,
// openat2 failing (strace injects ENOSYS), quotas of the other kind, a
// schedule line that cannot be read. Exit status 0 without a FAIL, 1 with.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import { mountBtrfs, plainDir } from '../fixtures/btrfs.js';
import { freePort } from '../fixtures/managed-plugin.js';
import { BIN, cliFixture, hasStack, runCli, startRun, type CliFixture, type Result } from './fixtures/cli.js';

interface Finding {
  check: string;
  subject?: string;
  status: 'OK' | 'WARN' | 'FAIL';
  message: string;
  fix?: string;
}

/** No Docker here unless a test starts one: DOCKER_HOST names a socket that is not there. */
const NO_DOCKER = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };

async function doctor(f: CliFixture, extra: Record<string, string> = {}): Promise<{ r: Result; findings: Finding[]; by: (check: string) => Finding }> {
  const r = await f.bv(['doctor', '--json'], { ...NO_DOCKER, ...extra });
  const doc = JSON.parse(r.stdout) as { ok: boolean; checks: Finding[] };
  const by = (check: string) => {
    const found = doc.checks.find((c) => c.check === check);
    if (!found) throw new Error(`no ${check} finding in ${r.stdout}`);
    return found;
  };
  if (doc.ok !== !doc.checks.some((c) => c.status === 'FAIL')) throw new Error('ok does not match the findings');
  return { r, findings: doc.checks, by };
}

const failing = (findings: readonly Finding[]): string[] => findings.filter((c) => c.status === 'FAIL').map((c) => c.check);

/** strace `args` with exactly `env` (plus PATH). */
function runStrace(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('strace', args, { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

t.test('a sound setup: every local check OK, exit 0, one line each in text', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  const run = await startRun(t, f.env);
  const { r, by, findings } = await doctor(f);
  t.equal(r.code, 0, r.stdout);
  for (const check of ['config', 'volumes-path', 'snapshots-path', 'same-filesystem', 'free-space', 'openat2', 'quotas', 'schedule', 'socket']) {
    t.equal(by(check).status, 'OK', `${check}: ${by(check).message}`);
  }
  t.match(by('socket').message, /the daemon answers on .*bv\.sock/);
  t.equal(by('docker').status, 'WARN', 'no Docker: a warning');
  t.notOk(findings.some((c) => c.status === 'FAIL'));
  const text = await f.bv(['doctor'], NO_DOCKER);
  t.equal(text.code, 0);
  const lines = text.stdout.trimEnd().split('\n');
  t.equal(lines.length, findings.length, 'one line per check');
  for (const line of lines) t.match(line, /^(OK {2}|WARN|FAIL) {2}[a-z0-9-]+( \S+)?: /);
  t.match(text.stdout, /^WARN {2}docker: no Docker engine answers on \/nonexistent\/docker\.sock: .*; fix: start Docker/m);
  t.equal(text.stderr, '');
  process.kill(run.pid, 'SIGTERM');
  await run.exited;
});

t.test('VOLUMES_PATH and SNAPSHOTS_PATH: not btrfs, two filesystems, one filesystem mounted twice', async (t) => {
  const f = await cliFixture(t);
  const plain = plainDir(t);
  let d = await doctor(f, { BUTTERVOLUME_SNAPSHOTS_PATH: join(plain, 'snapshots') });
  t.equal(d.r.code, 1);
  t.equal(d.by('volumes-path').status, 'OK');
  t.equal(d.by('snapshots-path').status, 'FAIL');
  t.match(d.by('snapshots-path').message, /SNAPSHOTS_PATH .*snapshots is on ext4 .*not btrfs/);
  t.match(d.by('snapshots-path').fix, /mount a btrfs filesystem on .*or set SNAPSHOTS_PATH/);
  t.same(failing(d.findings), ['snapshots-path', 'socket'], 'no daemon runs here either');
  t.match(d.r.stderr, /^buttervolume: doctor: 2 checks failed \(FAIL above\)\n$/);
  t.notOk(hasStack(d.r.stderr));
  t.notOk(existsSync(join(plain, 'snapshots')), 'nothing created');

  const other = mountBtrfs(t);
  d = await doctor(f, { BUTTERVOLUME_SNAPSHOTS_PATH: join(other.mnt, 'snapshots') });
  t.equal(d.by('snapshots-path').status, 'OK', 'each on btrfs');
  t.equal(d.by('same-filesystem').status, 'FAIL');
  t.match(d.by('same-filesystem').message, /^VOLUMES_PATH is on \/dev\/loop\d+ \(.*\) and SNAPSHOTS_PATH on another btrfs, \/dev\/loop\d+ \(.*\): no snapshot can be made/);
  t.same(failing(d.findings), ['same-filesystem', 'socket']);
  // The kernel agrees: a snapshot across them fails.
  await f.volume('db');
  const refused = await f.bv(['snapshot', 'db'], { BUTTERVOLUME_SNAPSHOTS_PATH: join(other.mnt, 'snapshots') });
  t.equal(refused.code, 1, 'a snapshot across the two is refused');
  t.match(refused.stderr, /EXDEV|cross-device|another filesystem/i);

  // The same btrfs mounted a second time (a bind mount): one filesystem.
  const second = join(other.mnt, 'again');
  mkdirSync(second);
  execFileSync('mount', ['--bind', f.mnt, second]);
  t.teardown(() => execFileSync('umount', [second]));
  d = await doctor(f, { BUTTERVOLUME_SNAPSHOTS_PATH: join(second, 'snapshots') });
  t.equal(d.by('same-filesystem').status, 'OK', d.by('same-filesystem').message);
  t.match(d.by('same-filesystem').message, /mounted twice/);
  t.same(failing(d.findings), ['socket']);
});

t.test('the socket: missing, stale (daemon killed), not a socket', async (t) => {
  const f = await cliFixture(t);
  let d = await doctor(f);
  t.equal(d.by('socket').status, 'FAIL');
  t.match(d.by('socket').message, /nothing at SOCKET .*bv\.sock: no daemon listens/);
  t.match(d.by('socket').fix, /systemctl start buttervolume/);

  const run = await startRun(t, f.env);
  process.kill(run.pid, 'SIGKILL');
  await run.exited;
  d = await doctor(f);
  t.equal(d.by('socket').status, 'FAIL');
  t.match(d.by('socket').message, /bv\.sock is stale: a socket file nobody answers/);
  t.match(d.by('socket').fix, /or rm .*bv\.sock/);
  t.equal(d.r.code, 1);

  execFileSync('rm', [f.env.BUTTERVOLUME_SOCKET!]);
  writeFileSync(f.env.BUTTERVOLUME_SOCKET!, '');
  d = await doctor(f);
  t.match(d.by('socket').message, /exists and is not a socket/);
});

t.test('SSH material: keys others may read, files others may write', async (t) => {
  const f = await cliFixture(t);
  const ssh = f.env.BUTTERVOLUME_SSH_PATH!;
  // The daemon makes the keys at its first start (with an SSH server).
  const serving = { BUTTERVOLUME_SSH_PORT: String(await freePort()) };
  const run = await startRun(t, { ...f.env, ...serving });
  process.kill(run.pid, 'SIGTERM');
  await run.exited;
  let d = await doctor(f, serving);
  for (const check of ['ssh-dir', 'host-key', 'client-key', 'authorized-keys']) t.equal(d.by(check).status, 'OK', `${check}: ${d.by(check).message}`);

  chmodSync(join(ssh, 'id_ed25519'), 0o644);
  chmodSync(join(ssh, 'ssh_host_ed25519_key'), 0o640);
  writeFileSync(join(ssh, 'authorized_keys'), 'ssh-ed25519 AAAA not-a-key\n');
  chmodSync(join(ssh, 'authorized_keys'), 0o666);
  writeFileSync(join(ssh, 'known_hosts'), '');
  chmodSync(join(ssh, 'known_hosts'), 0o646);
  d = await doctor(f, serving);
  t.equal(d.by('client-key').status, 'FAIL');
  t.match(d.by('client-key').message, /id_ed25519 \(client key\) has mode 0644: others may read it/);
  t.match(d.by('client-key').fix, /^chmod 600 .*id_ed25519$/);
  t.equal(d.by('host-key').status, 'FAIL');
  t.match(d.by('host-key').message, /mode 0640/);
  t.equal(d.by('authorized-keys').status, 'FAIL');
  t.match(d.by('authorized-keys').message, /mode 0666: others may write it/);
  t.equal(d.by('known-hosts-file').status, 'FAIL');
  t.equal(d.r.code, 1);

  chmodSync(join(ssh, 'authorized_keys'), 0o600);
  chmodSync(ssh, 0o777);
  d = await doctor(f, serving);
  t.equal(d.by('authorized-keys').status, 'WARN', 'a line that is no key is ignored, and said');
  t.match(d.by('authorized-keys').message, /line 1: not a key/);
  t.equal(d.by('ssh-dir').status, 'FAIL');
  t.match(d.by('ssh-dir').fix, /^chmod 700 /);
  chmodSync(ssh, 0o700);
  writeFileSync(join(ssh, 'id_ed25519'), 'hello\n', { mode: 0o600 });
  chmodSync(join(ssh, 'id_ed25519'), 0o600);
  d = await doctor(f, serving);
  t.match(d.by('client-key').message, /is not a private key/);
  t.equal(readFileSync(join(ssh, 'id_ed25519'), 'utf8'), 'hello\n', 'left as it is');
});

t.test('free space under RECEIVE_RESERVE warns', async (t) => {
  const f = await cliFixture(t);
  let d = await doctor(f);
  t.equal(d.by('free-space').status, 'OK', d.by('free-space').message);
  t.match(d.by('free-space').message, /^[\d.]+ MiB free of 1\.0 GiB on .*mnt \(RECEIVE_RESERVE 5%, 51\.2 MiB\)$/);
  d = await doctor(f, { BUTTERVOLUME_RECEIVE_RESERVE: '2G' });
  t.equal(d.by('free-space').status, 'WARN');
  t.match(d.by('free-space').message, /less than RECEIVE_RESERVE \(2\.0 GiB\): received snapshots are refused/);
  t.match(d.by('free-space').fix, /buttervolume purge/);
});

t.test('openat2: a kernel without it fails (ENOSYS injected by strace)', async (t) => {
  const f = await cliFixture(t);
  const r = await runStrace(['-f', '-qq', '-o', '/dev/null', '-e', 'inject=openat2:error=ENOSYS', process.execPath, BIN, 'doctor', '--json'], { ...f.env, ...NO_DOCKER });
  const doc = JSON.parse(r.stdout) as { checks: Finding[] };
  const openat2 = doc.checks.find((c) => c.check === 'openat2')!;
  t.equal(openat2.status, 'FAIL');
  t.match(openat2.message, /openat2 fails with ENOSYS \(Linux before 5\.6\)/);
  t.equal(r.code, 1);
});

t.test('quotas: QUOTAS of the other kind than the filesystem has fails', async (t) => {
  const f = await cliFixture(t);
  let d = await doctor(f, { BUTTERVOLUME_QUOTAS: 'simple' });
  t.equal(d.by('quotas').status, 'OK');
  t.match(d.by('quotas').message, /QUOTAS=simple, not on yet/);
  execFileSync('btrfs', ['quota', 'enable', f.mnt]);
  d = await doctor(f, { BUTTERVOLUME_QUOTAS: 'simple' });
  t.equal(d.by('quotas').status, 'FAIL');
  t.match(d.by('quotas').message, /QUOTAS=simple, but the filesystem of VOLUMES_PATH has full qgroups on/);
  t.match(d.by('quotas').fix, /set QUOTAS=qgroup/);
  d = await doctor(f, { BUTTERVOLUME_QUOTAS: 'qgroup' });
  t.equal(d.by('quotas').status, 'OK');
  t.match(d.by('quotas').message, /the filesystem has full qgroups/);
});

t.test('the schedule: a line that cannot be read warns; a bad configuration fails alone', async (t) => {
  const f = await cliFixture(t);
  writeFileSync(f.config.schedulePath, 'db,snapshot,60,True\ndb,snapshott,60,True\n');
  let d = await doctor(f);
  t.equal(d.by('schedule').status, 'WARN');
  t.match(d.by('schedule').message, /1 job, 1 line ignored \(line 2: unknown action "snapshott"/);
  d = await doctor(f, { BUTTERVOLUME_TIMER: 'soon' });
  t.same(
    d.findings.map((c) => [c.check, c.status]),
    [['config', 'FAIL']],
  );
  t.match(d.by('config').message, /BUTTERVOLUME_TIMER="soon" \(environment\)/);
  t.equal(d.r.code, 1);
});

t.test('usage', async (t) => {
  const r = await runCli(['doctor', 'extra'], {});
  t.equal(r.code, 2);
  t.match(r.stderr, /usage: buttervolume doctor \[--json\]/);
});

// Bench plumbing shared by bench/replicate and bench/sync: free ports, an
// OpenSSH sshd of the bench's own (its port, keys and sshd_config; OpenSSH's
// default algorithms), the CPU of processes from /proc, and our processes'
// environment. Benchmarks may spawn processes; the product never does.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A TCP port nobody listens on right now. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something accepts connections on 127.0.0.1:@port; rejects if @proc exits first. */
export async function waitForPort(port, proc, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (proc.exitCode !== null) throw new Error(`${what} exited (${proc.exitCode}) before listening on ${port}`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** The environment of our processes: without what only slows a Node start (see docs/benchmarks.md). */
export function baseEnv() {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** The BUTTERVOLUME_* environment of a host on the btrfs at @mnt, its files in @dir. */
export function hostEnv(mnt, dir, extra = {}) {
  return {
    ...baseEnv(),
    BUTTERVOLUME_CONFIG: join(dir, 'no-config.ini'),
    BUTTERVOLUME_VOLUMES_PATH: join(mnt, 'volumes'),
    BUTTERVOLUME_SNAPSHOTS_PATH: join(mnt, 'snapshots'),
    BUTTERVOLUME_TEST_REMOTE_PATH: join(mnt, 'received'),
    BUTTERVOLUME_SCHEDULE: join(dir, 'schedule.csv'),
    BUTTERVOLUME_RUNPATH: join(dir, 'run'),
    BUTTERVOLUME_SOCKET: join(dir, 'run', 'bv.sock'),
    BUTTERVOLUME_SSH_PATH: join(dir, 'ssh'),
    ...extra,
  };
}

const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;

/** CPU seconds (user+system) of @pid (all its threads) and of its children it has waited for, from /proc/<pid>/stat. */
export function cpu(pid = 'self') {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const v = f.slice(f.lastIndexOf(')') + 2).split(' ').map(Number); // v[0] is field 3 (state)
  return { own: (v[11] + v[12]) / TICK, children: (v[13] + v[14]) / TICK };
}

/**
 * An sshd of the bench's own on 127.0.0.1 (its directory @dir: keys, config,
 * known_hosts), OpenSSH's default algorithms. `sshArgs`: the client options
 * to reach it as root with its client key; `procs` gets the process, killed
 * by the caller's exit handler.
 */
export async function startSshd(dir, procs) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  chmodSync(join(dir, 'authorized_keys'), 0o600);
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PrintMotd no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  // sshd refuses to start without its privilege separation directory (made by its service unit).
  const madeRunSshd = !existsSync('/run/sshd');
  if (madeRunSshd) mkdirSync('/run/sshd', { mode: 0o755 });
  process.once('exit', () => madeRunSshd && rmSync('/run/sshd', { recursive: true, force: true }));
  const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(proc);
  let log = '';
  proc.stderr.on('data', (d) => (log = (log + d).slice(-20_000)));
  await waitForPort(port, proc, 'sshd');
  const sshArgs = ['-p', String(port), '-i', join(dir, 'client_key'), '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'LogLevel=ERROR'];
  return { port, proc, sshArgs, log: () => log };
}

/** @s quoted for a POSIX shell. */
export const shellQuote = (s) => `'${s.replaceAll("'", "'\\''")}'`;

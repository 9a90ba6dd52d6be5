// `buttervolume doctor`, the peers: every host of a replicate:/synchronize:
// line and every other replica of a replicated volume gets a known_hosts
// check and, when its key is recorded, a clock check through one `list`
// request. Against a real peer daemon (its SSH server on 127.0.0.1): no
// known_hosts entry (not contacted, nothing recorded), our key refused, all
// right, a changed host key, a closed port; against ssh2 servers speaking our
// protocol with a clock an hour or ten seconds ahead, or without a clock (an
// older buttervolume).
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import t from 'tap';

import { mountBtrfs } from '../fixtures/btrfs.js';
import { daemonEnv, startDaemonProcess } from '../fixtures/daemon.js';
import { freePort } from '../fixtures/managed-plugin.js';
import { scriptedPeer } from '../fixtures/scripted-peer.js';
import { cliFixture, type CliFixture } from './fixtures/cli.js';

interface Finding {
  check: string;
  subject?: string;
  status: 'OK' | 'WARN' | 'FAIL';
  message: string;
  fix?: string;
}

interface TeardownHost {
  teardown(fn: () => void | Promise<void>): void;
}

async function doctor(f: CliFixture): Promise<{ code: number | null; findings: Finding[]; of: (check: string, subject: string) => Finding | undefined }> {
  const r = await f.bv(['doctor', '--json'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
  const findings = (JSON.parse(r.stdout) as { checks: Finding[] }).checks;
  return { code: r.code, findings, of: (check, subject) => findings.find((c) => c.check === check && c.subject === subject) };
}

/** A real daemon with an SSH server on a free port, on a btrfs of its own. */
async function peerDaemon(t: TeardownHost): Promise<{ port: number; sshPath: string; hostLine: string }> {
  const port = await freePort();
  const env = daemonEnv(mountBtrfs(t).mnt, { BUTTERVOLUME_SSH_PORT: String(port) });
  await startDaemonProcess(t, env);
  const sshPath = env.BUTTERVOLUME_SSH_PATH!;
  const [type, key] = readFileSync(join(sshPath, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ');
  return { port, sshPath, hostLine: `[127.0.0.1]:${port} ${type} ${key}` };
}

/** A peer answering `list` only, its answers carrying `now()` (undefined: no clock). */
function fakePeer(t: TeardownHost, now: () => number | undefined): Promise<{ port: number; hostLine: string }> {
  return scriptedPeer(t, (_request, channel) => channel.end(`${JSON.stringify({ ok: true, snapshots: [], ...(now() === undefined ? {} : { now: now() }) })}\n`));
}

t.test('a scheduled peer: known_hosts, our key, the clock, a changed key, a closed port', async (t) => {
  const f = await cliFixture(t);
  const ssh = f.env.BUTTERVOLUME_SSH_PATH!;
  const ourKey = (await f.bv(['ssh-key'])).stdout.trim();
  const peer = await peerDaemon(t);
  const label = `127.0.0.1:${peer.port}`;
  writeFileSync(f.config.schedulePath, `db,replicate:${label},60,True\n`);
  const known = join(ssh, 'known_hosts');

  let d = await doctor(f);
  t.equal(d.of('known-host', label)?.status, 'WARN');
  t.match(d.of('known-host', label)?.message, new RegExp(`records no host key of \\[127\\.0\\.0\\.1\\]:${peer.port} \\(schedule line 1\\): the first connection trusts whatever key it is shown`));
  t.match(d.of('known-host', label)?.fix, /ssh_host_ed25519_key\.pub/);
  t.notOk(d.of('clock', label), 'not contacted');
  t.notOk(existsSync(known), 'no host key recorded');

  writeFileSync(known, `${peer.hostLine}\n`);
  d = await doctor(f);
  t.equal(d.of('known-host', label)?.status, 'OK');
  t.equal(d.of('clock', label)?.status, 'FAIL', 'our key is not authorized there');
  t.match(d.of('clock', label)?.message, /refused our key/);
  t.match(d.of('clock', label)?.fix, /buttervolume ssh-key/);
  t.equal(d.code, 1);

  appendFileSync(join(peer.sshPath, 'authorized_keys'), `${ourKey}\n`);
  d = await doctor(f);
  const clock = d.of('clock', label)!;
  t.equal(clock.status, 'OK', clock.message);
  t.match(clock.message, new RegExp(`^${label.replace(/\./g, '\\.')}'s clock is \\d+ ms (ahead of|behind) this host's \\(±\\d+ ms\\)$`));
  t.ok(Number(/is (\d+) ms/.exec(clock.message)![1]) < 1000, 'one machine, one clock');

  const other = ssh2.utils.parseKey(ssh2.utils.generateKeyPairSync('ed25519').public) as ssh2.ParsedKey;
  writeFileSync(known, `[127.0.0.1]:${peer.port} ${other.type} ${other.getPublicSSH().toString('base64')}\n`);
  d = await doctor(f);
  t.equal(d.of('clock', label)?.status, 'FAIL');
  t.match(d.of('clock', label)?.message, /is not the one recorded in .*known_hosts line 1/);
  t.equal(readFileSync(known, 'utf8').split('\n').filter(Boolean).length, 1, 'known_hosts unchanged');

  const closed = await freePort();
  writeFileSync(f.config.schedulePath, `db,"synchronize:127.0.0.1:${closed}",60,False\n`);
  writeFileSync(known, `[127.0.0.1]:${closed} ${peer.hostLine.split(' ').slice(1).join(' ')}\n`);
  const started = Date.now();
  d = await doctor(f);
  t.equal(d.of('clock', `127.0.0.1:${closed}`)?.status, 'FAIL');
  t.match(d.of('clock', `127.0.0.1:${closed}`)?.message, /cannot reach .*ECONNREFUSED/);
  t.match(d.of('known-host', `127.0.0.1:${closed}`)?.message, /schedule line 1 \(paused\)/, 'a paused job names its peer too');
  t.ok(Date.now() - started < 20_000, 'bounded');
});

t.test('clocks apart: an hour (FAIL), ten seconds (WARN), no clock (an older peer)', async (t) => {
  const f = await cliFixture(t);
  await f.bv(['ssh-key']);
  const hour = await fakePeer(t, () => Date.now() + 3600_000);
  const ten = await fakePeer(t, () => Date.now() - 10_000);
  const old = await fakePeer(t, () => undefined);
  writeFileSync(f.config.schedulePath, [hour, ten, old].map((p) => `db,replicate:127.0.0.1:${p.port},60,True`).join('\n'));
  writeFileSync(join(f.env.BUTTERVOLUME_SSH_PATH!, 'known_hosts'), [hour, ten, old].map((p) => p.hostLine).join('\n'));
  const d = await doctor(f);
  const c = (p: { port: number }) => d.of('clock', `127.0.0.1:${p.port}`)!;
  t.equal(c(hour).status, 'FAIL');
  t.match(c(hour).message, /clock is 3600\.\d s ahead of this host's .*more than SYNC_CLOCK_SKEW \(300 s\): sync skips files dated in the future/);
  t.match(c(hour).fix, /NTP/);
  t.equal(c(ten).status, 'WARN');
  t.match(c(ten).message, /clock is 10\.\d s behind this host's/);
  t.equal(c(old).status, 'WARN');
  t.match(c(old).message, /does not tell its time/);
  t.equal(d.code, 1);
});

t.test('the replicas of a volume that follows its service are peers too (this node left out)', async (t) => {
  const f = await cliFixture(t);
  // Named by a name: 127.0.0.1 would be this node (a node knows itself by its addresses too).
  await f.store.create('app', { copyOnWrite: true, compression: null, cluster: { replicas: ['me', 'localhost:2222', '127.0.0.1:2223'], rpo: null, failover: 'manual' } });
  const d = await f.bv(['doctor', '--json'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock', BUTTERVOLUME_NODE_NAME: 'me' });
  const findings = (JSON.parse(d.stdout) as { checks: Finding[] }).checks;
  t.same(
    findings.filter((c) => c.check === 'known-host').map((c) => c.subject),
    ['localhost:2222'],
    'the other replica only: neither NODE_NAME nor an address of this host',
  );
  t.match(findings.find((c) => c.check === 'known-host')!.message, /\(replicas of app\)/);
});

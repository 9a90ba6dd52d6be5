// The hosts fixture (test/fixtures/hosts.ts), proven: hosts reach each other
// by name and by address, links go down and come back, each host runs its own
// `buttervolume run` on its own btrfs, and nothing is left afterwards, also
// when the test process throws, exits or is killed.
import { execFileSync, spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import t from 'tap';

import { socketAnswers } from '../../src/server/socket.js';
import { createHosts, listNetns, startHostDaemon, type Host, type Hosts } from '../fixtures/hosts.js';

const NODE = process.execPath;
const PROBE = fileURLToPath(new URL('./probe.mjs', import.meta.url));
const ECHO = fileURLToPath(new URL('./echo-server.mjs', import.meta.url));
const CRASH = fileURLToPath(new URL('./hosts-crash.ts', import.meta.url));
const PORT = 7000;

/** What a set made, to look for afterwards. */
interface Made {
  netnses: string[];
  pids: number[];
  mounts: string[];
  images: string[];
}

/** What `hosts` made; add the PIDs of the processes started in them to `pids`. */
function made(hosts: Hosts): Made {
  return {
    netnses: [hosts.switchNetns, ...hosts.map((h) => h.netns)],
    pids: [],
    mounts: hosts.flatMap((h) => (h.btrfs ? [h.btrfs.mnt] : [])),
    images: hosts.flatMap((h) => (h.btrfs ? [h.btrfs.image] : [])),
  };
}

/** What of `m` still exists: namespaces, /etc/netns entries, records, processes, mounts, loop devices, images. */
function leftovers(m: Made): string[] {
  const left: string[] = [];
  const netnses = listNetns();
  for (const n of m.netnses) {
    if (netnses.includes(n)) left.push(`netns ${n}`);
    if (existsSync(join('/etc/netns', n))) left.push(`/etc/netns/${n}`);
  }
  const tag = m.netnses[0]!.replace(/_switch$/, '');
  if (existsSync(`/run/bv-test-hosts/${tag}.json`)) left.push(`record ${tag}.json`);
  const ps = execFileSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' });
  for (const pid of m.pids) {
    const line = ps.split('\n').find((l) => l.trim().split(/\s+/)[0] === String(pid));
    if (line && !/^\s*\d+\s+Z/.test(line)) left.push(`process ${line.trim()}`);
  }
  const mounts = execFileSync('mount', { encoding: 'utf8' });
  for (const mnt of m.mounts) if (mounts.includes(` ${mnt} `)) left.push(`mount ${mnt}`);
  for (const image of m.images) {
    if (existsSync(image)) left.push(`image ${image}`);
    if (execFileSync('losetup', ['-j', image], { encoding: 'utf8' }).trim()) left.push(`loop device on ${image}`);
  }
  return left;
}

/** The machine's own interfaces, which must never change. */
const machineLinks = () => execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).replace(/\\.*$/gm, '');
const linksBefore = machineLinks();

/** `probe.mjs echo` from `from` to each target ("name:port"); the echoed line or an error code per target. */
async function echo(from: Host, targets: string[], timeoutMs = 2000): Promise<Record<string, string>> {
  const { stdout } = await from.exec(NODE, [PROBE, 'echo', String(timeoutMs), ...targets]);
  return JSON.parse(stdout);
}

const same = (targets: string[], result: string) => Object.fromEntries(targets.map((x) => [x, result]));

t.test('three hosts on one segment: names, addresses, cut links', async (t) => {
  let m: Made | undefined;
  await t.test('the network', async (t) => {
    const hosts = createHosts(t, ['node1', 'node2', 'node3'], { btrfs: false });
    m = made(hosts);
    const [n1, n2, n3] = hosts as unknown as [Host, Host, Host];
    t.not(n1.address, n2.address);
    t.equal(hosts.get('node3'), n3);
    const server = n1.spawn(NODE, [ECHO, String(PORT)]);
    m.pids.push(server.pid);
    await server.waitForOutput('listening');

    const { stdout } = await n2.exec(NODE, [PROBE, 'lookup', 'node1', 'node2', 'node3', 'localhost', 'node4']);
    t.same(
      JSON.parse(stdout),
      { hostname: 'node2', node1: n1.address, node2: n2.address, node3: n3.address, localhost: '127.0.0.1', node4: 'ENOTFOUND' },
      "dns.lookup inside a host finds every host (and localhost), an unknown name is ENOTFOUND; os.hostname() is the host's name",
    );
    await t.rejects(lookup('node1'), { code: 'ENOTFOUND' }, "the machine's own /etc/hosts is untouched");

    const targets = [`node1:${PORT}`, `${n1.address}:${PORT}`];
    const [up2, up3] = await Promise.all([echo(n2, targets), echo(n3, targets)]);
    t.same(up2, same(targets, 'node1: ping'), 'node2 reaches node1 by name and by address');
    t.same(up3, same(targets, 'node1: ping'), '...and so does node3');

    n1.linkDown();
    const [down2, down3] = await Promise.all([echo(n2, targets, 300), echo(n3, targets, 300)]);
    t.same({ ...down2, ...down3 }, same(targets, 'timeout'), 'linkDown: node1 is silent to the others');
    n1.linkUp();
    t.same(await echo(n2, targets), same(targets, 'node1: ping'), 'linkUp: node1 answers again');

    const session = n2.spawn(NODE, [PROBE, 'session', `node1:${PORT}`], { stdin: 'pipe' });
    m.pids.push(session.pid);
    await session.waitForOutput('echo node1: one');
    n1.linkDown();
    session.stdin!.write('two\n');
    await sleep(300); // to show an absence: nothing gets through while the link is down
    t.notMatch(session.stdout(), 'two', 'nothing crosses a cut link');
    n1.linkUp();
    await session.waitForOutput('echo node1: two');
    t.pass('an established connection carries on after linkUp (TCP retransmits)');

    n2.cutFrom(n1);
    const [cut2, cut3] = await Promise.all([echo(n2, targets, 300), echo(n3, targets)]);
    t.same(cut2, same(targets, 'timeout'), 'cutFrom: node2 no longer reaches node1');
    t.same(cut3, same(targets, 'node1: ping'), '...while node3 still does');
    n2.healFrom(n1);
    t.same(await echo(n2, targets), same(targets, 'node1: ping'), 'healFrom: node2 reaches node1 again');

    n3.linkDown('ifdown');
    t.same(await echo(n3, targets), same(targets, 'ENETUNREACH'), "linkDown('ifdown'): node3's own sends fail at once");
    n3.linkUp();
    t.same(await echo(n3, targets), same(targets, 'node1: ping'), 'linkUp restores its routes');

    const failed = await n2.exec('sh', ['-c', 'echo oops >&2; exit 4'], { allowFailure: true });
    t.match(failed, { code: 4, stderr: 'oops\n' }, 'exec with allowFailure resolves with the exit code');
    await t.rejects(n2.exec('sh', ['-c', 'echo oops >&2; exit 4']), /sh -c .* in node2 failed \(exit 4\); stderr:\noops/);
  });
  t.same(leftovers(m!), [], 'after teardown: no namespace, /etc/netns entry, record or process is left');
  t.equal(machineLinks(), linksBefore, "the machine's interfaces are unchanged");
});

t.test('a buttervolume run per host, each on its own btrfs', async (t) => {
  let m: Made | undefined;
  await t.test('the daemons', async (t) => {
    const hosts = createHosts(t, ['node1', 'node2', 'node3'], { mtu: 1400 });
    m = made(hosts);
    const daemons = await Promise.all(hosts.map((h) => startHostDaemon(t, h)));
    m.pids.push(...daemons.map((d) => d.pid));
    const names = async (i: number) => ((await daemons[i]!.call('/VolumeDriver.List', {})).body.Volumes as { Name: string }[]).map((v) => v.Name);
    t.same(await Promise.all(daemons.map((_, i) => names(i))), [[], [], []], 'each daemon answers VolumeDriver.List on its socket');

    const netnsOf = (path: string) => statSync(path).ino;
    for (const [i, d] of daemons.entries()) {
      const h = hosts[i]!;
      t.equal(netnsOf(`/proc/${d.pid}/ns/net`), netnsOf(`/run/netns/${h.netns}`), `the daemon of ${h.name} runs in its namespace`);
      const environ = readFileSync(`/proc/${d.pid}/environ`, 'utf8').split('\0');
      t.ok(environ.includes(`BUTTERVOLUME_SSH_PORT=${2201 + i}`) && environ.includes(`BUTTERVOLUME_SSH_PATH=${h.sshPath}`), 'it gets its SSH port and path');
      t.equal(statSync(h.sshPath).mode & 0o777, 0o700, 'the SSH directory is private');
    }
    t.equal(new Set(hosts.map((h) => statSync(h.btrfs!.mnt).dev)).size, 3, 'three separate filesystems');
    t.equal((await hosts[0]!.exec('cat', ['/sys/class/net/eth0/mtu'])).stdout, '1400\n', 'the mtu option applies');

    t.equal((await daemons[0]!.call('/VolumeDriver.Create', { Name: 'only-on-node1' })).status, 200);
    t.same(await Promise.all(daemons.map((_, i) => names(i))), [['only-on-node1'], [], []], 'a volume made on node1 is on node1 only');
    t.ok(existsSync(join(hosts[0]!.env.BUTTERVOLUME_VOLUMES_PATH!, 'only-on-node1')), '...in its btrfs');

    const pids = daemons.map((d) => d.pid);
    const node2 = daemons[1]!;
    node2.kill('SIGKILL');
    t.match(await node2.exited, { signal: 'SIGKILL' });
    t.notOk(await socketAnswers(node2.socket, 500), 'killed: its socket no longer answers');
    await node2.restart();
    m.pids.push(node2.pid);
    t.not(node2.pid, pids[1], 'restart() starts a new process...');
    t.same(await names(1), [], '...answering on the same socket');
    t.match(await daemons[2]!.stop(), { code: 0 }, 'stop() ends it gracefully');
  });
  t.same(leftovers(m!), [], 'after teardown: no namespace, process, mount, loop device or image is left');
  t.equal(machineLinks(), linksBefore, "the machine's interfaces are unchanged");
});

t.test('cleanup when the test process throws, exits, or is killed', async (t) => {
  // The child is bundled to plain JavaScript (tap's TypeScript loader would cost it ~2 s), beside a link to
  // node_modules for `tap`; it runs without the tap runner's variables.
  const dir = mkdtempSync(join(tmpdir(), 'bv-hosts-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(fileURLToPath(new URL('../../node_modules', import.meta.url)), join(dir, 'node_modules'));
  const bundle = join(dir, 'hosts-crash.mjs');
  buildSync({ entryPoints: [CRASH], outfile: bundle, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAP') && k !== 'NODE_OPTIONS'));
  const child = (mode: string) => {
    const p = spawn(NODE, [bundle, mode], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => p.once('close', (code) => resolve(code)));
    /** What it made, once it has printed it. */
    const made = async (): Promise<Made> => {
      for (;;) {
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) return JSON.parse(line);
        if (p.exitCode !== null) throw new Error(`hosts-crash ${mode} exited ${p.exitCode} without its report:\n${out}\n${err}`);
        await sleep(20);
      }
    };
    return { p, exited, made, output: () => `${out}\n${err}` };
  };
  const [thrower, exiter, victim] = ['tap-throw', 'exit', 'sigkill'].map(child) as [ReturnType<typeof child>, ReturnType<typeof child>, ReturnType<typeof child>];

  t.equal(await thrower.exited, 1, 'a tap test that throws with hosts up fails...');
  const thrown = await thrower.made();
  t.match(thrower.output(), /boom/);
  t.same(leftovers(thrown), [], '...and its teardown removed everything');

  t.equal(await exiter.exited, 3, 'a process that exits without any teardown...');
  t.same(leftovers(await exiter.made()), [], "...is cleaned up by the 'exit' handler");

  const killed = await victim.made();
  victim.p.kill('SIGKILL');
  await victim.exited;
  t.ok(leftovers(killed).length > 0, 'a SIGKILLed process leaves its hosts behind...');
  createHosts(t, ['sweeper'], { btrfs: false });
  t.same(leftovers(killed), [], '...until the next createHosts, which removes them (mounts included)');
});

// Proves test/fixtures/docker.ts on this machine: a real dockerd runs a
// container with a local volume, two engines run side by side, an engine with a
// private plugin directory uses a legacy plugin that mounts on the host, start
// failures are clear, and nothing is left behind (processes, mounts,
// directories, shim sockets) after a normal teardown, after dockerd crashed with
// a container running, or after the test process itself was SIGKILLed.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { LEGACY_PLUGIN_DIR, mountsUnder, processesUnder, sharedMountPoint, startDockerd, uniqueDriverName, type DockerEngine } from '../fixtures/docker.js';

/** Every engine started in this file, checked by the last subtest. */
const started: { dir: string; pid: number }[] = [];
/** Shim sockets (/run/containerd/s/...) seen while their container ran. */
const shimSockets: string[] = [];

function track(e: DockerEngine): DockerEngine {
  started.push({ dir: e.dir, pid: e.pid });
  return e;
}

function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(') ') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** containerd 1.6 puts a shim's socket at /run/containerd/s/sha256(<address>/<namespace>/<id>). */
function shimSocket(e: { dir: string }, containerId: string): string {
  const key = `${e.dir}/exec/containerd/containerd.sock/${basename(e.dir)}/${containerId}`;
  return `/run/containerd/s/${createHash('sha256').update(key).digest('hex')}`;
}

t.test('a container writes to a local volume', async (t) => {
  const t0 = performance.now();
  const e = track(await startDockerd(t));
  t.comment(`engine answered after ${e.timings.startMs} ms, image imported in ${e.timings.imageMs} ms, ready after ${Math.round(performance.now() - t0)} ms`);
  const t1 = performance.now();
  const r = await e.docker(['run', '--rm', '--network', 'none', '-v', 'v1:/data', e.image, 'sh', '-c', 'echo hi > /data/f && cat /data/f']);
  t.comment(`docker run took ${Math.round(performance.now() - t1)} ms`);
  t.equal(r.stdout, 'hi\n', 'the container wrote and read the volume');
  // other test files' plugins in /run/docker/plugins show up in every engine's volume ls
  t.equal((await e.docker(['volume', 'ls', '--filter', 'driver=local', '--format', '{{.Driver}} {{.Name}}'])).stdout, 'local v1\n');
  t.equal(readFileSync(join(e.dataRoot, 'volumes/v1/_data/f'), 'utf8'), 'hi\n', "the volume lives in this engine's data-root");
  t.equal((await e.docker(['ps', '-aq'])).stdout, '', '--rm removed the container');

  const failed = await e.docker(['volume', 'inspect', 'nope'], { allowFail: true });
  t.not(failed.code, 0, 'allowFail returns the exit code');
  t.match(failed.stderr, /no such volume/i);
  await t.rejects(e.docker(['volume', 'inspect', 'nope']), /docker volume inspect nope failed .*no such volume/i, 'errors carry the command and its stderr');
  const echoed = await e.docker(['run', '--rm', '-i', '--network', 'none', e.image, 'cat'], { input: 'through stdin\n' });
  t.equal(echoed.stdout, 'through stdin\n', 'input reaches the CLI');
  t.match(e.logTail(5), /\S/, 'logTail reads the dockerd log');
});

t.test('two engines run side by side', async (t) => {
  const [a, b] = (await Promise.all([startDockerd(t), startDockerd(t)])).map(track) as [DockerEngine, DockerEngine];
  t.not(a.host, b.host);
  const [ia, ib] = await Promise.all([a, b].map((e) => e.docker(['info', '--format', '{{.DockerRootDir}} {{.ServerVersion}}'])));
  t.match(ia!.stdout, `${a.dataRoot} `, 'engine A answers docker info from its own data-root');
  t.match(ib!.stdout, `${b.dataRoot} `, 'engine B answers docker info from its own data-root');
  // a container left running on A: invisible to B, removed by A's teardown
  const id = (await a.docker(['run', '-d', '--network', 'none', a.image, 'sleep', '600'])).stdout.trim();
  t.equal((await a.docker(['ps', '-q', '--no-trunc'])).stdout.trim(), id);
  t.equal((await b.docker(['ps', '-aq'])).stdout, '', 'B does not see A\'s container');
  t.equal((await b.docker(['run', '--rm', '--network', 'none', b.image, 'echo', 'B works'])).stdout, 'B works\n');
  shimSockets.push(shimSocket(a, id));
  t.ok(existsSync(shimSocket(a, id)), 'the shim socket is where the cleanup expects it');
});

t.test('pluginDir: a private plugin directory; host mounts still reach the engine', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'bv-smoke-plugin-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  sharedMountPoint(t, base); // this host's / is private: later mounts under base must reach the engine
  const mounted: string[] = [];
  t.teardown(() => {
    for (const m of mounted) execFileSync('umount', [m]);
  });
  const pluginDir = join(base, 'plugins');
  const driver = uniqueDriverName('bv-smoke');
  // A minimal legacy volume plugin: each volume is a tmpfs that the plugin mounts
  // ON THE HOST at its first Mount, i.e. after dockerd started (like btrfs).
  const vols = new Map<string, string>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const arg = (body ? JSON.parse(body) : {}) as { Name?: string };
      const name = arg.Name ?? '';
      const mp = vols.get(name);
      let out: Record<string, unknown> = { Err: '' };
      switch (req.url) {
        case '/Plugin.Activate': out = { Implements: ['VolumeDriver'] }; break;
        case '/VolumeDriver.Capabilities': out = { Capabilities: { Scope: 'local' } }; break;
        case '/VolumeDriver.Create': vols.set(name, join(base, 'vols', name)); break;
        case '/VolumeDriver.Remove': vols.delete(name); break;
        case '/VolumeDriver.Get': out = mp ? { Volume: { Name: name, Mountpoint: mp }, Err: '' } : { Err: `no such volume: ${name}` }; break;
        case '/VolumeDriver.List': out = { Volumes: [...vols].map(([Name, Mountpoint]) => ({ Name, Mountpoint })), Err: '' }; break;
        case '/VolumeDriver.Path': out = { Mountpoint: mp, Err: '' }; break;
        case '/VolumeDriver.Mount':
          if (mp && !mounted.includes(mp)) {
            mkdirSync(mp, { recursive: true });
            execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mp]);
            mounted.push(mp);
            writeFileSync(join(mp, 'from-host'), 'written on the host\n');
          }
          out = { Mountpoint: mp, Err: '' };
          break;
      }
      res.writeHead(out.Err ? 500 : 200);
      res.end(JSON.stringify(out));
    });
  });
  mkdirSync(pluginDir);
  await new Promise<void>((resolve) => server.listen(join(pluginDir, `${driver}.sock`), resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const [e, shared] = (await Promise.all([startDockerd(t, { pluginDir }), startDockerd(t)])).map(track) as [DockerEngine, DockerEngine];
  t.equal(e.pluginDir, pluginDir);
  t.equal(shared.pluginDir, LEGACY_PLUGIN_DIR);
  t.same(mountsUnder(e.dir), [], "the isolated engine's own mounts are not on the host");
  await e.docker(['volume', 'create', '-d', driver, 'pv']);
  const r = await e.docker(['run', '--rm', '--network', 'none', '-v', 'pv:/data', e.image, 'sh', '-c', 'cat /data/from-host && echo back > /data/from-container && grep -c " /data tmpfs " /proc/mounts']);
  t.equal(r.stdout, 'written on the host\n1\n', 'the container sees the tmpfs the plugin mounted on the host');
  t.equal(readFileSync(join(base, 'vols/pv/from-container'), 'utf8'), 'back\n', 'and the host sees what it wrote');
  t.notOk(existsSync(join(LEGACY_PLUGIN_DIR, `${driver}.sock`)), 'the socket is not in the shared directory');
  t.notMatch((await shared.docker(['volume', 'ls', '-q'])).stdout, /^pv$/m, 'an engine using the shared directory does not see the volume');
});

t.test('a failed start is clear and cleans up', async (t) => {
  await t.rejects(startDockerd(t, { dockerdPath: '/nonexistent/dockerd' }), /install the Debian package docker\.io/);
  let dir = '';
  await t.rejects(
    startDockerd(t, { extraArgs: ['--no-such-flag'] }).catch((err: Error) => {
      dir = /(\/tmp\/bv-dockerd-\w+)/.exec(err.message)?.[1] ?? '';
      throw err;
    }),
    /dockerd exited with code \d+ before answering[\s\S]*unknown flag: --no-such-flag/,
    'the error says how dockerd ended and shows its log',
  );
  t.not(dir, '', 'the error names the engine directory');
  t.notOk(existsSync(dir), 'and the directory is already gone');
  started.push({ dir, pid: 0 });
});

t.test('teardown after dockerd crashed with a container running', async (t) => {
  const e = track(await startDockerd(t));
  const id = (await e.docker(['run', '-d', '--network', 'none', '-v', 'v2:/data', e.image, 'sleep', '600'])).stdout.trim();
  process.kill(e.pid, 'SIGKILL');
  await waitFor('dockerd to die', () => !running(e.pid), 10_000);
  t.ok(processesUnder(e.dir).some((p) => p.cmd.includes('containerd-shim')), 'the shim outlives dockerd');
  t.ok(mountsUnder(e.dir).length > 0, 'and so do its mounts');
  shimSockets.push(shimSocket(e, id));
  t.ok(existsSync(shimSocket(e, id)), 'and its socket');
  // the registered teardown has to cope; checked by the last subtest
});

t.test('the watchdog cleans up after a test process killed by SIGKILL', async (t) => {
  const fixture = new URL('../fixtures/docker.ts', import.meta.url).href;
  const code = `
    const { startDockerd } = await import(${JSON.stringify(fixture)});
    const e = await startDockerd({ teardown() {} });
    const id = (await e.docker(['run', '-d', '--network', 'none', '-v', 'v3:/data', e.image, 'sleep', '600'])).stdout.trim();
    console.log(JSON.stringify({ dir: e.dir, pid: e.pid, id }));
    setInterval(() => {}, 1000);
  `;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const execArgv = process.execArgv.filter((a) => !a.includes('processinfo'));
  const child = spawn(process.execPath, [...execArgv, '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const closed = new Promise((r) => child.once('close', r));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('close', (c) => reject(new Error(`the child exited (${c}) before starting its engine`)));
  });
  const info = JSON.parse(line) as { dir: string; pid: number; id: string };
  started.push({ dir: info.dir, pid: info.pid });
  shimSockets.push(shimSocket(info, info.id));
  t.ok(running(info.pid), "the child's dockerd runs");
  child.kill('SIGKILL');
  await closed;
  const t0 = performance.now();
  await waitFor('the watchdog to clean up', () => !existsSync(info.dir) && processesUnder(info.dir).length === 0, 60_000);
  t.comment(`watchdog cleanup took ${Math.round(performance.now() - t0)} ms`);
  t.notOk(running(info.pid), 'its dockerd is gone');
});

t.test('nothing is left behind', async (t) => {
  t.equal(started.length, 8, 'every engine was accounted for');
  for (const { dir, pid } of started) {
    t.same(processesUnder(dir), [], `no process of ${dir}`);
    t.same(mountsUnder(dir), [], `nothing mounted under ${dir}`);
    t.notOk(existsSync(dir), `${dir} removed`);
    if (pid) t.notOk(running(pid), `dockerd ${pid} is gone`);
  }
  for (const s of shimSockets) t.notOk(existsSync(s), `shim socket ${basename(s)} removed`);
});

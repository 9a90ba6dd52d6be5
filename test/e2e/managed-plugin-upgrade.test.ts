// A managed plugin through a registry, as users get it: pushed with
// `npm run plugin:push` (scripts/plugin/push.sh), installed under the
// original's name (`docker plugin install --alias anybox/buttervolume:latest`),
// then upgraded to another build with `docker plugin upgrade`: the driver name
// stays, so the volumes, their data and their snapshots stay usable (the
// original's issue #52 came from renaming the plugin instead).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';

import { mountBtrfs } from '../fixtures/btrfs.js';
import { call } from '../fixtures/daemon.js';
import { startDockerd, type DockerEngine } from '../fixtures/docker.js';
import { ROOT, buildPlugin, runProgram, startRegistry } from '../fixtures/managed-plugin.js';

const DRIVER = 'anybox/buttervolume:latest';

async function push(e: DockerEngine, name: string): Promise<void> {
  const r = await runProgram('bash', [join(ROOT, 'scripts/plugin/push.sh'), name], {
    env: { ...process.env, DOCKER_HOST: e.host, DOCKER_CONFIG: join(e.dir, 'cli') },
  });
  if (r.code !== 0) throw new Error(`plugin:push ${name} failed: ${r.stderr}`);
}

t.test('push, install under the original name, upgrade: the volumes stay', async (t) => {
  const { mnt } = mountBtrfs(t);
  const config = join(dirname(mnt), 'config');
  const ssh = join(dirname(mnt), 'ssh');
  mkdirSync(config);
  mkdirSync(ssh);
  const registry = await startRegistry(t);
  const e = await startDockerd(t);
  t.teardown(async () => {
    for (const p of (await e.docker(['plugin', 'ls', '-q'], { allowFail: true })).stdout.split('\n').filter(Boolean)) {
      await e.docker(['plugin', 'disable', '-f', p], { allowFail: true });
      await e.docker(['plugin', 'rm', '-f', p], { allowFail: true });
    }
  });
  const docker = (...args: string[]) => e.docker(args);
  const sources = [`data.source=${mnt}`, `config.source=${config}`, `ssh.source=${ssh}`];
  const remote = `${registry.address}/bv-e2e/buttervolume`;

  // two builds, pushed, then gone from the engine: what a registry offers
  for (const tag of ['1', '2']) {
    t.comment((await buildPlugin(e, `${remote}:${tag}`)).stderr.trim());
    await push(e, `${remote}:${tag}`);
    await docker('plugin', 'rm', `${remote}:${tag}`);
  }

  await docker('plugin', 'install', '--alias', DRIVER, '--grant-all-permissions', `${remote}:1`, ...sources, 'SSH_PORT=2222');
  t.equal((await docker('plugin', 'inspect', '-f', '{{.Name}} {{.PluginReference}} {{.Enabled}}', DRIVER)).stdout.trim(), `${DRIVER} ${remote}:1 true`, 'installed under the original name, enabled');
  await docker('volume', 'create', '-d', DRIVER, 'db');
  await docker('run', '--rm', '--network', 'none', '-v', 'db:/data', e.image, 'sh', '-c', 'echo before > /data/f');
  const oldId = (await docker('plugin', 'inspect', '-f', '{{.Id}}', DRIVER)).stdout.trim();
  const snap = await call(`/run/docker/plugins/${oldId}/btrfs.sock`, '/VolumeDriver.Snapshot', { Name: 'db' });
  t.equal(snap.body.Err, '');

  // the README's upgrade: disable (-f: it has volumes), upgrade, mount sources again, enable
  const refused = await e.docker(['plugin', 'disable', DRIVER], { allowFail: true });
  t.match(refused.stderr, /in use/, 'a plugin with volumes is disabled with -f only');
  await docker('plugin', 'disable', '-f', DRIVER);
  const upgraded = await docker('plugin', 'upgrade', '--skip-remote-check', '--grant-all-permissions', DRIVER, `${remote}:2`);
  t.match(upgraded.stdout, new RegExp(`Upgraded plugin ${DRIVER} to ${remote.replaceAll('.', '\\.')}:2`));
  const mounts = (await docker('plugin', 'inspect', '-f', '{{range .Config.Mounts}}{{.Source}} {{end}}', DRIVER)).stdout.trim();
  t.equal(mounts, '/var/lib/buttervolume /var/lib/buttervolume/config /var/lib/buttervolume/ssh', 'dockerd 20.10 puts the new defaults back in the mount sources');
  await docker('plugin', 'set', DRIVER, ...sources);
  await docker('plugin', 'enable', DRIVER);

  const info = JSON.parse((await docker('plugin', 'inspect', DRIVER)).stdout)[0];
  t.equal(info.PluginReference, `${remote}:2`, 'runs the new build');
  t.equal(info.Name, DRIVER, 'under the same name');
  t.ok(info.Settings.Env.includes('SSH_PORT=2222'), 'docker plugin set values of the environment survive the upgrade');
  const vol = JSON.parse((await docker('volume', 'inspect', 'db')).stdout)[0];
  t.equal(vol.Driver, DRIVER, 'the volume keeps its driver');
  t.equal(vol.Status.LastSnapshot, snap.body.Snapshot, 'and its snapshot');
  t.equal((await docker('run', '--rm', '--network', 'none', '-v', 'db:/data', e.image, 'cat', '/data/f')).stdout, 'before\n', 'and its data');
  await docker('volume', 'rm', 'db');
  await docker('plugin', 'disable', DRIVER);
  await docker('plugin', 'rm', DRIVER);
});

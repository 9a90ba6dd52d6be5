// The managed (v2) plugin end to end, on a real engine: built by the
// project's own command (scripts/plugin/build.sh, what `npm run plugin:build`
// runs) with no registry, pointed at this test's btrfs with `docker plugin
// set` (never the machine's /var/lib/buttervolume), enabled, used by
// containers, driven through its socket, by the CLI on the host against the
// same directories and by the CLI inside it (runc exec), carried over a
// dockerd restart, disabled and removed. Also checks what its root
// filesystem holds and which capabilities it runs with (what a `btrfs
// receive` applies).
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import t from 'tap';

import { mountBtrfs } from '../fixtures/btrfs.js';
import { BIN, call } from '../fixtures/daemon.js';
import { startDockerd } from '../fixtures/docker.js';
import {
  buildCapsProbe,
  buildPlugin,
  effectiveCapabilities,
  freePort,
  pluginPid,
  pluginRuncRoot,
  processEnv,
  runProgram,
  runcExec,
  uniquePluginName,
} from '../fixtures/managed-plugin.js';

const name = uniquePluginName();

/** Every file under @dir (relative paths) whose first bytes are an ELF header. */
function elfFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && statSync(p).size >= 4 && readFileSync(p).subarray(0, 4).toString('latin1') === '\x7fELF') out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

t.test('the managed plugin: build, enable, volumes, snapshot/restore/clone, dockerd restart, removal', async (t) => {
  const hadHostDir = existsSync('/var/lib/buttervolume');
  // The plugin's mount sources, all this test's own: the btrfs (data), and config/ and ssh/ beside it.
  const { mnt } = mountBtrfs(t, { size: 1024 * 1024 * 1024 });
  const config = join(dirname(mnt), 'config');
  const ssh = join(dirname(mnt), 'ssh');
  mkdirSync(config);
  mkdirSync(ssh);
  const e = await startDockerd(t);
  const docker = (...args: string[]) => e.docker(args);
  const run = (...args: string[]) => docker('run', '--rm', '--network', 'none', ...args);
  // Removes the plugin before the engine goes (tap runs teardowns last-registered-first).
  let created = false;
  t.teardown(async () => {
    if (!created) return;
    await e.docker(['plugin', 'disable', '-f', name], { allowFail: true });
    await e.docker(['plugin', 'rm', '-f', name], { allowFail: true });
  });

  // --- build: the project's command, no registry (the engine has only a busybox image)
  const build = await buildPlugin(e, name);
  created = true;
  t.comment(`plugin built in ${build.ms} ms:\n${build.stderr.trim()}`);
  t.match(build.stderr, /in the image: Node\.js ok v\d+/, 'the build checked that Node.js loads the daemon and the addon in the image');
  const pluginId = async () => (await docker('plugin', 'inspect', '-f', '{{.Id}}', name)).stdout.trim();
  let id = await pluginId();
  t.match(id, /^[0-9a-f]{64}$/);
  const plugin = JSON.parse((await docker('plugin', 'inspect', name)).stdout)[0];
  t.equal(plugin.Enabled, false, 'created disabled');
  t.same([plugin.Config.Interface.Types, plugin.Config.Interface.Socket], [['docker.volumedriver/1.0'], 'btrfs.sock'], "the original's interface");
  t.equal(plugin.Config.Network.Type, 'host');
  t.equal(plugin.Config.PropagatedMount, '/var/lib/buttervolume');
  t.same(plugin.Config.Linux.Capabilities, ['CAP_SYS_ADMIN'], 'asks for CAP_SYS_ADMIN only, as the original');
  t.same(
    plugin.Config.Mounts.map((m: { Name: string; Source: string; Destination: string }) => [m.Name, m.Source, m.Destination]),
    [
      ['data', '/var/lib/buttervolume', '/var/lib/buttervolume'],
      ['config', '/var/lib/buttervolume/config', '/etc/buttervolume'],
      ['ssh', '/var/lib/buttervolume/ssh', '/var/lib/buttervolume/ssh'],
    ],
    'the original\'s host paths',
  );
  t.same(
    plugin.Config.Env.filter((v: { Settable: string[] | null }) => v.Settable?.includes('value')).map((v: { Name: string; Value: string }) => `${v.Name}=${v.Value}`),
    ['SSH_PORT=1122', 'BUTTERVOLUME_LOGLEVEL=INFO', 'BUTTERVOLUME_TIMER=60'],
    'SSH_PORT and the log level are settable',
  );

  // --- the root filesystem: Node.js, the package, and nothing else that runs
  const rootfs = join(e.dataRoot, 'plugins', id, 'rootfs');
  const elves = elfFiles(rootfs);
  const programs = elves.filter((f) => !/^(lib|lib64|usr\/lib)\/.*\.so(\.\d+)*$/.test(f));
  t.same(
    programs.filter((f) => !/^opt\/buttervolume\/(build\/Release|prebuilds\/linux-x64)\/buttervolume\.node$/.test(f)),
    [
      // ssh2's native crypto (replication) and the CPU probe it uses.
      'opt/buttervolume/node_modules/cpu-features/build/Release/cpufeatures.node',
      'opt/buttervolume/node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node',
      'usr/local/bin/node',
    ],
    'the only programs are node, the addon and ssh2\'s crypto (plus shared libraries)',
  );
  t.equal(programs.filter((f) => f.endsWith('/buttervolume.node')).length, 1, 'one addon');
  t.ok(elves.some((f) => f.endsWith('/libc.so.6')), 'with the C library they need');
  for (const forbidden of ['bin/sh', 'usr/bin/btrfs', 'sbin/btrfs', 'usr/sbin/sshd', 'usr/bin/ssh', 'usr/bin/rsync', 'usr/bin/npm', 'usr/local/bin/npm', 'usr/bin/gcc']) {
    t.notOk(existsSync(join(rootfs, forbidden)), `no ${forbidden}`);
  }
  const rootfsMb = Number((await runProgram('du', ['-sm', rootfs])).stdout.split('\t')[0]);
  t.ok(rootfsMb < 150, `rootfs is ${rootfsMb} MB`);

  // --- point it at this test's directories; SSH_PORT on a free port (host network)
  const sshPort = await freePort();
  await docker('plugin', 'set', name, `data.source=${mnt}`, `config.source=${config}`, `ssh.source=${ssh}`, `SSH_PORT=${sshPort}`, 'BUTTERVOLUME_LOGLEVEL=DEBUG');
  const t0 = performance.now();
  await docker('plugin', 'enable', name);
  const enabledMs = Math.round(performance.now() - t0);
  let socket = `/run/docker/plugins/${id}/btrfs.sock`;
  const caps = await call(socket, '/VolumeDriver.Capabilities', {});
  t.comment(`docker plugin enable: ${enabledMs} ms; first answer on the socket ${Math.round(performance.now() - t0)} ms after the enable began`);
  t.match(caps.body, { Err: '', Capabilities: { Scope: 'local' } }, 'the plugin answers on /run/docker/plugins/<id>/btrfs.sock');
  const runcRoot = pluginRuncRoot(e);
  const pid = await pluginPid(runcRoot, id);
  const env = processEnv(pid);
  t.equal(env.SSH_PORT, String(sshPort), 'docker plugin set SSH_PORT=... reaches the daemon');
  t.equal(env.BUTTERVOLUME_LOGLEVEL, 'DEBUG');
  t.ok(existsSync(join(mnt, 'volumes')) && existsSync(join(mnt, 'snapshots')), 'the daemon created volumes/ and snapshots/ on the data source');

  // --- a NOCOW volume, written by a container
  await docker('volume', 'create', '-d', name, '-o', 'copyonwrite=false', 'vol');
  t.ok(existsSync(join(mnt, 'volumes', 'vol')), 'the subvolume is on the data source');
  t.equal((await run('-v', 'vol:/data', e.image, 'sh', '-c', 'echo original > /data/f && cat /data/f')).stdout, 'original\n', 'a container writes');
  const inspect = async (v: string) => JSON.parse((await docker('volume', 'inspect', v)).stdout)[0];
  let info = await inspect('vol');
  t.equal(info.Driver, name, 'the driver name is the plugin reference');
  t.equal(info.Mountpoint, '/var/lib/buttervolume/volumes/vol');
  t.same(info.Status, { Snapshots: 0, LastSnapshot: null, Mounts: 0, CopyOnWrite: false, Compression: null }, 'docker volume inspect shows our Status');

  // --- snapshot through the plugin's socket
  const snap = await call(socket, '/VolumeDriver.Snapshot', { Name: 'vol' });
  t.equal(snap.body.Err, '');
  t.match(snap.body.Snapshot, /^vol@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  await run('-v', 'vol:/data', e.image, 'sh', '-c', 'echo changed > /data/f');

  // --- the CLI on the host, against the same directories (the README's command, these paths)
  const hostCli = (...args: string[]) =>
    runProgram(process.execPath, [BIN, ...args], {
      env: {
        PATH: process.env.PATH,
        TZ: 'UTC',
        BUTTERVOLUME_VOLUMES_PATH: join(mnt, 'volumes'),
        BUTTERVOLUME_SNAPSHOTS_PATH: join(mnt, 'snapshots'),
        BUTTERVOLUME_CONFIG: join(config, 'config.ini'),
        BUTTERVOLUME_SCHEDULE: join(config, 'schedule.csv'),
      },
    });
  t.equal((await hostCli('snapshots', 'vol')).stdout, `${snap.body.Snapshot}\n`, 'the host CLI sees the snapshot the plugin took');
  const holder = (await docker('run', '-d', '--network', 'none', '--stop-timeout', '1', '--restart', 'always', '-v', 'vol:/data', e.image, 'sleep', '3600')).stdout.trim();
  t.equal((await inspect('vol')).Status.Mounts, 1, 'a running container holds one mount');
  const refused = await hostCli('restore', snap.body.Snapshot);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /^buttervolume: restore: vol: cannot restore a volume in use \(mounted 1 time\)/, 'the host CLI sees the plugin\'s mounts and refuses');

  // --- dockerd restarted: the plugin and the volume's reference counts come back
  const pidBefore = pid;
  await e.restart();
  t.equal((await docker('plugin', 'inspect', '-f', '{{.Enabled}}', name)).stdout.trim(), 'true', 'the plugin is enabled again after a dockerd restart');
  const deadline = Date.now() + 60_000;
  while ((await inspect('vol')).Status.Mounts !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  info = await inspect('vol');
  t.equal(info.Status.Mounts, 1, 'the container came back and holds its mount again');
  t.not(await pluginPid(runcRoot, id), pidBefore, 'a new plugin process');
  t.equal((await docker('inspect', '-f', '{{.State.Running}}', holder)).stdout.trim(), 'true');
  const rmInUse = await e.docker(['volume', 'rm', 'vol'], { allowFail: true });
  t.not(rmInUse.code, 0, 'dockerd counts the container\'s reference again: volume rm refused');
  t.match(rmInUse.stderr, /in use/);

  // --- rebuilt in place (plugin:build --replace) while a container uses a volume
  const rebuilt = await buildPlugin(e, name, ['--replace']);
  t.comment(`rebuilt with --replace in ${rebuilt.ms} ms`);
  const carried = /settings carried over: (.*)/.exec(rebuilt.stderr)?.[1]?.trim().split(' ') ?? [];
  t.same(carried.sort(), [`SSH_PORT=${sshPort}`, 'BUTTERVOLUME_LOGLEVEL=DEBUG', `config.source=${config}`, `data.source=${mnt}`, `ssh.source=${ssh}`].sort(), 'what docker plugin set changed (only that) is carried over');
  const oldId = id;
  id = await pluginId();
  socket = `/run/docker/plugins/${id}/btrfs.sock`;
  t.not(id, oldId, 'a new plugin under the same name');
  t.equal((await docker('plugin', 'inspect', '-f', '{{.Enabled}}', name)).stdout.trim(), 'true', 'enabled again');
  t.equal(processEnv(await pluginPid(runcRoot, id)).SSH_PORT, String(sshPort));
  t.equal((await inspect('vol')).Status.Mounts, 1, 'the new plugin knows the mount the old one counted');
  t.equal((await docker('exec', holder, 'cat', '/data/f')).stdout, 'changed\n', 'the running container still has its data');
  t.same((await call(socket, '/VolumeDriver.Snapshot.List', { Name: 'vol' })).body.Snapshots, [snap.body.Snapshot], 'and so do the snapshots');
  await docker('rm', '-f', holder);
  t.equal((await inspect('vol')).Status.Mounts, 0, "removing the container unmounted it through the new plugin");

  // --- restore with the host CLI, read by a new container
  const restored = await hostCli('restore', '--json', snap.body.Snapshot);
  t.equal(restored.code, 0, restored.stderr);
  const backup = JSON.parse(restored.stdout).backup as string;
  t.match(backup, /^vol@/, 'the replaced content is kept as a snapshot');
  t.equal((await run('-v', 'vol:/data', e.image, 'cat', '/data/f')).stdout, 'original\n', 'a new container reads the restored data');
  info = await inspect('vol');
  t.equal(info.Status.Snapshots, 2);
  t.equal(info.Status.LastSnapshot, backup);

  // --- clone with the CLI inside the plugin (the README's runc exec), used by another container
  const inside = await runcExec(runcRoot, id, ['/usr/local/bin/node', '/opt/buttervolume/bin/buttervolume.cjs', 'clone', 'vol', 'vol-clone']);
  t.equal(inside.code, 0, inside.stderr);
  t.equal(inside.stdout, 'vol-clone\n', 'runc exec runs the CLI inside the plugin');
  const key = await runcExec(runcRoot, id, ['/usr/local/bin/node', '/opt/buttervolume/bin/buttervolume.cjs', 'ssh-key']);
  t.equal(key.code, 0, key.stderr);
  t.match(key.stdout, /^ssh-ed25519 \S+ buttervolume@/, 'a command that talks to peers runs inside the plugin too (its own bundle, ssh2 inside)');
  t.equal((await run('-v', 'vol-clone:/data', e.image, 'sh', '-c', 'cat /data/f && echo clone > /data/f && cat /data/f')).stdout, 'original\nclone\n', 'another container uses the clone');
  t.equal((await run('-v', 'vol:/data', e.image, 'cat', '/data/f')).stdout, 'original\n', 'the source is untouched');
  t.same(
    (await docker('volume', 'ls', '--filter', `driver=${name}`, '--format', '{{.Name}}')).stdout.split('\n').filter(Boolean).sort(),
    ['vol', 'vol-clone'],
  );
  t.equal((await inspect('vol-clone')).Status.CopyOnWrite, false, 'the clone is NOCOW like its source');

  // --- what a receive applies, inside the plugin (its capabilities), and where it is refused
  const effective = effectiveCapabilities(await pluginPid(runcRoot, id));
  for (const cap of ['CAP_SYS_ADMIN', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_MKNOD', 'CAP_SETFCAP']) {
    t.ok(effective.includes(cap), `the plugin runs with ${cap}`);
  }
  t.comment(`effective capabilities: ${effective.join(' ')}`);
  const probeDir = join(mnt, 'probe');
  mkdirSync(probeDir);
  await buildCapsProbe(join(probeDir, 'caps-probe'));
  mkdirSync(join(probeDir, 'plugin'));
  const probe = await runcExec(runcRoot, id, ['/var/lib/buttervolume/probe/caps-probe', '/var/lib/buttervolume/probe/plugin']);
  t.equal(probe.code, 0, `every step of a receive works in the plugin:\n${probe.stdout}${probe.stderr}`);
  t.equal(probe.stdout.split('\n').filter((l) => l && !l.endsWith(' ok')).length, 0);
  const st = statSync(join(probeDir, 'plugin', 'file'));
  t.equal(st.mode & 0o7777, 0o6755, 'setuid and setgid kept after the chown');
  t.equal(st.uid, 1234);
  t.ok(statSync(join(probeDir, 'plugin', 'char')).isCharacterDevice(), 'a device node was made');
  mkdirSync(join(probeDir, 'plain'));
  const plain = await e.docker(['run', '--rm', '--network', 'none', '-v', `${probeDir}:/probe`, e.image, '/probe/caps-probe', '/probe/plain'], { allowFail: true });
  t.equal(plain.code, 1);
  t.same(plain.stdout.split('\n').filter((l) => l && !l.endsWith(' ok')), ['xattr-trusted EPERM'], 'with Docker\'s default set and no CAP_SYS_ADMIN only trusted.* xattrs fail');
  mkdirSync(join(probeDir, 'none'));
  const none = await e.docker(['run', '--rm', '--network', 'none', '--cap-drop', 'ALL', '-v', `${probeDir}:/probe`, e.image, '/probe/caps-probe', '/probe/none'], { allowFail: true });
  t.equal(none.code, 1);
  t.match(none.stdout, /^chown EPERM$/m, 'without capabilities the probe sees the refusals');
  t.match(none.stdout, /^mknod-char EPERM$/m);
  t.match(none.stdout, /^xattr-security\.capability EPERM$/m);

  // --- volume rm, plugin disabled and removed
  for (const v of ['vol', 'vol-clone']) await docker('volume', 'rm', v);
  t.same(readdirSync(join(mnt, 'volumes')).filter((n) => !n.startsWith('.')), [], 'docker volume rm removed the subvolumes');
  await docker('plugin', 'disable', name);
  await docker('plugin', 'rm', name);
  created = false;
  t.equal((await docker('plugin', 'ls', '-q')).stdout, '', 'no plugin left');
  t.notOk(existsSync(`/run/docker/plugins/${id}`), 'its socket directory is gone');
  t.equal(existsSync('/var/lib/buttervolume'), hadHostDir, "the machine's /var/lib/buttervolume was not touched");
});

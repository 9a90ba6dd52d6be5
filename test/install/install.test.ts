// scripts/install.sh and scripts/uninstall.sh, run as a user runs them but
// under a temporary root (BUTTERVOLUME_PREFIX): the background start (no
// systemd), with the loop image install makes and with a btrfs already
// there; the systemd units as install writes them (enabled offline with
// systemctl --root, nothing started: this machine's PID 1 is not systemd);
// each run twice (idempotent), then undone by uninstall, which must leave the
// volumes, the snapshots and the image alone. dist/ is built (npm test's
// pretest): BUTTERVOLUME_BUILD=0. Every daemon, mount and loop device is
// gone at teardown, also when a test fails.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

import { mountBtrfs, requireRoot } from '../fixtures/btrfs.js';
import { call } from '../fixtures/daemon.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const BIN = join(ROOT, 'bin', 'buttervolume.cjs');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function script(name: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(ROOT, 'scripts', name)], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const isMountPoint = (dir: string): boolean => {
  try {
    execFileSync('mountpoint', ['-q', dir]);
    return true;
  } catch {
    return false;
  }
};
const mountsOn = (dir: string): number => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === dir).length;
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface Root {
  prefix: string;
  /** The BUTTERVOLUME_* variables of an installation under `prefix`. */
  env: Record<string, string>;
  base: string;
  image: string;
  pidfile: string;
  link: string;
  state: string;
  units: string;
}

/**
 * A temporary root; teardown stops a daemon install left (its pid file),
 * unmounts the image, detaches its loop devices and removes everything.
 */
function tempRoot(t: { teardown(fn: () => void | Promise<void>): void }, extra: Record<string, string> = {}): Root {
  requireRoot();
  const prefix = mkdtempSync(join(tmpdir(), 'bv-install-'));
  const base = join(prefix, 'var/lib/buttervolume');
  const image = join(prefix, 'var/lib/buttervolume.img');
  const pidfile = join(prefix, 'run/buttervolume.pid');
  t.teardown(async () => {
    if (existsSync(pidfile)) {
      const pid = Number(readFileSync(pidfile, 'utf8'));
      if (pid > 0 && alive(pid)) {
        process.kill(pid, 'SIGKILL');
        for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
      }
    }
    while (isMountPoint(base)) execFileSync('umount', ['-l', base]);
    if (existsSync(image)) {
      for (const line of execFileSync('losetup', ['-j', image], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
        execFileSync('losetup', ['-d', line.split(':')[0]!]);
      }
    }
    rmSync(prefix, { recursive: true, force: true });
  });
  const env = {
    BUTTERVOLUME_PREFIX: prefix,
    BUTTERVOLUME_BUILD: '0',
    BUTTERVOLUME_IMAGE_SIZE: '256M',
    BUTTERVOLUME_CONFIG: join(prefix, 'etc/buttervolume/config.ini'),
    BUTTERVOLUME_VOLUMES_PATH: join(base, 'volumes'),
    BUTTERVOLUME_SNAPSHOTS_PATH: join(base, 'snapshots'),
    BUTTERVOLUME_TEST_REMOTE_PATH: join(base, 'received'),
    BUTTERVOLUME_SCHEDULE: join(prefix, 'etc/buttervolume/schedule.csv'),
    BUTTERVOLUME_RUNPATH: join(prefix, 'run/docker'),
    BUTTERVOLUME_SOCKET: join(prefix, 'run/docker/plugins/btrfs.sock'),
    BUTTERVOLUME_SSH_PORT: '0',
    BUTTERVOLUME_SSH_PATH: join(base, 'ssh'),
    ...extra,
  };
  return {
    prefix,
    env,
    base,
    image,
    pidfile,
    link: join(prefix, 'usr/local/bin/buttervolume'),
    state: join(prefix, 'var/lib/buttervolume.install'),
    units: join(prefix, 'etc/systemd/system'),
  };
}

/** Every path under `dir` with its type and, for files and links, content (what install and uninstall change). */
function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const key = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path);
      if (st.isSymbolicLink()) out[key] = `-> ${readlinkSync(path)}`;
      else if (st.isSocket()) out[key] = 'socket';
      else if (st.isDirectory()) {
        out[key] = 'dir';
        if (!isMountPoint(path)) walk(path, key);
      } else if (key.endsWith('.log') || st.size > 1024 * 1024) out[key] = `file`; // the daemon writes to its log and, through the loop device, to the image
      else out[key] = readFileSync(path, 'utf8');
    }
  };
  walk(dir, '');
  return out;
}

const cli = (r: Root, args: string[]) => execFileSync(r.link, args, { env: { PATH: process.env.PATH!, ...r.env }, encoding: 'utf8' });

t.test('without systemd: install makes the loop image, starts the daemon; again changes nothing; uninstall undoes it and keeps the data', async (t) => {
  const r = tempRoot(t, { BUTTERVOLUME_INIT: 'background' });
  let run = await script('install.sh', r.env);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /made .*buttervolume\.img \(256M, sparse\)/);
  t.ok(isMountPoint(r.base), 'the image is mounted');
  t.equal(execFileSync('stat', ['-f', '-c', '%T', r.base], { encoding: 'utf8' }).trim(), 'btrfs');
  const pid = Number(readFileSync(r.pidfile, 'utf8'));
  t.ok(alive(pid), 'the daemon runs');
  const activate = await call(r.env.BUTTERVOLUME_SOCKET!, '/Plugin.Activate');
  t.same(activate.body.Implements, ['VolumeDriver'], 'it answers on its socket');
  t.equal(readlinkSync(r.link), BIN, 'buttervolume is linked');
  t.equal(cli(r, ['--version']).trim().startsWith('buttervolume '), true);
  t.same(readFileSync(r.state, 'utf8').split('\n').filter(Boolean).sort(), [`IMAGE=/var/lib/buttervolume.img`, 'INIT=background', `LINK=${r.link}`, 'MOUNTED_BY_INSTALL=yes', `ROOT=${ROOT}`]);

  // Data made through the installed daemon and CLI.
  t.equal((await call(r.env.BUTTERVOLUME_SOCKET!, '/VolumeDriver.Create', { Name: 'db', Opts: null })).status, 200);
  writeFileSync(join(r.env.BUTTERVOLUME_VOLUMES_PATH!, 'db', 'data'), 'kept');
  const snapshot = cli(r, ['snapshot', 'db']).trim();

  const before = snapshotTree(r.prefix);
  run = await script('install.sh', r.env);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, new RegExp(`already running \\(pid ${pid}\\)`));
  t.equal(mountsOn(r.base), 1, 'mounted once, not twice');
  t.same(snapshotTree(r.prefix), before, 'the second install changed no file');

  run = await script('uninstall.sh', r.env);
  t.equal(run.code, 0, run.stderr);
  t.notOk(alive(pid), 'the daemon is stopped');
  t.notOk(existsSync(r.env.BUTTERVOLUME_SOCKET!), 'its socket is gone');
  t.notOk(isMountPoint(r.base), 'the image is unmounted');
  t.notOk(existsSync(r.link), 'the link is removed');
  t.notOk(existsSync(r.state), 'the record is removed');
  t.ok(existsSync(r.image), 'the image is kept');
  t.match(run.stdout, new RegExp(`rm ${r.image}`), 'uninstall says how to delete the image');

  execFileSync('mount', ['-o', 'loop', r.image, r.base]);
  t.equal(readFileSync(join(r.env.BUTTERVOLUME_VOLUMES_PATH!, 'db', 'data'), 'utf8'), 'kept', 'the volume is intact');
  t.ok(existsSync(join(r.env.BUTTERVOLUME_SNAPSHOTS_PATH!, snapshot)), 'the snapshot is intact');

  run = await script('uninstall.sh', r.env);
  t.equal(run.code, 0);
  t.match(run.stdout, /nothing to undo/);
  t.ok(isMountPoint(r.base), 'a second uninstall unmounts nothing it did not mount');
});

t.test('without systemd, on a btrfs already there: no image, nothing mounted or unmounted', async (t) => {
  const fs = mountBtrfs(t);
  const r = tempRoot(t, {
    BUTTERVOLUME_INIT: 'background',
    BUTTERVOLUME_VOLUMES_PATH: join(fs.mnt, 'volumes'),
    BUTTERVOLUME_SNAPSHOTS_PATH: join(fs.mnt, 'snapshots'),
  });
  let run = await script('install.sh', r.env);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /volumes is on btrfs/);
  t.notOk(existsSync(r.image), 'no image made');
  const pid = Number(readFileSync(r.pidfile, 'utf8'));
  await call(r.env.BUTTERVOLUME_SOCKET!, '/VolumeDriver.Create', { Name: 'web', Opts: null });
  // A link that is no longer ours (e.g. a package installed since) is left alone.
  rmSync(r.link);
  symlinkSync('/usr/lib/node_modules/buttervolume/bin/buttervolume.cjs', r.link);
  run = await script('uninstall.sh', r.env);
  t.equal(run.code, 0, run.stderr);
  t.notOk(alive(pid));
  t.ok(isMountPoint(fs.mnt), "the user's btrfs stays mounted");
  t.ok(statSync(join(fs.mnt, 'volumes', 'web')).isDirectory(), 'the volume is intact');
  t.equal(readlinkSync(r.link), '/usr/lib/node_modules/buttervolume/bin/buttervolume.cjs', 'a link to something else is kept');
  t.notMatch(run.stdout, /image/, 'no image to speak of');
});

t.test('with systemd: the units as written, enabled offline, verified; again changes nothing; uninstall removes exactly them', async (t) => {
  const r = tempRoot(t, { BUTTERVOLUME_INIT: 'systemd', BUTTERVOLUME_LOGLEVEL: 'DEBUG', BUTTERVOLUME_NODE_NAME: 'node-1' });
  mkdirSync(join(r.prefix, 'etc'), { recursive: true });
  const empty = snapshotTree(r.prefix);
  let run = await script('install.sh', r.env);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /not started/);
  t.notOk(existsSync(r.pidfile), 'no daemon started');
  t.notOk(isMountPoint(r.base), 'nothing mounted');
  const node = execFileSync('bash', ['-c', 'command -v node'], { encoding: 'utf8' }).trim();
  const service = readFileSync(join(r.units, 'buttervolume.service'), 'utf8');
  t.ok(service.includes(`\nExecStart=${node} ${BIN} run\n`), 'ExecStart: node and the bin of this checkout');
  t.ok(service.includes(`\nExecStopPost=${node} ${ROOT}/scripts/systemd/plugin-socket.mjs clear-stale\n`), 'ExecStopPost clears a stale socket');
  t.match(service, /\nBefore=docker\.service\n/);
  t.match(service, /\nRestart=on-failure\n/);
  t.notMatch(service, /@[A-Z_]+@/, 'every placeholder filled');
  const mount = readFileSync(join(r.units, 'var-lib-buttervolume.mount'), 'utf8');
  t.match(mount, /\nWhat=\/var\/lib\/buttervolume\.img\nWhere=\/var\/lib\/buttervolume\nType=btrfs\nOptions=loop,nofail\n/);
  t.match(readFileSync(join(r.units, 'buttervolume.service.d/loop-mount.conf'), 'utf8'), /\nBindsTo=var-lib-buttervolume\.mount\nAfter=var-lib-buttervolume\.mount\n/);
  const environment = readFileSync(join(r.units, 'buttervolume.service.d/environment.conf'), 'utf8');
  t.ok(environment.includes('\nEnvironment="BUTTERVOLUME_NODE_NAME=node-1"\n'), 'the variables given are kept for the service');
  t.notMatch(environment, /BUTTERVOLUME_(PREFIX|BUILD|INIT|IMAGE_SIZE)=/, "install.sh's own variables are not the daemon's");
  t.equal(readlinkSync(join(r.units, 'multi-user.target.wants/buttervolume.service')), '/etc/systemd/system/buttervolume.service', 'the service is enabled');
  t.equal(readlinkSync(join(r.units, 'local-fs.target.wants/var-lib-buttervolume.mount')), '/etc/systemd/system/var-lib-buttervolume.mount', 'the mount is enabled');
  const verify = (dir: string, ...units: string[]) =>
    new Promise<Run>((resolve) => {
      const child = spawn('systemd-analyze', ['verify', ...units], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (out += b.toString()));
      child.once('close', (code) => resolve({ code, stdout: out, stderr: '' }));
    });
  const verified = await verify(r.units, './buttervolume.service', './var-lib-buttervolume.mount');
  t.same(verified, { code: 0, stdout: '', stderr: '' }, 'systemd-analyze verify passes, silent');
  // The same check fails on a unit whose binary is missing.
  const broken = mkdtempSync(join(tmpdir(), 'bv-install-broken-'));
  t.teardown(() => rmSync(broken, { recursive: true, force: true }));
  writeFileSync(join(broken, 'buttervolume.service'), service.replace(`ExecStart=${node}`, 'ExecStart=/nonexistent/node'));
  const failed = await verify(broken, './buttervolume.service');
  t.not(failed.code, 0, 'and fails on a missing ExecStart binary');
  t.match(failed.stdout, /is not executable/);

  const installed = snapshotTree(r.prefix);
  const imageStat = statSync(r.image);
  const own = Object.fromEntries(Object.entries(r.env).filter(([k]) => /^BUTTERVOLUME_(PREFIX|BUILD|INIT|IMAGE_SIZE)$/.test(k)));
  run = await script('install.sh', own);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /keeps the settings of the install before: .*BUTTERVOLUME_NODE_NAME/, 'without variables this time, the service keeps those of the first install');
  t.same(snapshotTree(r.prefix), installed, 'the second install changed no file');

  run = await script('uninstall.sh', r.env);
  t.equal(run.code, 0, run.stderr);
  const left = snapshotTree(r.prefix);
  const image = left['var/lib/buttervolume.img'];
  t.same([statSync(r.image).size, statSync(r.image).mtimeMs], [imageStat.size, imageStat.mtimeMs], 'the image is untouched');
  const expected = { ...empty, ...Object.fromEntries(Object.entries(installed).filter(([, v]) => v === 'dir')) };
  for (const key of Object.keys(expected)) if (key.startsWith('etc/systemd/system/') && !(key in left)) delete expected[key];
  t.same(left, { ...expected, 'var/lib/buttervolume.img': image! }, 'only the directories and the image are left');
  t.notOk(Object.keys(left).some((k) => k.endsWith('.service') || k.endsWith('.mount') || k.endsWith('.conf')), 'no unit, drop-in or link to one is left');
});

t.test('with systemd and the image in /etc/fstab: no mount unit of ours', async (t) => {
  const r = tempRoot(t, { BUTTERVOLUME_INIT: 'systemd' });
  mkdirSync(join(r.prefix, 'etc'), { recursive: true });
  writeFileSync(join(r.prefix, 'etc/fstab'), '/var/lib/buttervolume.img /var/lib/buttervolume btrfs loop 0 0\n');
  const run = await script('install.sh', r.env);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /is in \/etc\/fstab/);
  t.notOk(existsSync(join(r.units, 'var-lib-buttervolume.mount')));
  t.match(readFileSync(join(r.units, 'buttervolume.service.d/loop-mount.conf'), 'utf8'), /BindsTo=var-lib-buttervolume\.mount/, 'bound to the mount fstab makes');
  t.equal((await script('uninstall.sh', r.env)).code, 0);
  t.equal(readFileSync(join(r.prefix, 'etc/fstab'), 'utf8'), '/var/lib/buttervolume.img /var/lib/buttervolume btrfs loop 0 0\n', 'fstab untouched');
});

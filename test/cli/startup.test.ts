// Start-up stays lean. The short commands run from one CommonJS bundle
// (dist/cli/main.cjs, see scripts/bundle-cli.mjs): they must not load any
// ES module of ours (each costs start-up time), the server, the scheduler's
// runtime or Koa; `run` and `scheduled run` load those from dist/ at run
// time. --version, usage errors and `send` read no configuration and open no
// store: they work even when both are broken.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

import { BIN, cliFixture, runCli } from './fixtures/cli.js';

const HOOK = fileURLToPath(new URL('./fixtures/trace-imports.mjs', import.meta.url));

/** The package-relative paths of the ES modules and CommonJS files `buttervolume <args>` loaded. */
function modulesOf(args: string[], env: Record<string, string>): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'bv-cli-trace-'));
  try {
    const file = join(dir, 'trace');
    writeFileSync(file, '');
    const r = spawnSync(process.execPath, ['--import', HOOK, BIN, ...args], {
      env: { PATH: process.env.PATH!, ...env, TRACE_IMPORTS_FILE: file },
      encoding: 'utf8',
    });
    if (r.status === null || /internal error|^\s+at /m.test(r.stderr)) throw new Error(`buttervolume ${args.join(' ')}: ${r.stderr}`);
    const root = new URL('../../', import.meta.url).href;
    return [...new Set(readFileSync(file, 'utf8').split('\n').filter((u) => u.startsWith(root)).map((u) => u.slice(root.length)))];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BUILTINS_HOOK = fileURLToPath(new URL('./fixtures/trace-builtins.cjs', import.meta.url));

/**
 * The Node built-in modules `buttervolume <args>` loaded beyond those of
 * `node -e 0`. Started through `env -u NODE_OPTIONS`: tap's process
 * tracking puts its hooks into every child's NODE_OPTIONS, and they load
 * streams, net, crypto... of their own.
 */
function builtinsOf(args: string[], env: Record<string, string>): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'bv-cli-trace-'));
  try {
    const run = (argv: string[]): string[] => {
      const file = join(dir, 'builtins');
      const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '-r', BUILTINS_HOOK, ...argv], {
        env: { PATH: process.env.PATH!, ...env, TRACE_BUILTINS_FILE: file },
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
      return readFileSync(file, 'utf8').split('\n').filter(Boolean);
    };
    const floor = new Set(run(['-e', '0']));
    return run([BIN, ...args]).filter((m) => !floor.has(m));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ours = (mods: string[]) => mods.filter((m) => m.startsWith('dist/') && m !== 'dist/cli/main.cjs');
const heavy = (mods: string[]) => mods.filter((m) => /node_modules\/(koa|@koa|ssh2)/.test(m));
// Node built-ins a short command has no use for, each a few ms of start-up:
// streams (process.stdout, send/receive), fs/promises, the network, crypto.
const UNNEEDED_BUILTINS = ['net', 'stream', 'tty', 'fs/promises', 'http', 'crypto', 'zlib', 'child_process', 'readline'];
const unneeded = (builtins: string[]) => builtins.filter((m) => UNNEEDED_BUILTINS.includes(m));

t.test('snapshot runs from the bundle alone', async (t) => {
  const f = await cliFixture(t);
  await f.volume('v');
  const mods = modulesOf(['snapshot', 'v'], f.env);
  t.ok(mods.includes('bin/buttervolume.cjs'), 'the traced run is the real bin');
  t.ok(mods.includes('dist/cli/main.cjs'), 'and its bundle');
  t.same(ours(mods), [], 'no ES module of ours');
  t.same(heavy(mods), [], 'no server dependency');
  t.same(unneeded(builtinsOf(['snapshot', 'v'], f.env)), [], 'no built-in it does not use (streams, fs/promises, net...)');
  t.match((await f.store.snapshots('v'))[0], /^v@/, 'and the snapshot was taken');
});

t.test('--version and snapshots load no built-in they do not use either', async (t) => {
  const f = await cliFixture(t);
  await f.volume('v');
  await f.store.snapshot('v');
  t.same(unneeded(builtinsOf(['--version'], f.env)), []);
  t.same(unneeded(builtinsOf(['snapshots', 'v'], f.env)), []);
});

t.test('scheduled (list) reads the schedule without the scheduler runtime', async (t) => {
  const f = await cliFixture(t);
  t.same(ours(modulesOf(['scheduled'], f.env)), []);
});

t.test('scheduled run loads the scheduler runtime and the store from dist (one copy of each)', async (t) => {
  const f = await cliFixture(t);
  const mods = modulesOf(['scheduled', 'run'], f.env);
  t.ok(mods.includes('dist/scheduler/pass.js'));
  t.ok(mods.includes('dist/store/open.js'));
  t.same(heavy(mods), []);
});

t.test('the commands that talk to peers run from their own bundle (ssh2 inside), no ES module of ours', async (t) => {
  const f = await cliFixture(t);
  for (const command of ['sync', 'send', 'receive', 'ssh-key']) {
    const mods = modulesOf(command === 'ssh-key' ? [command] : [command, '--help'], f.env);
    t.ok(mods.includes('dist/cli/peer.cjs'), `${command}: dist/cli/peer.cjs`);
    t.notOk(mods.includes('dist/cli/main.cjs'), `${command}: not the short commands' bundle`);
    t.same(mods.filter((m) => m.startsWith('dist/') && m !== 'dist/cli/peer.cjs'), [], `${command}: no ES module of ours`);
    t.same(
      mods.filter((m) => m.startsWith('node_modules/ssh2/') && !/\.node$|poly1305\.js$/.test(m)),
      [],
      `${command}: ssh2 from the bundle, not node_modules (one copy)`,
    );
  }
  const r = await runCli(['ssh-key'], f.env);
  t.match(r.stdout, /^ssh-ed25519 \S+ buttervolume@\S+\n$/, 'ssh-key prints its line from the bundle');
});

t.test('the daemon runs from the ES modules of dist, without a bundle', async (t) => {
  const f = await cliFixture(t);
  const mods = modulesOf(['run', '--help'], f.env);
  t.ok(mods.includes('dist/cli/main.js'));
  t.same(mods.filter((m) => m.endsWith('.cjs') && m.startsWith('dist/')), []);
});

t.test('the bundle holds no replication and no daemon code (they are loaded only by the commands above)', async (t) => {
  const bundle = readFileSync(new URL('../../dist/cli/main.cjs', import.meta.url), 'utf8');
  const modules = [...bundle.matchAll(/"(dist\/[\w/-]+\.js)"\(\)/g)].map((m) => m[1]!);
  t.ok(modules.includes('dist/cli/commands/snapshot.js'), 'the bundle lists its modules as esbuild names them');
  t.same(modules.filter((m) => /^dist\/(server\/|replication\/(?!peer\.js)|cli\/commands\/(run|send|receive|sync|ssh-key)\.js)/.test(m)), []);
});

t.test('a long command whose ES modules cannot be loaded says so in one line and exits 1', async (t) => {
  // The bin alone, in a package without dist/: what an unfinished build leaves.
  const dir = mkdtempSync(join(tmpdir(), 'bv-cli-nodist-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(BIN, join(dir, 'bin', 'buttervolume.cjs'));
  for (const [command, file] of [
    ['sync', 'peer\\.cjs'],
    ['run', 'main\\.js'],
  ]) {
    const r = spawnSync(process.execPath, [join(dir, 'bin', 'buttervolume.cjs'), command!, 'v', 'h'], { encoding: 'utf8' });
    t.equal(r.status, 1);
    t.match(r.stderr, new RegExp(`^buttervolume: ${command}: cannot load: .*dist/cli/${file}`));
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack');
  }
});

t.test('--version and usage errors work with a broken configuration and no store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bv-cli-broken-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const broken = join(dir, 'config.ini');
  writeFileSync(broken, 'this is [not an ini file\n');
  const env = { BUTTERVOLUME_CONFIG: broken, BUTTERVOLUME_VOLUMES_PATH: '/nonexistent/volumes' };
  const version = await runCli(['--version'], env);
  t.equal(version.code, 0);
  t.match(version.stdout, /^buttervolume \d+\.\d+\.\d+/);
  const usage = await runCli(['snapshot'], env);
  t.equal(usage.code, 2, 'a usage error, not a configuration error');
  const badHost = await runCli(['send', 'a@b@h', 'v@x'], env);
  t.equal(badHost.code, 1);
  t.match(badHost.stderr, /host "a@b@h": more than one "@"/, 'arguments are checked before the configuration is read');
  t.notMatch(badHost.stderr, /config|btrfs/i);
  const send = await runCli(['send', 'h', 'v@x'], env);
  t.equal(send.code, 1);
  t.match(send.stderr, /^buttervolume: send: config file .* line 1: /, 'a real send needs the configuration and says which line is wrong');
  const help = await runCli(['--help'], env);
  t.equal(help.code, 0);
  t.match(help.stdout, /buttervolume snapshot/);
});

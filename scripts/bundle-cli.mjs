#!/usr/bin/env node
// Bundles the CLI's short-command path (dist/cli/main.js and what it imports
// statically or lazily for snapshot, restore, purge...) into ONE CommonJS
// file, dist/cli/main.cjs. Why: Node 20's ESM loader costs ~10 ms to start
// plus ~0.5 ms per module, and `buttervolume snapshot v` must start fast.
// The daemon (`run`) and the commands that talk to peers run from the ES
// modules of dist/ instead (bin/buttervolume.cjs chooses), and what only
// `scheduled run` needs (the scheduler's pass, the store it uses) is
// imported from dist/ at run time, so each process has one copy of a module.
//
// Beside it, dist/cli/main.cjs.cache: V8's code cache of the bundle, every
// function compiled (`--no-lazy` while compiling), which bin/buttervolume.cjs
// hands to V8 instead of having it parse and compile the bundle at each
// start (measured: ~7 ms of CPU less for `buttervolume snapshot v`, ~6 ms
// for `--version`). The bundle's first line names it (`// bundle <sha256>`);
// the cache file starts with that line, so a cache left from another build is
// never used; V8 itself refuses one from another Node version or flags. A
// missing or refused cache only costs the time it saves. `scheduled` loads
// the bundle with a plain require: its `import()` of the ES modules left
// outside needs Node's own loader.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import vm from 'node:vm';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = resolve(root, 'dist/cli/main.cjs');

// Commands bin/buttervolume.cjs runs from the ES modules of dist/ (its
// LONG_COMMANDS, read from it: one list): the daemon and the commands that
// talk to peers, which run for seconds. Left out of the bundle with what
// only they use (replication), so that the short commands load a third less
// code.
const binList = /^const LONG_COMMANDS = new Set\((\[[^\]]*\])\);$/m.exec(readFileSync(resolve(root, 'bin/buttervolume.cjs'), 'utf8'));
if (!binList) throw new Error('bin/buttervolume.cjs: no `const LONG_COMMANDS = new Set([...]);` line to read the long commands from');
const LONG_COMMANDS = JSON.parse(binList[1].replaceAll("'", '"'));
// Modules loaded lazily by `scheduled run`, and the replicator the context
// makes for the long commands: never bundled.
const OUTSIDE = new RegExp(`/(scheduler/scheduler|scheduler/pass|replication/replicator|cli/commands/(${LONG_COMMANDS.join('|')}))\\.js$`);
const keepOutside = {
  name: 'keep-long-running-modules-outside',
  setup(b) {
    b.onResolve({ filter: /\.js$/ }, (args) => {
      const target = resolve(args.resolveDir, args.path);
      const fromScheduledRun = /\/commands\/scheduled\.js$/.test(args.importer) && args.kind === 'dynamic-import';
      if (!OUTSIDE.test(target) && !(fromScheduledRun && target.endsWith('/store/open.js'))) return undefined;
      return { path: `./${relative(dirname(outfile), target)}`, external: true };
    });
  },
};

/**
 * esbuild's plugin for the peer bundle: ssh2 is bundled, but what it loads
 * beside itself at run time (its native crypto binding, the Poly1305 module)
 * stays a file of its package, required by package path from node_modules.
 */
const ssh2Files = {
  name: 'ssh2-files-by-package-path',
  setup(b) {
    b.onResolve({ filter: /(\.node|poly1305\.js)$/ }, (args) => {
      const target = resolve(args.resolveDir, args.path);
      const at = target.lastIndexOf('/node_modules/ssh2/');
      if (at < 0) return undefined;
      return { path: target.slice(at + '/node_modules/'.length), external: true };
    });
  },
};

/** Bundles dist/cli/main.js into `file` (see the head of this file), then writes its code cache beside it. */
async function bundle(file, { external, plugins }) {
  await build({
    entryPoints: [resolve(root, 'dist/cli/main.js')],
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external,
    // The modules find the package root and package.json from import.meta.url;
    // the bundle sits at the same depth (dist/cli/) as dist/cli/main.js.
    define: { 'import.meta.url': '__bvImportMetaUrl' },
    banner: { js: "const __bvImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    plugins,
    // Less text to parse at every start. Identifiers are not minified, and
    // names are not re-attached (keepNames: a call per function at each start,
    // ~0.7 ms): error classes name themselves (util/error-name.ts); a function
    // renamed for a clash between modules shows as e.g. `show2` in a stack.
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  });
  // The bundle's identity on its first line, then the code cache of exactly that text.
  const body = readFileSync(file, 'utf8');
  const text = `// bundle ${createHash('sha256').update(body).digest('hex')}\n${body}`;
  writeFileSync(file, text);
  setFlagsFromString('--no-lazy'); // compile every function now, not at its first call
  const script = new vm.Script(Module.wrap(text), { filename: file });
  setFlagsFromString('--lazy'); // back to the default before the cache is written: V8 stamps it with the flags in force
  writeFileSync(`${file}.cache`, Buffer.concat([Buffer.from(text.slice(0, text.indexOf('\n') + 1)), script.createCachedData()]));
}

// The short commands: ssh2 loads native crypto bindings (.node files) relative to itself: required from node_modules.
await bundle(outfile, { external: ['node-gyp-build', 'ssh2'], plugins: [keepOutside] });

// The commands that talk to peers (PEER_COMMANDS of bin/buttervolume.cjs):
// everything they use, ssh2 too, in dist/cli/peer.cjs. Measured: the ES
// modules of a sync and ssh2 took 90-120 ms to load, more than a no-op sync
// of 20,000 files spends on either side's work. Only the daemon's own
// modules stay outside (`run` runs from dist/), and the scheduler's, which
// `scheduled run` imports at run time.
const DAEMON_ONLY = /\/(scheduler\/scheduler|scheduler\/pass|cli\/commands\/run)\.js$/;
await bundle(resolve(root, 'dist/cli/peer.cjs'), {
  external: ['node-gyp-build', 'cpu-features'],
  plugins: [
    ssh2Files,
    {
      // ssh2-lazy.js requires ssh2 at run time (createRequire: nothing a
      // bundler follows); here it is the bundle's own copy, the only one.
      name: 'ssh2-from-the-bundle',
      setup(b) {
        b.onLoad({ filter: /\/dist\/replication\/ssh2-lazy\.js$/ }, () => ({
          contents: "import ssh2 from 'ssh2';\nexport function loadSsh2() {\n  return ssh2;\n}\n",
          loader: 'js',
          resolveDir: resolve(root, 'dist/replication'),
        }));
      },
    },
    {
      name: 'keep-daemon-modules-outside',
      setup(b) {
        b.onResolve({ filter: /\.js$/ }, (args) => {
          const target = resolve(args.resolveDir, args.path);
          return DAEMON_ONLY.test(target) ? { path: `./${relative(dirname(outfile), target)}`, external: true } : undefined;
        });
      },
    },
  ],
});

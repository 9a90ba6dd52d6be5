#!/usr/bin/env node
// Bundles the CLI's short-command path (dist/cli/main.js and what it imports
// statically or lazily for snapshot, restore, purge...) into ONE CommonJS
// file, dist/cli/main.cjs. Why: Node 20's ESM loader costs ~10 ms to start
// plus ~0.5 ms per module, and `buttervolume snapshot v` must start in well
// under 60 ms. What only `run` and `scheduled run` need (the server, the
// scheduler, and the store they use) stays in the ESM build and is imported
// at run time from dist/, so the daemon has a single copy of each module.
//
// Beside it, dist/cli/main.cjs.cache: V8's code cache of the bundle, every
// function compiled (`--no-lazy` while compiling), which bin/buttervolume.cjs
// hands to V8 instead of having it parse and compile the bundle at each
// start (measured: ~7 ms of CPU less for `buttervolume snapshot v`, ~6 ms
// for `--version`). The bundle's first line names it (`// bundle <sha256>`);
// the cache file starts with that line, so a cache left from another build is
// never used; V8 itself refuses one from another Node version or flags. A
// missing or refused cache only costs the time it saves. `run` and
// `scheduled` load the bundle with a plain require: their `import()` of the
// ES modules left outside needs Node's own loader.
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

// Modules loaded lazily by `run` / `scheduled run`: never bundled.
const LONG_RUNNING = /\/(server\/daemon|scheduler\/scheduler|scheduler\/pass)\.js$/;
const keepOutside = {
  name: 'keep-long-running-modules-outside',
  setup(b) {
    b.onResolve({ filter: /\.js$/ }, (args) => {
      const target = resolve(args.resolveDir, args.path);
      const fromLongRunningCommand = /\/commands\/(run|scheduled)\.js$/.test(args.importer) && args.kind === 'dynamic-import';
      if (!LONG_RUNNING.test(target) && !(fromLongRunningCommand && target.endsWith('/store/open.js'))) return undefined;
      return { path: `./${relative(dirname(outfile), target)}`, external: true };
    });
  },
};

await build({
  entryPoints: [resolve(root, 'dist/cli/main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // ssh2 loads native crypto bindings (.node files) relative to itself: required from node_modules.
  external: ['node-gyp-build', 'ssh2'],
  // The modules find the package root and package.json from import.meta.url;
  // the bundle sits at the same depth (dist/cli/) as dist/cli/main.js.
  define: { 'import.meta.url': '__bvImportMetaUrl' },
  banner: { js: "const __bvImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [keepOutside],
  // Less text to parse at every start; names are kept (error classes, stacks).
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  logLevel: 'warning',
});

// The bundle's identity on its first line, then the code cache of exactly that text.
const body = readFileSync(outfile, 'utf8');
const bundle = `// bundle ${createHash('sha256').update(body).digest('hex')}\n${body}`;
writeFileSync(outfile, bundle);
setFlagsFromString('--no-lazy'); // compile every function now, not at its first call
const script = new vm.Script(Module.wrap(bundle), { filename: outfile });
setFlagsFromString('--lazy'); // back to the default before the cache is written: V8 stamps it with the flags in force
writeFileSync(`${outfile}.cache`, Buffer.concat([Buffer.from(bundle.slice(0, bundle.indexOf('\n') + 1)), script.createCachedData()]));

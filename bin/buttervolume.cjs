#!/usr/bin/env node
'use strict';
// CommonJS on purpose: see scripts/bundle-cli.mjs (start-up time).
// Our global options take no value: the first word not starting with "-" is the command.
const command = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
// The daemon gets more libuv threads than the default 4, so requests waiting
// on the filesystem always find one while snapshots commit; this must be set
// before the pool starts, which an ES module entry would be too late for.
if (command === 'run') process.env.UV_THREADPOOL_SIZE ??= '8';
// Kept out of the short commands' bundle (main.cjs), run from peer.cjs but
// `run` (from dist/): scripts/bundle-cli.mjs reads this line.
const LONG_COMMANDS = new Set(['run', 'send', 'receive', 'sync', 'ssh-key', 'replicas', 'failover', 'doctor']);
const dist = require('node:path').join(__dirname, '..', 'dist', 'cli');
if (command === 'run') {
  // The daemon: the ES modules of dist/, one copy of each (it imports the
  // scheduler's and the server's at run time); no bundle holds them.
  import(require('node:url').pathToFileURL(require('node:path').join(dist, 'main.js')).href).then(
    ({ handleError, main }) => main(process.argv).catch(handleError),
    (err) => {
      process.stderr.write(`buttervolume: ${command}: cannot load: ${err && err.message}\n`);
      process.exitCode = 1;
    },
  );
} else if (LONG_COMMANDS.has(command)) {
  // The commands that talk to peers: their own bundle, ssh2 inside (scripts/bundle-cli.mjs).
  let loaded;
  try {
    loaded = loadBundle(require('node:path').join(dist, 'peer.cjs'));
  } catch (err) {
    process.stderr.write(`buttervolume: ${command}: cannot load: ${err && err.message.split('\n')[0]}\n`);
    process.exitCode = 1;
  }
  if (loaded) loaded.main(process.argv).catch(loaded.handleError);
} else {
  const bundle = require('node:path').join(dist, 'main.cjs');
  // `scheduled run` imports the scheduler's pass from dist/ (import() needs Node's own loader).
  const { handleError, main } = command === 'scheduled' ? require(bundle) : loadBundle(bundle);
  main(process.argv).catch(handleError);
}

/**
 * require(file), handing V8 the code cache scripts/bundle-cli.mjs wrote
 * beside it (file.cache: the bundle's first line, then the cache), so that
 * the bundle is not parsed and compiled at each start. Without a cache of
 * this very bundle, or when V8 refuses it (another Node), a plain require.
 */
function loadBundle(file) {
  const fs = require('node:fs');
  let cache;
  let source;
  try {
    cache = fs.readFileSync(`${file}.cache`);
    source = fs.readFileSync(file, 'utf8');
  } catch {
    return require(file);
  }
  const id = source.slice(0, source.indexOf('\n') + 1);
  if (!id.startsWith('// bundle ') || !cache.subarray(0, id.length).equals(Buffer.from(id))) return require(file);
  const Module = require('node:module');
  const script = new (require('node:vm').Script)(Module.wrap(source), { filename: file, cachedData: cache.subarray(id.length) });
  if (script.cachedDataRejected) return require(file);
  const dir = require('node:path').dirname(file);
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(dir);
  require.cache[file] = mod;
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, dir);
  mod.loaded = true;
  return mod.exports;
}

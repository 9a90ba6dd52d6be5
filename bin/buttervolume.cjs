#!/usr/bin/env node
'use strict';
// CommonJS on purpose: see scripts/bundle-cli.mjs (start-up time).
// The daemon gets more libuv threads than the default 4, so requests waiting
// on the filesystem always find one while snapshots commit; this must be set
// before the pool starts, which an ES module entry would be too late for.
if (process.argv[2] === 'run') process.env.UV_THREADPOOL_SIZE ??= '8';
const { handleError, main } = require('../dist/cli/main.cjs');
main(process.argv).catch(handleError);

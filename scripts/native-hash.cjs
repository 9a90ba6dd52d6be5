#!/usr/bin/env node
// Hash of the native sources (native/** and binding.gyp): compiled into the
// addon as BV_SOURCE_HASH, and recomputed by the tests to catch a prebuild
// that was built from other sources than the ones committed.
'use strict';
const { createHash } = require('node:crypto');
const { readdirSync, readFileSync } = require('node:fs');
const { join, relative } = require('node:path');

const root = join(__dirname, '..');

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []);
}

function nativeSourceHash() {
  const files = [join(root, 'binding.gyp'), ...walk(join(root, 'native'))]
    .map((f) => relative(root, f).split('\\').join('/'))
    .sort();
  const hash = createHash('sha256');
  for (const f of files) {
    hash.update(f).update('\0').update(readFileSync(join(root, f))).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

module.exports = { nativeSourceHash };
if (require.main === module) process.stdout.write(nativeSourceHash());

// The committed prebuild must come from the committed native sources, and
// the addon under test must be built from them too.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';

import { loadBinding, native, packageRoot } from '../../src/btrfs/binding.js';

const require = createRequire(import.meta.url);
const { nativeSourceHash } = require('../../scripts/native-hash.cjs') as { nativeSourceHash(): string };
const expected = nativeSourceHash();

t.test('the prebuild for linux-x64 matches native/ and binding.gyp', async (t) => {
  const dir = join(packageRoot, 'prebuilds', 'linux-x64');
  const files = readdirSync(dir).filter((f) => f.endsWith('.node'));
  t.same(files, ['buttervolume.node'], 'one prebuild, named as node-gyp-build expects');
  const prebuilt = loadBinding(join(dir, 'buttervolume.node'));
  t.equal(prebuilt.sourceHash, expected, 'rebuild it with `npm run prebuildify` and commit prebuilds/ when this fails');
  t.equal(typeof prebuilt.snapshot, 'function');
});

t.test('the addon under test was built from the current sources', async (t) => {
  t.equal(native.sourceHash, expected, 'run `npm run build:native` when this fails');
});

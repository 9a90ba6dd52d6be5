// The committed prebuild must come from the committed native sources, and
// the addon under test must be built from them too.
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';

import { loadBinding, native, packageRoot } from '../../src/btrfs/binding.js';

const require = createRequire(import.meta.url);
const { nativeSourceHash } = require('../../scripts/native-hash.cjs') as { nativeSourceHash(): string };
const expected = nativeSourceHash();

t.test(`the prebuild for linux-${process.arch} matches native/ and binding.gyp`, async (t) => {
  const dir = join(packageRoot, 'prebuilds', `linux-${process.arch}`);
  const files = readdirSync(dir).filter((f) => f.endsWith('.node'));
  t.same(files, ['buttervolume.node'], 'one prebuild, named as node-gyp-build expects');
  const prebuilt = loadBinding(join(dir, 'buttervolume.node'));
  t.equal(prebuilt.sourceHash, expected, 'rebuild it with `npm run prebuildify` and commit prebuilds/ when this fails');
  t.equal(typeof prebuilt.snapshot, 'function');
});

// The other architecture's prebuild cannot be loaded here: its ELF header
// names its machine, and the hash it was built with is in it as a C string
// (BV_SOURCE_HASH). scripts/check-arm64.sh loads the arm64 one under qemu.
const ELF_MACHINE: Record<string, number> = { x64: 62, arm64: 183 };
for (const arch of ['x64', 'arm64'].filter((a) => a !== process.arch)) {
  t.test(`the prebuild for linux-${arch} matches native/ and binding.gyp`, async (t) => {
    const dir = join(packageRoot, 'prebuilds', `linux-${arch}`);
    t.same(readdirSync(dir).filter((f) => f.endsWith('.node')), ['buttervolume.node'], 'one prebuild, named as node-gyp-build expects');
    const bytes = readFileSync(join(dir, 'buttervolume.node'));
    t.equal(bytes.subarray(0, 4).toString('latin1'), '\x7fELF', 'an ELF file');
    t.equal(bytes[4], 2, '64-bit (ELFCLASS64)');
    t.equal(bytes[5], 1, 'little-endian');
    t.equal(bytes.readUInt16LE(16), 3, 'a shared object (ET_DYN)');
    t.equal(bytes.readUInt16LE(18), ELF_MACHINE[arch], `e_machine ${ELF_MACHINE[arch]} (${arch})`);
    t.ok(bytes.includes(Buffer.from(`${expected}\0`, 'latin1')), 'rebuild it with `npm run prebuildify` and commit prebuilds/ when this fails');
  });
}

t.test('the addon under test was built from the current sources', async (t) => {
  t.equal(native.sourceHash, expected, 'run `npm run build:native` when this fails');
});

// native/core/crc32c.cc on its own: compiled with a small C++ check (both the
// SSE4.2 and the table implementation, which only CPUs without SSE4.2 would
// otherwise run), since the addon only ever uses one of them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import { packageRoot } from '../../src/btrfs/binding.js';

t.test('CRC32C: the check value, both implementations agree at every length and alignment, chaining', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bv-crc32c-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'crc32c-check');
  execFileSync('g++', ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', '-I', join(packageRoot, 'native', 'core'),
    join(packageRoot, 'test', 'fixtures', 'crc32c-check.cc'), join(packageRoot, 'native', 'core', 'crc32c.cc'), '-o', bin]);
  const out = execFileSync(bin, { encoding: 'utf8' });
  t.match(out, /^ok hw=[01]\n$/, out.trim());
});

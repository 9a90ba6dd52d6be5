// native/core/queue_source.cc on its own, under ThreadSanitizer: the queue
// between the JS thread and the receiving thread is shared state, so its
// locking is checked by the sanitizer, not only by the receives that use it
// (test/native/receive-input.test.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import { packageRoot } from '../../src/btrfs/binding.js';

t.test('QueueSource: bytes whole and in order across threads, bounded, abort wakes the reader; no data race', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bv-queue-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'queue-source-check');
  const core = join(packageRoot, 'native', 'core');
  execFileSync('clang++', ['-std=c++17', '-O1', '-g', '-fsanitize=thread', '-Wall', '-Wextra', '-Werror', '-I', core,
    join(packageRoot, 'test', 'fixtures', 'queue-source-check.cc'), join(core, 'queue_source.cc'), join(core, 'send_stream.cc'), join(core, 'crc32c.cc'), '-o', bin]);
  // halt_on_error: a race is a failure (exit 66), not a warning.
  const out = execFileSync(bin, { encoding: 'utf8', env: { ...process.env, TSAN_OPTIONS: 'halt_on_error=1 exitcode=66' } });
  t.equal(out, 'ok\n', out.trim());
});

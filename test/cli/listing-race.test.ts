// A listing must not fail because an entry vanished while it was listed.
// strace delays the listing's ioctl on one entry (delay_enter), and the
// entry is deleted in that window: deterministic, not a lucky race.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import { btrfsProgs } from '../fixtures/btrfs.js';
import { BIN, cliFixture } from './fixtures/cli.js';

/** Runs the CLI under strace, the `when`-th ioctl on `path` delayed by `delayMs`. */
function delayedCli(env: Record<string, string>, args: string[], path: string, when: number, delayMs: number) {
  const child = spawn(
    'strace',
    ['-f', '-qq', '-o', '/dev/null', '-P', path, '-e', 'trace=ioctl', '-e', `inject=ioctl:delay_enter=${delayMs * 1000}:when=${when}`, process.execPath, BIN, ...args],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', UV_THREADPOOL_SIZE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
}

t.test('an entry deleted while it is being listed is skipped, not an error', async (t) => {
  const f = await cliFixture(t);
  await f.volume('v');
  const gone = await f.store.snapshot('v');
  const path = join(f.config.snapshotsPath, gone);
  // The first ioctl on the entry is the listing's GET_SUBVOL_INFO of it.
  const run = delayedCli(f.env, ['purge', '--dryrun', '--json', '1m:1h', 'v'], path, 1, 1500);
  await sleep(800);
  btrfsProgs('subvolume', 'delete', path);
  const r = await run;
  t.equal(r.stderr, '', 'no error');
  t.equal(r.code, 0);
  t.same(JSON.parse(r.stdout).snapshots, [], 'the deleted snapshot is simply not there');
});

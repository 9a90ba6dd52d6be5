// A listing must not fail because an entry vanished while it was listed.
// strace delays one ioctl of the listing (delay_enter), and the entry is
// deleted in that window: deterministic, not a lucky race. As root the
// listing reads the root tree (the delayed ioctl: its search of the
// directory's ROOT_REFs); without CAP_SYS_ADMIN it opens each entry (the
// delayed ioctl: GET_SUBVOL_INFO of the entry that goes).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import { btrfsProgs } from '../fixtures/btrfs.js';
import { BIN, cliFixture } from './fixtures/cli.js';

/**
 * Runs the CLI under strace, the `when`-th ioctl on `path` delayed by
 * `delayMs`, with CAP_SYS_ADMIN or without; `ms` is how long it ran.
 */
function delayedCli(env: Record<string, string>, args: string[], path: string, when: number, delayMs: number, capSysAdmin: boolean) {
  const noCap = capSysAdmin ? [] : ['setpriv', '--inh-caps=-sys_admin', '--bounding-set=-sys_admin'];
  const child = spawn(
    'strace',
    ['-f', '-qq', '-o', '/dev/null', '-P', path, '-e', 'trace=ioctl', '-e', `inject=ioctl:delay_enter=${delayMs * 1000}:when=${when}`, ...noCap, process.execPath, BIN, ...args],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', UV_THREADPOOL_SIZE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const t0 = performance.now();
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 })),
  );
}

for (const capSysAdmin of [true, false]) {
  t.test(`an entry deleted while it is being listed is skipped, not an error (${capSysAdmin ? 'as root: the root tree' : 'without CAP_SYS_ADMIN: entry by entry'})`, async (t) => {
    const f = await cliFixture(t);
    await f.volume('v');
    const stays = await f.store.snapshot('v');
    await sleep(1100);
    const gone = await f.store.snapshot('v');
    const path = join(f.config.snapshotsPath, gone);
    // 90 minutes on, `1h:1d` purges the newer of two snapshots of one hour: the plan names `gone` while it is listed.
    const later = new Date(Date.now() + 90 * 60_000);
    const now = new Date(later.getTime() - later.getTimezoneOffset() * 60_000).toISOString().slice(0, 19); // local time, no zone
    const purge = ['purge', '--dryrun', '--json', '--now', now, '1h:1d', 'v'];
    t.same(JSON.parse((await f.bv(purge)).stdout).snapshots, [gone], 'listed, it would be purged');
    // As root the 2nd ioctl on the directory is the ROOT_REF search (after
    // INO_LOOKUP); entry by entry the 1st on the entry is its GET_SUBVOL_INFO.
    const [watched, when] = capSysAdmin ? [f.config.snapshotsPath, 2] : [path, 1];
    const run = delayedCli(f.env, purge, watched, when, 2500, capSysAdmin);
    await sleep(1200);
    btrfsProgs('subvolume', 'delete', path);
    const r = await run;
    t.equal(r.stderr, '', 'no error');
    t.equal(r.code, 0);
    t.ok(r.ms >= 2500, `the listing was held in the delayed ioctl (${Math.round(r.ms)} ms)`);
    t.same(JSON.parse(r.stdout).snapshots, [], 'deleted meanwhile, it is not listed: nothing to purge');
    t.same(await f.store.snapshots('v'), [stays]);
  });
}

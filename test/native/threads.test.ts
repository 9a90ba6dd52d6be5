// The event loop keeps turning while the kernel works, and the addon is
// safe to load in several worker threads at once.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs } from '../fixtures/btrfs.js';

const { mnt } = mountBtrfs(t, { size: 2 * 1024 * 1024 * 1024 });

t.test('a transaction commit runs off the JS thread', async (t) => {
  // 256 MiB of dirty data: BTRFS_IOC_SYNC has to write it all back.
  const chunk = Buffer.alloc(1 << 20, 7);
  for (let i = 0; i < 256; i++) writeFileSync(join(mnt, `dirty-${i}`), chunk);
  let settled = false;
  const sync = btrfs.syncFilesystem(mnt).then(() => {
    settled = true;
  });
  let turns = 0;
  while (!settled) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (turns === 0) t.equal(settled, false, 'the call returned before the commit finished');
    turns++;
  }
  await sync;
  t.ok(turns > 1, `the event loop turned ${turns} times during the commit`);
});

t.test('snapshots from several worker threads at once', async (t) => {
  await btrfs.createSubvolume(join(mnt, 'src'));
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.api).then(async (btrfs) => {
      for (let i = 0; i < 20; i++) {
        await btrfs.snapshot(workerData.src, workerData.dest + '-' + i, { readonly: true });
      }
      const err = await btrfs.createSubvolume(workerData.src).catch((e) => e);
      parentPort.postMessage({ done: true, code: err.code, isBtrfsError: btrfs.isBtrfsError(err) });
    });`;
  // Workers do not inherit tap's TypeScript loader: they use the built package.
  const api = new URL('../../dist/btrfs/index.js', import.meta.url).href;
  const results = await Promise.all(
    [1, 2, 3].map(
      (n) =>
        new Promise((resolve, reject) => {
          const w = new Worker(code, {
            eval: true,
            workerData: { api, src: join(mnt, 'src'), dest: join(mnt, `w${n}`) },
            execArgv: process.execArgv,
          });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  t.same(results, [1, 2, 3].map(() => ({ done: true, code: 'EEXIST', isBtrfsError: true })));
  const names = (await btrfs.listSubvolumes(mnt)).map((e) => e.name);
  t.equal(names.filter((n) => /^w\d-\d+$/.test(n)).length, 60);
});

// runDaemon in this process: the onStarted hook (where the scheduler plugs
// in), closing by AbortSignal, idempotent close(), the drain timeout, and the
// configuration warnings it logs.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { createLogger } from '../../src/log.js';
import { runDaemon } from '../../src/server/daemon.js';
import { VolumeStore } from '../../src/store/volume-store.js';
import { mountBtrfs } from '../fixtures/btrfs.js';
import { call, daemonConfig } from '../fixtures/daemon.js';

t.test('onStarted gets the store; what it returns is stopped at close, before closed resolves', async (t) => {
  const { mnt } = mountBtrfs(t);
  const config = daemonConfig(mnt);
  const events: string[] = [];
  const daemon = await runDaemon(config, {
    logger: createLogger('CRITICAL'),
    onStarted(store) {
      events.push(store instanceof VolumeStore ? 'started with the store' : 'started');
      return {
        async stop() {
          await sleep(50);
          events.push('hook stopped');
        },
      };
    },
  });
  t.teardown(() => daemon.close());
  t.same(events, ['started with the store']);
  t.equal(daemon.address, config.socketPath);
  const first = daemon.close();
  t.equal(daemon.close(), first, 'close() is idempotent');
  await daemon.closed;
  t.same(events, ['started with the store', 'hook stopped']);
  t.notOk(existsSync(config.socketPath), 'socket removed');
});

t.test('a failing onStarted stops the server and rejects', async (t) => {
  const { mnt } = mountBtrfs(t);
  const config = daemonConfig(mnt);
  await t.rejects(
    runDaemon(config, {
      logger: createLogger('CRITICAL'),
      onStarted: () => {
        throw new Error('scheduler failed to start');
      },
    }),
    { message: 'scheduler failed to start' },
  );
  t.notOk(existsSync(config.socketPath), 'nothing left listening');
});

t.test('an AbortSignal closes the daemon; an aborted one closes it at once', async (t) => {
  const { mnt } = mountBtrfs(t);
  const config = daemonConfig(mnt);
  const controller = new AbortController();
  const daemon = await runDaemon(config, { logger: createLogger('CRITICAL'), signal: controller.signal });
  t.teardown(() => daemon.close());
  t.equal((await call(config.socketPath, '/Plugin.Activate')).status, 200);
  controller.abort();
  await daemon.closed;
  t.notOk(existsSync(config.socketPath));
  const again = await runDaemon(config, { logger: createLogger('CRITICAL'), signal: AbortSignal.abort() });
  await again.closed;
  t.notOk(existsSync(config.socketPath), 'started and closed');
});

t.test('the drain timeout cuts a request that does not end', async (t) => {
  const { mnt } = mountBtrfs(t);
  const config = daemonConfig(mnt);
  const logs: string[] = [];
  const daemon = await runDaemon(config, { logger: createLogger('INFO', (l) => logs.push(l)), drainTimeout: 300 });
  t.teardown(() => daemon.close());
  await call(config.socketPath, '/VolumeDriver.Create', { Name: 'v' });
  const lockDir = join(config.volumesPath, '.buttervolume', 'locks');
  mkdirSync(lockDir, { recursive: true });
  const lock = await btrfs.lock(join(lockDir, 'v.lock'));
  t.teardown(() => lock.release());
  const inFlight = call(config.socketPath, '/VolumeDriver.Remove', { Name: 'v' }).catch((err: NodeJS.ErrnoException) => err.code);
  await sleep(100);
  const t0 = performance.now();
  await daemon.close();
  const waited = performance.now() - t0;
  t.ok(waited >= 250 && waited < 5000, `closed after the drain timeout (${waited.toFixed(0)} ms)`);
  t.equal(await inFlight, 'ECONNRESET', 'the hanging request was cut');
  t.match(logs.join(''), /INFO Stopping: finishing the requests in progress\.\.\.\n.*INFO Stopped\n/);
  // The store operation itself was not cut: it goes on once the lock is free.
  lock.release();
  const volume = join(config.volumesPath, 'v');
  for (let i = 0; i < 200 && existsSync(volume); i++) await sleep(25);
  t.notOk(existsSync(volume), 'the removal finished after all');
});

t.test('configuration warnings are logged at start', async (t) => {
  const { mnt } = mountBtrfs(t);
  const ini = join(dirname(mnt), 'config.ini');
  writeFileSync(ini, '[DEFAULT]\nvolumes_pth = /typo\n');
  const config = daemonConfig(mnt, { BUTTERVOLUME_CONFIG: ini });
  const logs: string[] = [];
  const daemon = await runDaemon(config, { logger: createLogger('WARNING', (l) => logs.push(l)) });
  await daemon.close();
  t.match(logs.join(''), new RegExp(`WARNING ${ini} line 2: unknown key "volumes_pth" ignored`));
});

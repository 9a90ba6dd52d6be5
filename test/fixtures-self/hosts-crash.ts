// Child of hosts.test.ts (not a test itself): makes two hosts, with a process
// in each holding its btrfs busy (cwd inside it), prints what it made as one
// JSON line, then ends as argv[2] says:
//   tap-throw  the tap subtest throws: tap's teardown must clean up
//   exit       process.exit() with teardown never run: the 'exit' handler must
//   sigkill    waits to be SIGKILLed: only a later createHosts' sweep can
import { createHosts, type Host } from '../fixtures/hosts.js';

const mode = process.argv[2];

function make(t: { teardown(fn: () => void | Promise<void>): void }): void {
  const hosts = createHosts(t, ['a', 'b']);
  const procs = hosts.map((h: Host) => h.spawn('sleep', ['600'], { cwd: h.btrfs!.mnt }));
  console.log(
    JSON.stringify({
      netnses: [hosts.switchNetns, ...hosts.map((h) => h.netns)],
      pids: procs.map((p) => p.pid),
      mounts: hosts.map((h) => h.btrfs!.mnt),
      images: hosts.map((h) => h.btrfs!.image),
    }),
  );
}

if (mode === 'tap-throw') {
  const { default: t } = await import('tap');
  t.test('throws with hosts up', async (t) => {
    make(t);
    throw new Error('boom');
  });
} else if (mode === 'exit') {
  make({ teardown: () => {} });
  process.exit(3);
} else if (mode === 'sigkill') {
  make({ teardown: () => {} });
  setInterval(() => {}, 60_000);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

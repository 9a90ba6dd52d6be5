// A bounded load-and-fault run: HTTP clients (as dockerd and compose would)
// and CLI processes mix Mount/Unmount/Get/List/Snapshot/Restore/Clone/Remove/
// purge on shared and private volumes, for a fixed number of operations;
// then the same with the daemon killed (SIGKILL) at random points and
// restarted. After each phase: every mount count exact (a Mount whose answer
// was lost in a kill is resolved from the table: counted once or not at all,
// never twice), every volume's and snapshot's marker intact, no work
// subvolume left, and the only errors the documented refusals.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';

import { mountBtrfs } from '../fixtures/btrfs.js';
import { call, daemonEnv, startDaemonProcess, volumeEntries, type Answer, type DaemonProcess } from '../fixtures/daemon.js';
import { runCli } from '../cli/fixtures/cli.js';

// Deterministic: the same run each time (a failure can be replayed).
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

// What a refusal may say: anything else is a defect.
const DOCUMENTED = [/cannot (restore|remove) a volume in use \(mounted \d+ times?\)/, /: no snapshot to restore$/, /: volume already exists$/];

interface Stats {
  ops: number;
  refusals: number;
  faults: number;
  lostAnswers: number;
  unexpected: string[];
}

class Harness {
  daemon!: DaemonProcess;
  /** Mounts the clients know were answered: id -> volume. */
  readonly mounted = new Map<string, string>();
  /** Mounts or unmounts whose answer was lost: id -> volume and what was asked. */
  readonly ambiguous = new Map<string, { volume: string; op: 'mount' | 'unmount' }>();
  readonly stats: Stats = { ops: 0, refusals: 0, faults: 0, lostAnswers: 0, unexpected: [] };
  /** Clone name -> the volume it was cloned from (whose marker it holds). */
  readonly cloneSource = new Map<string, string>();
  restarting: Promise<void> | undefined;

  constructor(readonly env: Record<string, string>) {}

  get socket(): string {
    return this.env.BUTTERVOLUME_SOCKET!;
  }

  /** One request; connection failures before sending are retried (as dockerd does), a lost answer is reported as null. */
  async request(path: string, body: unknown): Promise<Answer | null> {
    for (let attempt = 0; ; attempt++) {
      await this.restarting;
      try {
        this.stats.ops++;
        return await call(this.socket, path, body);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code === 'ECONNREFUSED' || code === 'ENOENT') && attempt < 200) {
          await sleep(25);
          continue;
        }
        this.stats.lostAnswers++;
        return null;
      }
    }
  }

  check(what: string, r: Answer | null): Answer | null {
    if (r === null || r.status === 200) return r;
    if (DOCUMENTED.some((re) => re.test(r.body?.Err ?? ''))) this.stats.refusals++;
    else this.stats.unexpected.push(`${what}: ${r.status} ${r.body?.Err ?? r.text}`);
    return r;
  }
}

const MARKERS = (name: string) => `marker of ${name}`;

async function httpClient(h: Harness, c: number, phase: string, ops: number, random: () => number, shared: string[]) {
  const own = `p${c}`;
  const mine: string[] = [];
  let clones = 0;
  for (let i = 0; i < ops; i++) {
    const pick = random();
    const volume = random() < 0.5 ? own : shared[Math.floor(random() * shared.length)]!;
    if (pick < 0.3) {
      const id = `c${c}-${phase}-${i}`;
      h.check('Get', await h.request('/VolumeDriver.Get', { Name: volume }));
      const r = await h.request('/VolumeDriver.Mount', { Name: volume, ID: id });
      if (r === null) h.ambiguous.set(id, { volume, op: 'mount' });
      else if (h.check('Mount', r)?.status === 200) {
        h.mounted.set(id, volume);
        mine.push(id);
      }
    } else if (pick < 0.55 && mine.length > 0) {
      const id = mine.splice(Math.floor(random() * mine.length), 1)[0]!;
      const r = await h.request('/VolumeDriver.Unmount', { Name: h.mounted.get(id), ID: id });
      if (r === null) h.ambiguous.set(id, { volume: h.mounted.get(id)!, op: 'unmount' });
      else if (h.check('Unmount', r)?.status === 200) h.mounted.delete(id);
      else mine.push(id);
    } else if (pick < 0.65) {
      h.check('List', await h.request('/VolumeDriver.List', {}));
    } else if (pick < 0.78) {
      h.check('Snapshot', await h.request('/VolumeDriver.Snapshot', { Name: volume }));
    } else if (pick < 0.86) {
      h.check('Restore', await h.request('/VolumeDriver.Snapshot.Restore', { Name: volume }));
    } else if (pick < 0.93) {
      const clone = `${own}-${phase}k${clones++}`;
      if (!h.cloneSource.has(clone)) h.cloneSource.set(clone, volume);
      const r = h.check('Clone', await h.request('/VolumeDriver.Clone', { Name: volume, Target: clone }));
      if (r?.status === 200 && random() < 0.7) h.check('Remove clone', await h.request('/VolumeDriver.Remove', { Name: clone }));
    } else {
      h.check('Purge', await h.request('/VolumeDriver.Snapshots.Purge', { Name: volume, Pattern: '1m:1h', Dryrun: random() < 0.5 }));
    }
  }
}

async function cliClient(h: Harness, c: number, ops: number, random: () => number, shared: string[]) {
  const own = `q${c}`;
  for (let i = 0; i < ops; i++) {
    await h.restarting;
    const volume = random() < 0.5 ? own : shared[Math.floor(random() * shared.length)]!;
    const pick = random();
    const args = pick < 0.4 ? ['snapshot', volume] : pick < 0.7 ? ['restore', volume] : pick < 0.85 ? ['purge', '1m:1h', volume] : ['snapshots', volume];
    const r = await runCli(args, h.env);
    h.stats.ops++;
    if (r.code !== 0) {
      const line = r.stderr.trim();
      if (DOCUMENTED.some((re) => re.test(line))) h.stats.refusals++;
      else h.stats.unexpected.push(`cli ${args.join(' ')}: ${line}`);
    }
  }
}

/** Resolves lost Mount/Unmount answers from the table: each id counted 0 or 1 times, never more. */
function resolveAmbiguous(h: Harness, t: Test): number {
  const file = join(h.env.BUTTERVOLUME_VOLUMES_PATH!, '.buttervolume', 'mounts.json');
  const table = JSON.parse(readFileSync(file, 'utf8')) as { mounts: Record<string, Record<string, number>> };
  let mismatches = 0;
  for (const [id, { volume, op }] of h.ambiguous) {
    const n = table.mounts[volume]?.[id] ?? 0;
    if (n > 1) mismatches++;
    if (op === 'mount' && n === 1) h.mounted.set(id, volume);
    if (op === 'unmount' && n === 0) h.mounted.delete(id);
  }
  t.comment(`${h.ambiguous.size} lost Mount/Unmount answers resolved from the table`);
  h.ambiguous.clear();
  return mismatches;
}

async function verify(t: Test, h: Harness, volumes: string[], label: string): Promise<{ mismatches: number; lost: number }> {
  let mismatches = resolveAmbiguous(h, t);
  for (const volume of volumes) {
    const expected = [...h.mounted.values()].filter((v) => v === volume).length;
    const r = await h.request('/VolumeDriver.Get', { Name: volume });
    const actual = r?.body?.Volume?.Status?.Mounts;
    if (actual !== expected) {
      mismatches++;
      t.fail(`${label}: ${volume} mounted ${actual} times, the clients hold ${expected}`);
    }
  }
  let lost = 0;
  const vols = h.env.BUTTERVOLUME_VOLUMES_PATH!;
  const snaps = h.env.BUTTERVOLUME_SNAPSHOTS_PATH!;
  for (const name of volumeEntries(vols)) {
    if (name.startsWith('.bv-')) continue;
    const source = h.cloneSource.get(name) ?? name;
    const marker = join(vols, name, 'marker');
    if (!existsSync(marker) || readFileSync(marker, 'utf8') !== MARKERS(source)) lost++;
  }
  for (const name of readdirSync(snaps)) {
    const base = name.split('@')[0]!;
    const source = h.cloneSource.get(base) ?? base;
    const marker = join(snaps, name, 'marker');
    if (!existsSync(marker) || readFileSync(marker, 'utf8') !== MARKERS(source)) lost++;
  }
  t.same(volumeEntries(vols).filter((n) => n.startsWith('.bv-')), [], `${label}: no work subvolume left`);
  for (const volume of volumes) t.ok(existsSync(join(vols, volume)), `${label}: ${volume} exists`);
  return { mismatches, lost };
}

t.test('load and faults', async (t) => {
  const { mnt } = mountBtrfs(t, { size: 2 * 1024 * 1024 * 1024 });
  const h = new Harness(daemonEnv(mnt));
  h.daemon = await startDaemonProcess(t, h.env);
  const shared = ['s0', 's1'];
  const volumes = [...shared, 'p0', 'p1', 'p2', 'p3', 'q0', 'q1'];
  for (const v of volumes) {
    await h.request('/VolumeDriver.Create', { Name: v });
    writeFileSync(join(h.env.BUTTERVOLUME_VOLUMES_PATH!, v, 'marker'), MARKERS(v));
    await h.request('/VolumeDriver.Snapshot', { Name: v });
  }
  const random = rng(20261201);
  const run = (phase: string, httpOps: number, cliOps: number) =>
    Promise.all([
      ...[0, 1, 2, 3].map((c) => httpClient(h, c, phase, httpOps, rng(Math.floor(random() * 2 ** 31)), shared)),
      ...[0, 1].map((c) => cliClient(h, c, cliOps, rng(Math.floor(random() * 2 ** 31)), shared)),
    ]);

  // Phase 1: load only.
  await run('a', 120, 12);
  const calm = await verify(t, h, volumes, 'after the load');

  // Phase 2: the same load, the daemon killed at random points and restarted.
  const load = run('b', 120, 12);
  let stop = false;
  const killer = (async () => {
    while (!stop) {
      await sleep(400 + Math.floor(random() * 1200));
      if (stop) break;
      let release!: () => void;
      h.restarting = new Promise((r) => (release = r));
      h.daemon.kill('SIGKILL');
      await h.daemon.exited;
      h.stats.faults++;
      h.daemon = await startDaemonProcess(t, h.env);
      release();
      h.restarting = undefined;
    }
  })();
  await load;
  stop = true;
  await killer;
  const faulted = await verify(t, h, volumes, 'after the faults');

  // Everyone unmounts: every count goes back to 0.
  for (const [id, volume] of [...h.mounted]) {
    await h.request('/VolumeDriver.Unmount', { Name: volume, ID: id });
    h.mounted.delete(id);
  }
  for (const volume of volumes) t.equal((await h.request('/VolumeDriver.Get', { Name: volume }))?.body.Volume.Status.Mounts, 0, `${volume}: 0 at the end`);

  const mismatches = calm.mismatches + faulted.mismatches;
  const lost = calm.lost + faulted.lost;
  t.comment(`operations ${h.stats.ops}, faults injected ${h.stats.faults} (SIGKILL of the daemon), lost answers ${h.stats.lostAnswers}, documented refusals ${h.stats.refusals}`);
  t.comment(`refcount mismatches ${mismatches}, data lost ${lost}, unexpected errors ${h.stats.unexpected.length}`);
  t.ok(h.stats.faults >= 2, 'faults were injected');
  t.equal(mismatches, 0, 'refcount mismatches');
  t.equal(lost, 0, 'data lost');
  t.same(h.stats.unexpected, [], 'only documented refusals');
});

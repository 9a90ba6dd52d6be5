// The CLI and other buttervolume processes on the same volume at the same
// time: a loop of CLI restores while (a) the daemon (`buttervolume run`)
// serves Snapshot requests continuously and (b) another process snapshots
// through the store. The CLI takes the daemon's per-volume locks, so:
//  - no error anywhere (the only acceptable one would be a clear "busy");
//  - the volume path always holds a whole dataset, never nothing;
//  - no interleaving: ordered by name (the date, taken under the lock),
//    every snapshot holds what the volume held at that point of the
//    history the restores wrote, and each restore's backup holds what
//    the previous restore put there.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';

import { stateDirOf } from '../../src/store/open.js';
import { cliFixture, startRun, type CliFixture } from './fixtures/cli.js';
import { volumeEntries } from '../fixtures/daemon.js';

const RESTORES = 12;

/** A dataset of generation `gen`: one file, so one read sees one version. */
const dataset = (gen: number) => `${gen}\n${String(gen).repeat(20_000)}`;

/** The generation of a dataset, or null if it is not whole. */
function generation(text: string): number | null {
  const [head, body, ...rest] = text.split('\n');
  return rest.length === 0 && body === head!.repeat(20_000) ? Number(head) : null;
}

const readGen = (...parts: string[]) => generation(readFileSync(join(...parts, 'data'), 'utf8'));

/** Volume `v` at generation 2, with snapshots A (generation 1) and B (generation 2). */
async function setup(f: CliFixture): Promise<{ path: string; a: string; b: string }> {
  const path = await f.volume('v', dataset(1));
  const a = await f.store.snapshot('v');
  writeFileSync(join(path, 'data'), dataset(2));
  const b = await f.store.snapshot('v');
  return { path, a, b };
}

/** Polls the volume while `running()`: counts reads that found no volume or a partial dataset. */
async function watchVolume(path: string, running: () => boolean): Promise<{ reads: number; bad: string[] }> {
  let reads = 0;
  const bad: string[] = [];
  while (running()) {
    try {
      if (readGen(path) === null) bad.push('partial dataset');
    } catch (err) {
      bad.push((err as Error).message);
    }
    reads++;
    await sleep(2);
  }
  return { reads, bad };
}

/** Runs the CLI restore loop (A, B, A, ...); returns [backup, generation restored] per restore. */
async function restoreLoop(t: Test, f: CliFixture, a: string, b: string): Promise<Array<[string, number]>> {
  const done: Array<[string, number]> = [];
  for (let i = 0; i < RESTORES; i++) {
    const [snap, gen] = i % 2 === 0 ? [a, 1] : [b, 2];
    const r = await f.bv(['restore', snap]);
    t.same([r.code, r.stderr], [0, ''], `restore ${i + 1}`);
    done.push([r.stdout.trim(), gen]);
  }
  return done;
}

/** Checks the history: ordered by name, each snapshot holds the generation of its time. */
function checkHistory(t: Test, f: CliFixture, fixtures: string[], restores: Array<[string, number]>, path: string): number {
  const backups = new Map(restores);
  const all = readdirSync(f.config.snapshotsPath).filter((n) => !fixtures.includes(n)).sort();
  let state = 2;
  const wrong: string[] = [];
  let others = 0;
  for (const name of all) {
    const gen = readGen(f.config.snapshotsPath, name);
    if (gen !== state) wrong.push(`${name}: generation ${gen}, expected ${state}`);
    const next = backups.get(name);
    if (next !== undefined) state = next;
    else others++;
  }
  t.same(wrong, [], 'every snapshot holds the volume of its time: no interleaving, nothing partial');
  t.equal(all.length - others, RESTORES, 'every backup found');
  t.equal(readGen(path), state, 'the volume holds the last restore');
  t.same(volumeEntries(f.config.volumesPath).filter((n) => n.startsWith('.')), [], 'no work subvolume left');
  return others;
}

t.test('CLI restores while the daemon serves Snapshot requests', async (t) => {
  const f = await cliFixture(t);
  const { path, a, b } = await setup(f);
  const daemon = await startRun(t, f.env);

  let running = true;
  const answers: string[] = [];
  const snapshotter = (async () => {
    let count = 0;
    while (running) {
      const r = await daemon.call('/VolumeDriver.Snapshot', { Name: 'v' });
      if (r.status !== 200 || r.body?.Err !== '') answers.push(`${r.status} ${r.text}`);
      else count++;
    }
    return count;
  })();
  const watcher = watchVolume(path, () => running);
  await sleep(100); // the daemon is snapshotting before the first restore
  const restores = await restoreLoop(t, f, a, b).finally(() => (running = false));
  const served = await snapshotter;
  const watched = await watcher;

  t.same(answers, [], 'every Snapshot request answered without an error');
  t.ok(served > RESTORES, `the daemon served ${served} snapshots meanwhile`);
  t.same(watched.bad, [], `the volume was whole at each of ${watched.reads} reads`);
  const others = checkHistory(t, f, [a, b], restores, path);
  t.equal(others, served, 'every snapshot the daemon answered is there');
  t.equal(daemon.stderr().match(/ ERROR /g), null, 'no error in the daemon log');
});

t.test('CLI restores while another process snapshots through the store', async (t) => {
  const f = await cliFixture(t);
  const { path, a, b } = await setup(f);
  const script = new URL('./fixtures/snapshot-loop.mjs', import.meta.url).pathname;
  const child = spawn(process.execPath, [script, f.config.volumesPath, f.config.snapshotsPath, stateDirOf(f.config), 'v'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGKILL');
      await exited;
    }
  });
  while (!out.includes('ready\n')) {
    if (child.exitCode !== null) throw new Error(`snapshot loop exited: ${err}`);
    await sleep(10);
  }

  let running = true;
  const watcher = watchVolume(path, () => running);
  await sleep(100);
  const restores = await restoreLoop(t, f, a, b).finally(() => (running = false));
  process.kill(child.pid!, 'SIGTERM');
  t.equal(await exited, 0, err);
  const report = JSON.parse(out.split('\n')[1]!) as { count: number; errors: string[] };
  const watched = await watcher;

  t.same(report.errors, [], 'the other process never failed');
  t.ok(report.count > RESTORES, `it took ${report.count} snapshots meanwhile`);
  t.same(watched.bad, [], `the volume was whole at each of ${watched.reads} reads`);
  t.equal(checkHistory(t, f, [a, b], restores, path), report.count);
});

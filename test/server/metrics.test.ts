// The daemon's Prometheus metrics (METRICS_ADDRESS): scraped over HTTP by a
// real client from a running `buttervolume run`, parsed with a Prometheus
// text-format checker (promtool), and each metric seen to change when what it measures
// changes: volumes, snapshots, the newest snapshot's age, mounts, the rpo,
// plugin requests and their errors, scheduled jobs and their failures,
// replication bytes both ways (a peer's CLI against the daemon's SSH server)
// and a failed transfer.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { get as httpGet, request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import { mountBtrfs } from '../fixtures/btrfs.js';
import { BIN, call, daemonEnv, startDaemonProcess } from '../fixtures/daemon.js';
import { freePort } from '../fixtures/managed-plugin.js';

/** One family of the exposition: its HELP, TYPE and samples (histograms: their _bucket, _sum, _count). */
interface Family {
  help: string;
  type: string;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

function scrapeText(port: number, path = '/metrics', method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Prometheus' own checker (promtool, Debian's prometheus package): the exposition's syntax and naming conventions. */
function promtoolCheck(text: string): string {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return r.status === 0 ? '' : `${r.stdout}${r.stderr}`.trim() || `promtool exited ${r.status}`;
}

/** The families of a text exposition (promtool checked the syntax; this reads the values the test asserts on). */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { help: '', type: '', samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      family(meta[2]!)[meta[1] === 'HELP' ? 'help' : 'type'] = meta[3]!;
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!sample) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const name = sample[1]!;
    const base = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    family(base).samples.push({ name, labels, value: Number(sample[3]) });
  }
  return families;
}

async function scrape(port: number): Promise<Map<string, Family>> {
  const r = await scrapeText(port);
  if (r.status !== 200) throw new Error(`scrape: ${r.status} ${r.body}`);
  const problems = promtoolCheck(r.body);
  if (problems) throw new Error(`promtool check metrics: ${problems}`);
  return parseExposition(r.body);
}

/** The value of sample `name` with exactly `labels` (null: no such series); a histogram's `name` is its observations' count. */
function value(m: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | null {
  const f = m.get(name);
  const wanted = f?.type === 'histogram' ? `${name}_count` : name;
  const sample = f?.samples.find((s) => s.name === wanted && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return sample ? sample.value : null;
}

async function until(what: string, port: number, cond: (m: Map<string, Family>) => boolean, ms = 20_000): Promise<Map<string, Family>> {
  const end = Date.now() + ms;
  for (;;) {
    const m = await scrape(port);
    if (cond(m)) return m;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

t.test('metrics: served on METRICS_ADDRESS, Prometheus text, each changes with what it measures', async (t) => {
  const { mnt } = mountBtrfs(t);
  const [mport, sport] = [await freePort(), await freePort()];
  const env = daemonEnv(mnt, { BUTTERVOLUME_METRICS_ADDRESS: `127.0.0.1:${mport}`, BUTTERVOLUME_SSH_PORT: String(sport), BUTTERVOLUME_TIMER: '1' });
  const daemon = await startDaemonProcess(t, env);
  const api = (path: string, body: unknown) => call(env.BUTTERVOLUME_SOCKET!, path, body);

  let m = await scrape(mport);
  const names = [...m.keys()];
  t.ok(names.length > 10, `${names.length} metric families`);
  t.same(names.filter((n) => !n.startsWith('buttervolume_')), [], 'every name starts with buttervolume_');
  t.same(names.filter((n) => !m.get(n)!.help || !m.get(n)!.type), [], 'each has HELP and TYPE');
  t.same(names.filter((n) => m.get(n)!.type === 'counter' && !n.endsWith('_total')), [], 'counters end in _total');
  t.equal(promtoolCheck('# TYPE bad_metric counter\nbad_metric{ 1\n').length > 0, true, 'promtool does refuse a broken exposition');
  t.equal(value(m, 'buttervolume_volumes'), 0, 'no volume yet');
  const head = await scrapeText(mport, '/metrics', 'HEAD');
  t.equal(head.status, 200, 'HEAD answered');
  t.match(head.type, /^text\/plain; version=0\.0\.4/, 'the text exposition format');
  t.equal((await scrapeText(mport, '/other')).status, 404, 'nothing else is served');
  t.equal((await scrapeText(mport, '/metrics', 'POST')).status, 405);

  // volumes, snapshots, mounts, requests
  t.equal((await api('/VolumeDriver.Create', { Name: 'vol' })).status, 200);
  m = await scrape(mport);
  t.equal(value(m, 'buttervolume_volumes'), 1, 'a volume');
  t.equal(value(m, 'buttervolume_volume_snapshots', { volume: 'vol' }), 0);
  t.equal(value(m, 'buttervolume_volume_newest_snapshot_age_seconds', { volume: 'vol' }), null, 'no snapshot: no age');
  t.equal(value(m, 'buttervolume_volume_mounts', { volume: 'vol' }), 0);
  const mountsBefore = value(m, 'buttervolume_plugin_request_duration_seconds', { endpoint: '/VolumeDriver.Mount' }) ?? 0;
  await api('/VolumeDriver.Mount', { Name: 'vol', ID: 'a'.repeat(64) });
  m = await scrape(mport);
  t.equal(value(m, 'buttervolume_volume_mounts', { volume: 'vol' }), 1, 'mounted once');
  t.equal(value(m, 'buttervolume_plugin_request_duration_seconds', { endpoint: '/VolumeDriver.Mount' }), mountsBefore + 1, 'the Mount observed in the histogram');
  writeFileSync(join(mnt, 'volumes', 'vol', 'data'), Buffer.alloc(256 * 1024, 7));
  await api('/VolumeDriver.Unmount', { Name: 'vol', ID: 'a'.repeat(64) });
  const snap = String((await api('/VolumeDriver.Snapshot', { Name: 'vol' })).body.Snapshot);
  m = await scrape(mport);
  t.equal(value(m, 'buttervolume_volume_mounts', { volume: 'vol' }), 0, 'unmounted');
  t.equal(value(m, 'buttervolume_volume_snapshots', { volume: 'vol' }), 1, 'one snapshot');
  const age = value(m, 'buttervolume_volume_newest_snapshot_age_seconds', { volume: 'vol' });
  t.ok(age !== null && age >= 0 && age < 10, `its age (${age} s)`);
  const errorsBefore = value(m, 'buttervolume_plugin_request_errors_total', { endpoint: '/VolumeDriver.Get' }) ?? 0;
  t.not((await api('/VolumeDriver.Get', { Name: 'missing' })).status, 200, 'Get of a missing volume: an error');
  m = await scrape(mport);
  t.equal(value(m, 'buttervolume_plugin_request_errors_total', { endpoint: '/VolumeDriver.Get' }), errorsBefore + 1, 'an error counted for its endpoint');
  await call(env.BUTTERVOLUME_SOCKET!, '/no/such/endpoint', {});
  m = await scrape(mport);
  t.ok((value(m, 'buttervolume_plugin_request_duration_seconds', { endpoint: 'other' }) ?? 0) >= 1, 'an unknown path is counted as "other", not by its path');

  // rpo
  t.equal((await api('/VolumeDriver.Create', { Name: 'fresh', Opts: { rpo: '10s' } })).status, 200);
  m = await scrape(mport);
  t.equal(value(m, 'buttervolume_volume_rpo_seconds', { volume: 'fresh' }), 10, 'its rpo');
  t.equal(value(m, 'buttervolume_volume_rpo_exceeded', { volume: 'fresh' }), 1, 'no snapshot: rpo exceeded');
  t.equal(value(m, 'buttervolume_volume_rpo_seconds', { volume: 'vol' }), null, 'a volume without rpo has none');
  let got = (await api('/VolumeDriver.Get', { Name: 'fresh' })).body.Volume as { Status: Record<string, unknown> };
  t.match(got.Status, { Rpo: '10s', RpoExceeded: true, NewestSnapshotAge: null }, 'Get says so too');
  await api('/VolumeDriver.Snapshot', { Name: 'fresh' });
  m = await scrape(mport);
  t.equal(value(m, 'buttervolume_volume_rpo_exceeded', { volume: 'fresh' }), 0, 'a snapshot: within its rpo');
  got = (await api('/VolumeDriver.Get', { Name: 'fresh' })).body.Volume as { Status: Record<string, unknown> };
  t.match(got.Status, { RpoExceeded: false, NewestSnapshotAge: /^\d+s$/ });

  // scheduled jobs, and a transfer that fails
  await api('/VolumeDriver.Schedule', { Name: 'vol', Action: 'snapshot', Timer: 1 });
  await api('/VolumeDriver.Schedule', { Name: 'vol', Action: 'replicate:127.0.0.1:1', Timer: 1 });
  m = await until(
    'a scheduled snapshot and a failed replicate',
    mport,
    (x) => (value(x, 'buttervolume_scheduled_runs_total', { action: 'snapshot', volume: 'vol' }) ?? 0) >= 1 && (value(x, 'buttervolume_scheduled_failures_total', { action: 'replicate', volume: 'vol' }) ?? 0) >= 1,
    30_000,
  );
  t.equal(value(m, 'buttervolume_scheduled_failures_total', { action: 'snapshot', volume: 'vol' }), 0, 'the snapshot job did not fail');
  t.ok((value(m, 'buttervolume_volume_snapshots', { volume: 'vol' }) ?? 0) >= 2, 'and made a snapshot');
  t.ok((value(m, 'buttervolume_replication_failures_total', { peer: '127.0.0.1:1', volume: 'vol', direction: 'sent' }) ?? 0) >= 1, 'the failed send counted for its peer');
  await api('/VolumeDriver.Schedule', { Name: 'vol', Action: 'snapshot', Timer: 0 });
  await api('/VolumeDriver.Schedule', { Name: 'vol', Action: 'replicate:127.0.0.1:1', Timer: 0 });

  // replication both ways, as the SSH server of a peer's CLI
  const peer = mountBtrfs(t);
  const peerEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...daemonEnv(peer.mnt, { BUTTERVOLUME_SSH_PORT: String(sport) }) };
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { env: peerEnv, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`buttervolume ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const peerKey = cli(['ssh-key']);
  mkdirSync(env.BUTTERVOLUME_SSH_PATH!, { recursive: true });
  writeFileSync(join(env.BUTTERVOLUME_SSH_PATH!, 'authorized_keys'), `${peerKey}\n`);
  mkdirSync(join(peer.mnt, 'volumes'), { recursive: true });
  execFileSync('btrfs', ['-q', 'subvolume', 'create', join(peer.mnt, 'volumes', 'pv')]);
  writeFileSync(join(peer.mnt, 'volumes', 'pv', 'f'), Buffer.alloc(1 << 20, 3));
  const peerSnap = cli(['snapshot', 'pv']);
  cli(['send', `127.0.0.1:${sport}`, peerSnap]);
  m = await scrape(mport);
  const received = value(m, 'buttervolume_replication_received_bytes_total', { peer: '127.0.0.1', volume: 'pv' }) ?? 0;
  t.ok(received > 1 << 20, `received ${received} bytes of the 1 MiB volume's stream`);
  t.equal(value(m, 'buttervolume_replication_transfers_total', { peer: '127.0.0.1', volume: 'pv', direction: 'received' }), 1);
  t.equal(value(m, 'buttervolume_replication_sent_bytes_total', { peer: '127.0.0.1', volume: 'vol' }), null, 'nothing sent yet');
  cli(['receive', `127.0.0.1:${sport}`, 'vol']);
  m = await scrape(mport);
  const sent = value(m, 'buttervolume_replication_sent_bytes_total', { peer: '127.0.0.1', volume: 'vol' }) ?? 0;
  t.ok(sent > 256 * 1024, `sent ${sent} bytes of vol's newest snapshot (256 KiB of data) to the peer that pulled it`);
  const last = value(m, 'buttervolume_replication_last_success_timestamp_seconds', { peer: '127.0.0.1', volume: 'vol' }) ?? 0;
  t.ok(Math.abs(last - Date.now() / 1000) < 30, 'its last success: now');
  t.ok(snap.startsWith('vol@'));
  t.ok(value(m, 'buttervolume_process_resident_memory_bytes')! > 10e6, "the process's own metrics are there too, prefixed");
  t.notMatch(daemon.stderr(), /metrics: a scrape failed/);
});

t.test('METRICS_ADDRESS: not set, nothing listens; an invalid one is refused at start', async (t) => {
  const { mnt } = mountBtrfs(t);
  const port = await freePort();
  const env = daemonEnv(mnt, {});
  await startDaemonProcess(t, env);
  await t.rejects(
    new Promise((resolve, reject) => httpGet({ host: '127.0.0.1', port, path: '/metrics', timeout: 2000 }, resolve).on('error', reject)),
    { code: 'ECONNREFUSED' },
    'no metrics server by default',
  );
  const bad = mountBtrfs(t);
  const badEnv = daemonEnv(bad.mnt, { BUTTERVOLUME_METRICS_ADDRESS: '0.0.0.0' });
  const proc = await startDaemonProcess(t, badEnv, { ready: false });
  const exit = await proc.exited;
  t.not(exit.code, 0, 'refused');
  t.match(proc.stderr(), /METRICS_ADDRESS="0\.0\.0\.0".*must be address:port/);
});

t.test('metrics with quotas on: a volume\'s used and limit bytes follow what is written and resized', async (t) => {
  const { mnt } = mountBtrfs(t);
  const mport = await freePort();
  const env = daemonEnv(mnt, { BUTTERVOLUME_METRICS_ADDRESS: `127.0.0.1:${mport}`, BUTTERVOLUME_QUOTAS: 'simple' });
  await startDaemonProcess(t, env);
  const api = (path: string, body: unknown) => call(env.BUTTERVOLUME_SOCKET!, path, body);
  t.equal((await api('/VolumeDriver.Create', { Name: 'q', Opts: { size: '64M' } })).status, 200);
  let m = await scrape(mport);
  t.equal(value(m, 'buttervolume_volume_limit_bytes', { volume: 'q' }), 64 << 20, 'its limit');
  const empty = value(m, 'buttervolume_volume_used_bytes', { volume: 'q' }) ?? -1;
  t.ok(empty >= 0 && empty < 1 << 20, `nearly nothing used (${empty})`);
  writeFileSync(join(mnt, 'volumes', 'q', 'data'), Buffer.alloc(8 << 20, 5));
  m = await scrape(mport);
  const used = value(m, 'buttervolume_volume_used_bytes', { volume: 'q' }) ?? 0;
  t.ok(Math.abs(used - (8 << 20)) < 0.01 * (8 << 20) + (64 << 10), `8 MiB written: ${used} bytes used`);
  t.equal((await api('/VolumeDriver.Volume.Resize', { Name: 'q', Size: '128M' })).status, 200, 'resized');
  m = await scrape(mport);
  t.equal(value(m, 'buttervolume_volume_limit_bytes', { volume: 'q' }), 128 << 20, 'the new limit');
  t.equal((await api('/VolumeDriver.Create', { Name: 'free' })).status, 200);
  m = await scrape(mport);
  t.equal(value(m, 'buttervolume_volume_limit_bytes', { volume: 'free' }), null, 'no limit: no series');
});

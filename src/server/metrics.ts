// The Prometheus metrics of the daemon (METRICS_ADDRESS): what the layers
// report through util/telemetry.ts (plugin requests, replication transfers,
// scheduled jobs), counted here, and each volume's state read from the store
// at each scrape. prom-client encodes the exposition; it is loaded only when
// metrics are served. Every name starts with `buttervolume_`.
import { readdir } from 'node:fs/promises';

import { Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { Logger } from '../log.js';
import type { VolumeStore } from '../store/volume-store.js';
import { forEachLimited } from '../util/limiter.js';
import { listen, type TelemetryEvent } from '../util/telemetry.js';
import { parseSnapshotName } from '../store/names.js';

/** Most label sets of one metric: past it, new ones are not counted (the log says so once). */
const MAX_SERIES = 2000;
/** Volumes read at once at a scrape. */
const SCRAPE_CONCURRENCY = 4;

export interface Metrics {
  readonly registry: Registry;
  /** The exposition text (and its content type). */
  render(): Promise<{ contentType: string; text: string }>;
  /** Stops listening to the layers' reports. */
  stop(): void;
}

interface VolumeFacts {
  volume: string;
  snapshots: number;
  newestAgeSeconds: number | null;
  mounts: number;
  used: number | null;
  limit: number | null;
  rpo: number | null;
  rpoExceeded: boolean | null;
}

export function createMetrics(store: VolumeStore, logger: Logger, dtFormat: string): Metrics {
  const registry = new Registry();
  const prefix = 'buttervolume_';
  processMetrics(registry, prefix);

  const seen = new Map<string, Set<string>>();
  const warned = new Set<string>();
  /** Whether a new label set of `metric` may be made (bounded: a peer or a volume name is not chosen by us). */
  const admit = (metric: string, labels: readonly string[]): boolean => {
    const key = labels.join('\0');
    let set = seen.get(metric);
    if (!set) seen.set(metric, (set = new Set()));
    if (set.has(key)) return true;
    if (set.size >= MAX_SERIES) {
      if (!warned.has(metric)) logger.warning(`metrics: ${metric} has ${MAX_SERIES} label sets: new ones are not counted`);
      warned.add(metric);
      return false;
    }
    set.add(key);
    return true;
  };

  const requestSeconds = new Histogram({
    name: `${prefix}plugin_request_duration_seconds`,
    help: 'Time to answer a plugin API request (Docker protocol and extensions), per endpoint.',
    labelNames: ['endpoint'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const requestErrors = new Counter({ name: `${prefix}plugin_request_errors_total`, help: 'Plugin API requests answered with an error, per endpoint.', labelNames: ['endpoint'], registers: [registry] });
  const sentBytes = new Counter({ name: `${prefix}replication_sent_bytes_total`, help: 'Bytes of send streams sent to a peer, per peer and volume.', labelNames: ['peer', 'volume'], registers: [registry] });
  const receivedBytes = new Counter({
    name: `${prefix}replication_received_bytes_total`,
    help: 'Bytes received from a peer (send streams, and file contents of a sync), per peer and volume.',
    labelNames: ['peer', 'volume'],
    registers: [registry],
  });
  const transfers = new Counter({ name: `${prefix}replication_transfers_total`, help: 'Replication transfers that succeeded, per peer, volume and direction.', labelNames: ['peer', 'volume', 'direction'], registers: [registry] });
  const failures = new Counter({ name: `${prefix}replication_failures_total`, help: 'Replication transfers that failed, per peer, volume and direction.', labelNames: ['peer', 'volume', 'direction'], registers: [registry] });
  const lastSuccess = new Gauge({
    name: `${prefix}replication_last_success_timestamp_seconds`,
    help: 'When the last replication transfer with a peer succeeded (Unix time), per peer and volume.',
    labelNames: ['peer', 'volume'],
    registers: [registry],
  });
  const scheduledRuns = new Counter({ name: `${prefix}scheduled_runs_total`, help: 'Scheduled jobs run, per action and volume.', labelNames: ['action', 'volume'], registers: [registry] });
  const scheduledFailures = new Counter({ name: `${prefix}scheduled_failures_total`, help: 'Scheduled jobs that failed, per action and volume.', labelNames: ['action', 'volume'], registers: [registry] });

  const stopListening = listen((e: TelemetryEvent) => {
    switch (e.kind) {
      case 'request':
        if (!admit('request', [e.endpoint])) return;
        requestSeconds.observe({ endpoint: e.endpoint }, e.seconds);
        if (!e.ok) requestErrors.inc({ endpoint: e.endpoint });
        else requestErrors.inc({ endpoint: e.endpoint }, 0); // the series exists from the first request: a rate of 0, not no data
        return;
      case 'replication': {
        if (!admit('replication', [e.peer, e.volume, e.direction])) return;
        const pv = { peer: e.peer, volume: e.volume };
        if (e.ok) {
          (e.direction === 'sent' ? sentBytes : receivedBytes).inc(pv, e.bytes);
          transfers.inc({ ...pv, direction: e.direction });
          lastSuccess.set(pv, Date.now() / 1000);
        } else {
          failures.inc({ ...pv, direction: e.direction });
        }
        return;
      }
      case 'scheduled':
        if (!admit('scheduled', [e.action, e.volume])) return;
        scheduledRuns.inc({ action: e.action, volume: e.volume });
        if (!e.ok) scheduledFailures.inc({ action: e.action, volume: e.volume });
        else scheduledFailures.inc({ action: e.action, volume: e.volume }, 0);
        return;
    }
  });

  // Each volume read once per scrape, whichever gauge asks first (render() starts a new scrape).
  let scrape: Promise<VolumeFacts[]> | null = null;
  const volumeFacts = (): Promise<VolumeFacts[]> => (scrape ??= readVolumes(store, dtFormat, Date.now()));
  const perVolume = (name: string, help: string, value: (f: VolumeFacts) => number | null): void => {
    new Gauge({
      name: `${prefix}volume_${name}`,
      help,
      labelNames: ['volume'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const f of await volumeFacts()) {
          const v = value(f);
          if (v !== null) this.set({ volume: f.volume }, v);
        }
      },
    });
  };
  new Gauge({
    name: `${prefix}volumes`,
    help: 'Volumes on this host.',
    registers: [registry],
    async collect() {
      this.set((await volumeFacts()).length);
    },
  });
  perVolume('snapshots', 'Read-only snapshots of the volume.', (f) => f.snapshots);
  perVolume('newest_snapshot_age_seconds', 'Age of its newest snapshot, by the date in its name (absent: no snapshot).', (f) => f.newestAgeSeconds);
  perVolume('mounts', 'Containers that have the volume mounted.', (f) => f.mounts);
  perVolume('used_bytes', 'Bytes the volume uses (its qgroup referenced bytes; absent when quotas are off).', (f) => f.used);
  perVolume('limit_bytes', 'Its size limit (-o size=; absent: none, or quotas off).', (f) => f.limit);
  perVolume('rpo_seconds', 'Its recovery point objective (-o rpo=; absent: none).', (f) => f.rpo);
  perVolume('rpo_exceeded', '1 when its newest snapshot is older than its rpo, or it has none; 0 within it (absent: no rpo).', (f) => (f.rpoExceeded === null ? null : f.rpoExceeded ? 1 : 0));

  return {
    registry,
    async render() {
      scrape = null;
      try {
        return { contentType: registry.contentType, text: await registry.metrics() };
      } finally {
        scrape = null;
      }
    },
    stop: stopListening,
  };
}

/**
 * The daemon process itself. Not prom-client's default metrics: some of them
 * break Prometheus' naming rules (gauges named `_total`), and their event-loop
 * monitor would load perf_hooks into every daemon serving metrics.
 */
function processMetrics(registry: Registry, prefix: string): void {
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  new Gauge({
    name: `${prefix}process_resident_memory_bytes`,
    help: 'Resident memory of the daemon process.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: `${prefix}process_heap_used_bytes`,
    help: "JavaScript heap in use (V8's heapUsed).",
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  new Counter({
    name: `${prefix}process_cpu_seconds_total`,
    help: 'CPU time the daemon process used (user and system).',
    registers: [registry],
    collect() {
      const { user, system } = process.cpuUsage();
      this.reset();
      this.inc((user + system) / 1e6);
    },
  });
  new Gauge({ name: `${prefix}process_start_time_seconds`, help: 'When the daemon process started (Unix time).', registers: [registry] }).set(startSeconds);
  new Gauge({
    name: `${prefix}process_open_fds`,
    help: 'File descriptors the daemon process has open.',
    registers: [registry],
    async collect() {
      this.set((await readdir('/proc/self/fd').catch(() => [])).length);
    },
  });
}

/** What the gauges show of every volume, read now (a volume removed meanwhile is left out). */
async function readVolumes(store: VolumeStore, dtFormat: string, now: number): Promise<VolumeFacts[]> {
  const volumes = await store.list();
  const facts: VolumeFacts[] = [];
  await forEachLimited(volumes, SCRAPE_CONCURRENCY, async ({ name }) => {
    try {
      const [details, fresh] = await Promise.all([store.get(name), store.freshness(name, now)]);
      const status = details.status as typeof details.status & { used?: number | null; size?: number | null };
      const date = details.status.lastSnapshot ? parseSnapshotName(details.status.lastSnapshot, dtFormat)?.date : null;
      facts.push({
        volume: name,
        snapshots: status.snapshots,
        newestAgeSeconds: date ? Math.max(0, (now - date.getTime()) / 1000) : null,
        mounts: status.mounts,
        used: typeof status.used === 'number' ? status.used : null,
        limit: typeof status.size === 'number' ? status.size : null,
        rpo: fresh?.rpo ?? null,
        rpoExceeded: fresh ? fresh.exceeded : null,
      });
    } catch {
      // removed while we looked
    }
  });
  return facts.sort((a, b) => (a.volume < b.volume ? -1 : 1));
}

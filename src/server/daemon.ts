// The plugin daemon (`buttervolume run`): checks its paths, refuses to take
// over a live socket, opens the store (cleaning what a crash left behind),
// serves the plugin API on SOCKET, and shuts down cleanly: stop accepting,
// finish in-flight requests, remove its socket. Signal handling belongs to
// the caller, which calls close() (or aborts `signal`).
import { rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';

import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { LocalCluster } from '../replication/cluster-local.js';
import { parseAction, ScheduleFile } from '../scheduler/schedule-file.js';
import { openStore } from '../store/open.js';
import type { VolumeStore } from '../store/volume-store.js';
import type { Replicator } from '../replication/replicator.js';
import type { SshServer } from '../replication/server.js';
import { createApp } from './app.js';
import { DaemonError } from './errors.js';
import { WorkGate } from './gate.js';
import type { MetricsServer } from './metrics-server.js';
import { listenUnix, prepareSocket } from './socket.js';
import { errCode } from '../util/err-code.js';

/** Something started with the daemon (the scheduler) and stopped before it ends. */
export interface Stoppable {
  stop(): Promise<void>;
}

/** Options of {@link runDaemon}. */
export interface DaemonOptions {
  logger: Logger;
  /** Aborting it closes the daemon, like close(). */
  signal?: AbortSignal;
  /** Called once listening; what it returns is stopped at close (the scheduler hooks in here). */
  onStarted?: (store: VolumeStore, replicator: Replicator) => Stoppable | void | Promise<Stoppable | void>;
  /** How long close() lets in-flight requests finish before cutting connections (ms, default 60 s). */
  drainTimeout?: number;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
}

/** A running daemon. */
export interface Daemon {
  /** Resolves once closed: not listening, in-flight requests done, socket removed. */
  closed: Promise<void>;
  /** The socket path it listens on. */
  address: string;
  /** The store it serves. */
  store: VolumeStore;
  /** Stops accepting, lets in-flight requests finish, stops `onStarted`'s hook, removes the socket. Idempotent. */
  close(): Promise<void>;
}

/** The hosts of the `replicate:<host>` lines of `volume` in the schedule: the original's way of naming where a volume follows. */
async function replicateHosts(schedule: ScheduleFile, volume: string): Promise<string[]> {
  const lines = await schedule.readLines().catch(() => []);
  const hosts: string[] = [];
  for (const line of lines) {
    if (line.kind !== 'entry' || line.entry.name !== volume) continue;
    const action = (() => {
      try {
        return parseAction(line.entry.action);
      } catch {
        return null;
      }
    })();
    if (action?.kind === 'replicate') hosts.push(action.host);
  }
  return hosts;
}

/** What the store's refusal to open means for the daemon, in the operator's words (naming the variable). */
function daemonErrorOf(err: unknown): unknown {
  const code = errCode(err);
  if (code === 'ERR_STORE_IN_USE') return new DaemonError('ERR_ALREADY_RUNNING', (err as Error).message, { cause: err });
  const { variable, path, cause } = err as { variable?: string; path?: string; cause?: unknown };
  if (code === 'ERR_NOT_BTRFS') return new DaemonError(code, `${variable} ${path} is not on a btrfs filesystem: buttervolume keeps each volume as a btrfs subvolume`, { cause: err });
  if (code === 'ERR_STORE_PATH') return new DaemonError(code, `cannot create ${variable} ${path}: ${(cause as Error).message}`, { cause: err });
  return err;
}

/**
 * QUOTAS (docs/quotas.md): the kind asked is turned on for the volumes'
 * filesystem when none is, and said; the other kind on, or no simple quotas
 * in this kernel, stops the start (the error names the setting).
 */
async function startQuotas(store: VolumeStore, config: Config, logger: Logger): Promise<void> {
  const q = await store.quotas.prepare();
  if (q.setting === 'off') return;
  const kind = q.setting === 'simple' ? 'simple quotas' : 'full qgroups';
  if (q.enabled) logger.info(`Quotas: turned btrfs ${kind} on for the filesystem of ${config.volumesPath} (QUOTAS=${q.setting})`);
  else logger.info(`Quotas: btrfs ${kind} are on for ${config.volumesPath} (QUOTAS=${q.setting})`);
  if (q.status?.inconsistent) logger.warning('Quotas: the qgroup numbers are inconsistent until the rescan the kernel runs ends (btrfs quota rescan -s shows it); Used may be wrong meanwhile');
}

/**
 * The embedded SSH server for replication (none with SSH_PORT 0). Its keys
 * are made at the first start. A port that cannot be had is logged at ERROR
 * and the daemon serves Docker anyway: volumes matter more than replication.
 */
async function startSsh(config: Config, store: VolumeStore, logger: Logger, cluster: LocalCluster): Promise<SshServer | undefined> {
  if (config.sshPort === 0) {
    logger.info('No SSH server (SSH_PORT is 0): this host does not accept replication');
    return undefined;
  }
  const [{ startSshServer }, { ReplicationService }] = await Promise.all([
    import('../replication/server.js'),
    import('../replication/service.js'),
  ]);
  try {
    // The host and client keys are made now (see ensureKeyFiles), so `buttervolume ssh-key` has one to show.
    const service = new ReplicationService(store, config, logger, {}, cluster);
    const server = await startSshServer({ port: config.sshPort, sshPath: config.sshPath, service, logger });
    logger.info(`Replication: SSH server on port ${server.port} (keys in ${config.sshPath})`);
    return server;
  } catch (err) {
    logger.error(`Replication: no SSH server on port ${config.sshPort}: ${(err as Error).message}; this host does not accept replication until restarted`);
    return undefined;
  }
}

/**
 * Starts the plugin daemon on `config.socketPath` (mode 0660).
 * @throws DaemonError `ERR_NOT_BTRFS`, `ERR_STORE_PATH`, `ERR_ALREADY_RUNNING`, `ERR_SOCKET_PATH`
 *   (one-line messages meant for the operator).
 */
/**
 * The metrics on METRICS_ADDRESS, when it is set (prom-client is loaded only
 * then). An address that cannot be had is logged at ERROR: Docker's volumes
 * are served all the same.
 */
async function startMetrics(config: Config, store: VolumeStore, logger: Logger): Promise<MetricsServer | undefined> {
  if (!config.metricsAddress) return undefined;
  try {
    const { startMetricsServer } = await import('./metrics-server.js');
    return await startMetricsServer(config.metricsAddress, store, logger, config.dtFormat);
  } catch (err) {
    logger.error(`metrics: cannot serve on METRICS_ADDRESS ${config.metricsAddress.host}:${config.metricsAddress.port}: ${(err as Error).message}`);
    return undefined;
  }
}

export async function runDaemon(config: Config, options: DaemonOptions): Promise<Daemon> {
  const { logger } = options;
  const address = config.socketPath;
  for (const warning of config.warnings) logger.warning(warning);
  // First the socket: a live daemon must not see its work in progress "recovered".
  await prepareSocket(address, logger);
  let store: VolumeStore;
  try {
    store = await openStore(config, { owner: true, logger });
  } catch (err) {
    throw daemonErrorOf(err);
  }
  // Set once close() is called: answers then ask clients to close their connection.
  let stopping: Promise<void> | undefined;
  const [{ SshReplicator }, { LocalCluster }, { ClusterCoordinator }] = await Promise.all([
    import('../replication/replicator.js'),
    import('../replication/cluster-local.js'),
    import('../replication/cluster.js'),
  ]);
  const replicator = new SshReplicator({ config, store, logger });
  const schedule = new ScheduleFile(config.schedulePath);
  const local = new LocalCluster(store, config.nodeName);
  const cluster = new ClusterCoordinator({ store, config, logger, replicator, local, scheduledHosts: (volume) => replicateHosts(schedule, volume) });
  const app = createApp({ store, schedule, logger, gate: new WorkGate(), replicator, cluster }, {
    closing: () => stopping !== undefined,
    ...(options.bodyLimit ? { bodyLimit: options.bodyLimit } : {}),
  });
  // Koa's callback handles its own errors (the returned promise never rejects).
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  const server = createServer(app.callback());
  server.on('error', (err) => logger.error(`server error: ${err.message}`));
  let ssh: SshServer | undefined;
  let metrics: MetricsServer | undefined;
  try {
    await startQuotas(store, config, logger);
    const recovered = await store.recover();
    if (recovered.length > 0) logger.warning(`Removed what interrupted operations left behind: ${recovered.join(', ')}`);
    // Before the socket: once the daemon answers, its keys exist and peers can reach it.
    ssh = await startSsh(config, store, logger, local);
    metrics = await startMetrics(config, store, logger);
    cluster.start();
    await listenUnix(server, address);
  } catch (err) {
    await Promise.all([ssh?.close(), metrics?.close()]);
    store.close();
    throw err;
  }
  const socketInode = (await stat(address)).ino;
  logger.info(`Listening to requests on ${address}...`);

  const stopServer = (): Promise<void> =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      // A request that never ends must not keep the daemon up forever.
      setTimeout(() => server.closeAllConnections(), options.drainTimeout ?? 60_000).unref();
    });

  let hook: Stoppable | void = undefined;
  try {
    hook = await options.onStarted?.(store, replicator);
  } catch (err) {
    await Promise.all([stopServer(), ssh?.close(), metrics?.close()]);
    store.close();
    throw err;
  }

  const shutdown = async (): Promise<void> => {
    logger.info('Stopping: finishing the requests in progress...');
    cluster.stop();
    const stopHook = Promise.resolve(hook?.stop()).catch((err: Error) => logger.error(`stopping the scheduler failed: ${err.message}`));
    await Promise.all([stopServer(), stopHook, ssh?.close(), metrics?.close()]);
    // libuv unlinks the socket as the server closes; make sure, without
    // removing a socket that another daemon may have created since.
    const now = await stat(address).catch(() => undefined);
    if (now?.ino === socketInode) await rm(address, { force: true });
    store.close();
    logger.info('Stopped');
  };
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  const close = (): Promise<void> => (stopping ??= shutdown().then(markClosed));
  if (options.signal?.aborted) await close();
  else {
    const onAbort = () => void close().catch((err: Error) => logger.error(`closing failed: ${err.message}`));
    options.signal?.addEventListener('abort', onAbort, { once: true });
  }

  return { closed, address, store, close };
}

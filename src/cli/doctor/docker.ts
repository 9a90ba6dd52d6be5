// The doctor's look at Docker, through its API on its unix socket (no docker
// CLI: nothing is spawned), read-only: /info lists the volume drivers Docker
// has loaded (a legacy plugin once used: until then Swarm places no task
// needing it on this node), /plugins the managed plugins, and /volumes
// filtered on the local driver (asked of no plugin) shows a local volume
// holding the name of one of ours: what dockerd makes when it starts before
// the plugin and a container then asks for the volume.
import { request } from 'node:http';
import { basename, dirname } from 'node:path';

import type { Config } from '../../config.js';
import { fail, ok, warn, why, type Finding } from './report.js';

const TIMEOUT_MS = 5000;
const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
const LEGACY_PLUGIN_DIR = '/run/docker/plugins';

/** GET `path` of the Docker API on `socketPath`: the parsed JSON, or an error saying why not. */
export function dockerGet(socketPath: string, path: string, timeoutMs = TIMEOUT_MS): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: timeoutMs, headers: { Host: 'docker' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        if (res.statusCode !== 200) return reject(new Error(`GET ${path}: HTTP ${res.statusCode}: ${text.trim().slice(0, 200)}`));
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new Error(`GET ${path}: an answer that is not JSON`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Where the Docker API is: DOCKER_HOST (unix://) or the default socket; null for a DOCKER_HOST the doctor does not speak. */
export function dockerSocket(env: NodeJS.ProcessEnv = process.env): string | null {
  const host = env.DOCKER_HOST?.trim();
  if (!host) return DEFAULT_DOCKER_SOCKET;
  return host.startsWith('unix://') ? host.slice('unix://'.length) : null;
}

/** The driver name Docker gives a legacy plugin listening on `socket`: its file name without `.sock`. */
export const legacyDriverName = (socket: string): string => basename(socket).replace(/\.sock$/, '');

interface ManagedPlugin {
  Id?: string;
  Name?: string;
  Enabled?: boolean;
  Config?: { Interface?: { Socket?: string } };
}

/** What the doctor learnt of Docker, for the socket check. */
export interface DockerFacts {
  /** The socket of the managed plugin DRIVERNAME when it is enabled. */
  managedSocket: string | null;
}

/**
 * Docker knows the driver: the legacy plugin of SOCKET is in /info's volume
 * drivers, or the managed plugin DRIVERNAME is enabled; and no local volume
 * holds the name of one of `ours` (null: the store could not be read).
 */
export async function dockerChecks(config: Config, ours: readonly string[] | null): Promise<{ findings: Finding[]; facts: DockerFacts }> {
  const facts: DockerFacts = { managedSocket: null };
  const socket = dockerSocket();
  if (socket === null) return { findings: [warn('docker', `not checked: DOCKER_HOST=${process.env.DOCKER_HOST} is not a unix socket`, 'run buttervolume doctor on the Docker host, with DOCKER_HOST unset or unix://')], facts };
  let info: { Plugins?: { Volume?: unknown } };
  let plugins: ManagedPlugin[];
  try {
    [info, plugins] = (await Promise.all([dockerGet(socket, '/info'), dockerGet(socket, '/plugins')])) as [typeof info, ManagedPlugin[]];
  } catch (err) {
    return { findings: [warn('docker', `no Docker engine answers on ${socket}: ${why(err)}`, 'start Docker (or set DOCKER_HOST=unix://<its socket>); with Podman only, declare the plugin in containers.conf (docs/docker-quirks.md)')], facts };
  }
  const drivers = Array.isArray(info.Plugins?.Volume) ? (info.Plugins.Volume as unknown[]).filter((d): d is string => typeof d === 'string') : [];
  const managed = (Array.isArray(plugins) ? plugins : []).find((p) => p.Name === config.driverName || p.Name === `${config.driverName}:latest`);
  const findings: Finding[] = [];
  const legacy = legacyDriverName(config.socketPath);
  if (managed?.Enabled) {
    facts.managedSocket = `${config.runPath}/plugins/${managed.Id}/${managed.Config?.Interface?.Socket ?? 'btrfs.sock'}`;
    findings.push(ok('docker', `Docker (${socket}) has the managed plugin ${managed.Name} enabled`));
  } else if (drivers.includes(legacy)) {
    findings.push(ok('docker', `Docker (${socket}) knows the volume driver ${legacy} (the legacy plugin on ${config.socketPath})`));
  } else {
    const where =
      dirname(config.socketPath) === LEGACY_PLUGIN_DIR
        ? ''
        : `; and SOCKET ${config.socketPath} is not in ${LEGACY_PLUGIN_DIR}, where Docker looks for legacy plugins (or a ${legacy}.spec file in /etc/docker/plugins naming it)`;
    findings.push(
      managed
        ? fail('docker', `the managed plugin ${managed.Name} is disabled`, `docker plugin enable ${managed.Name}`)
        : warn(
            'docker',
            `Docker (${socket}) has not loaded the volume driver ${legacy} (drivers: ${drivers.join(', ') || 'none'}): it does at its first use, and until then Swarm places no task needing it on this node${where}`,
            `docker volume ls (loads every legacy plugin of ${LEGACY_PLUGIN_DIR})`,
          ),
    );
  }
  if (ours !== null) findings.push(await shadowCheck(socket, ours));
  return { findings, facts };
}

/** Local volumes named as ours: containers asking for the name get Docker's empty local volume. */
async function shadowCheck(socket: string, ours: readonly string[]): Promise<Finding> {
  let locals: string[];
  try {
    const answer = (await dockerGet(socket, `/volumes?filters=${encodeURIComponent(JSON.stringify({ driver: ['local'] }))}`)) as { Volumes?: Array<{ Name?: unknown }> | null };
    locals = (answer.Volumes ?? []).map((v) => v.Name).filter((n): n is string => typeof n === 'string');
  } catch (err) {
    return warn('docker-volumes', `Docker's local volumes cannot be listed: ${why(err)}`, 'run buttervolume doctor as root');
  }
  const mine = new Set(ours);
  const shadowed = locals.filter((n) => mine.has(n)).sort();
  if (shadowed.length === 0) return ok('docker-volumes', `no local volume of Docker holds the name of one of the ${ours.length} volume${ours.length === 1 ? '' : 's'} here`);
  return fail(
    'docker-volumes',
    `Docker has local volumes named as volumes here: ${shadowed.join(', ')} (made when a container asked for them while dockerd could not reach the plugin, e.g. dockerd started first): containers using them write there, not into the btrfs volume`,
    `stop those containers, save what they wrote if needed (docker volume inspect shows where), then docker volume rm ${shadowed.join(' ')}: Docker then finds ours again; and start buttervolume before docker.service`,
  );
}

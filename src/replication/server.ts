// The embedded SSH server of `buttervolume run` (ssh2 Server) on SSH_PORT:
// public-key authentication only, against SSH_PATH/authorized_keys (read at
// each connection: a key added takes effect without a restart; its from=
// checked here, its other restrictions by the service); modern algorithms
// only (algorithms.ts); no shell, no command, no pty, no forwarding: a
// session may only open the "buttervolume" subsystem, whose requests the
// ReplicationService answers. What a connection may hold is bounded: few
// sessions, and closed once it has had no request in flight for
// REPLICATION_IDLE_TIMEOUT.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';

import type ssh2 from 'ssh2';

import type { Logger } from '../log.js';
import { printable } from '../util/untrusted-text.js';
import { serverAlgorithms } from './algorithms.js';
import { authorizedKeys, grantAllowsAddress, plainAddress } from './authorized-keys.js';
import { ensureKeyFiles, hostKey } from './keys.js';
import { SUBSYSTEM } from './protocol.js';
import { loadSsh2 } from './ssh2-lazy.js';
import { connectionKey, StrangerGate } from './stranger-gate.js';
import type { ReplicationService, ServiceChannel } from './service.js';

export interface SshServerOptions {
  port: number;
  sshPath: string;
  service: ReplicationService;
  logger: Logger;
  /** Address to listen on (default: every address, IPv6 and IPv4). */
  host?: string;
  /** A connection not authenticated within this is closed (default 30 s, OpenSSH's LoginGraceTime is 120 s). */
  loginGraceMs?: number;
  /** Connections not yet authenticated beyond this are closed at once (default 32, OpenSSH's MaxStartups is 10). */
  maxUnauthenticated?: number;
  /** The same per source address (IPv6: per /64); default 4, so one address cannot lock the others out. */
  maxUnauthenticatedPerAddress?: number;
}

/** Sessions (channels) one connection may have open at once. */
export const MAX_SESSIONS_PER_CONNECTION = 16;

/** Failed authentication attempts before a connection is closed (OpenSSH's MaxAuthTries). */
const MAX_AUTH_TRIES = 6;

/** A listening SSH server. */
export interface SshServer {
  port: number;
  close(): Promise<void>;
}

function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Starts the server.
 * @throws the listen error (EADDRINUSE...) or a key error, for the daemon to report.
 */
export async function startSshServer(options: SshServerOptions): Promise<SshServer> {
  const { logger, sshPath, loginGraceMs = 30_000, maxUnauthenticated = 32, maxUnauthenticatedPerAddress = 4 } = options;
  const gate = new StrangerGate({ loginGraceMs, maxWaiting: maxUnauthenticated, maxWaitingPerAddress: maxUnauthenticatedPerAddress, logger });
  await ensureKeyFiles(sshPath);
  // ssh2 (~14 MB of RSS) is loaded and its Server made when the first peer
  // connects, not at start: most of a plugin's life no peer is connected.
  let ssh: Promise<ssh2.Server> | undefined;
  const sshServer = () => (ssh ??= makeSshServer(options, gate));
  // ssh2 does not listen itself: our TCP server admits each connection through the gate first.
  // noDelay: SSH writes whole packets; with Nagle on, a request's small
  // packets waited for the peer's delayed ACK (40 ms at each of sync's
  // request/answer turns, and during the handshake).
  const server = createServer({ noDelay: true }, (socket) => {
    if (!gate.admit(socket)) return;
    sshServer().then(
      (s) => {
        if (!socket.destroyed) s.injectSocket(socket);
      },
      (err: Error) => {
        logger.error(`ssh server: ${err.message}`);
        ssh = undefined; // tried again at the next connection
        socket.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      // No IPv6 on this host (or in this network namespace): IPv4 only.
      if (options.host === undefined && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL')) {
        server.once('error', reject);
        server.listen(options.port, '0.0.0.0', () => resolve());
        return;
      }
      reject(err);
    };
    server.once('error', onError);
    server.listen(options.port, options.host ?? '::', () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err: Error) => logger.error(`ssh server: ${err.message}`));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Connections in flight end with the process; do not wait for them.
        setTimeout(resolve, 2000).unref();
      }),
  };
}

/** ssh2's Server, loaded now, speaking only the plugin's own requests. */
async function makeSshServer(options: SshServerOptions, gate: StrangerGate): Promise<ssh2.Server> {
  const { logger, service, sshPath } = options;
  const { Server } = loadSsh2();
  // Keepalives find a peer whose link died (no FIN ever comes) within ~20 s,
  // so its half-received snapshot is deleted instead of waiting forever.
  const config = { hostKeys: [await hostKey(sshPath)], ident: 'buttervolume', keepaliveInterval: 5000, keepaliveCountMax: 3, algorithms: serverAlgorithms() };
  return new Server(config as ConstructorParameters<typeof Server>[0], (client, info) => {
    const who = `${info.ip}:${info.port}`;
    let keys: Awaited<ReturnType<typeof authorizedKeys>>['keys'] | undefined;
    let accepted: (typeof keys & object)[number] | undefined;
    let failures = 0;
    const refuse = (ctx: { reject(methods: ssh2.AuthenticationType[]): void }) => {
      failures += 1;
      if (failures >= MAX_AUTH_TRIES) {
        logger.warning(`ssh ${who}: ${failures} failed authentications: closed`);
        client.end();
        return;
      }
      ctx.reject(['publickey']);
    };
    const authenticate = async (ctx: ssh2.AuthContext): Promise<void> => {
      // "none" is how a client asks which methods exist: not a failure.
      if (ctx.method !== 'publickey') return ctx.method === 'none' ? ctx.reject(['publickey']) : refuse(ctx);
      if (!keys) {
        const read = await authorizedKeys(sshPath).catch((err: Error) => {
          logger.error(`ssh: cannot read ${sshPath}/authorized_keys: ${err.message}`);
          return { keys: [], problems: [] };
        });
        for (const p of read.problems) logger.warning(`ssh: ${p}`);
        keys = read.keys;
      }
      const match = keys.find((k) => k.key.type === ctx.key.algo && sameKey(k.key.getPublicSSH(), ctx.key.data));
      if (!match) {
        logger.warning(`ssh ${who}: refused a ${ctx.key.algo} key of user ${printable(ctx.username, 64)} that is not in ${sshPath}/authorized_keys`);
        return refuse(ctx);
      }
      // As OpenSSH: a key used from an address its from= does not allow is no key at all.
      if (!grantAllowsAddress(match.grant, info.ip)) {
        logger.warning(`ssh ${who}: refused the key of ${sshPath}/authorized_keys line ${match.line}: its from="${match.grant.from!.text}" does not allow ${plainAddress(info.ip)}`);
        return refuse(ctx);
      }
      // Without a signature the client only asks whether the key would do.
      if (ctx.signature && match.key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return refuse(ctx);
      if (ctx.signature) accepted = match;
      ctx.accept();
    };
    // ssh2 ignores what the handler returns: a failure here is the connection's end, never an unhandled rejection.
    client.on('authentication', (ctx) => {
      authenticate(ctx).catch((err: Error) => {
        logger.error(`ssh ${who}: authentication failed: ${err.message}`);
        client.end();
      });
    });
    client.on('ready', () => {
      gate.authenticated(connectionKey(info.ip, info.port));
      const key = accepted!;
      logger.debug(`ssh ${who}: authenticated (${sshPath}/authorized_keys line ${key.line})`);
      const peer = { who, address: plainAddress(info.ip), connection: client, key: key.key.getPublicSSH().toString('base64'), keyLine: key.line, grant: key.grant };
      // Closed once no request has been in flight for the idle time.
      let inFlight = 0;
      let idle: NodeJS.Timeout | undefined;
      const idleMs = service.idleMs;
      const armIdle = () => {
        idle = setTimeout(() => {
          logger.debug(`ssh ${who}: no request for ${idleMs / 1000} s: closed`);
          client.end();
        }, idleMs);
        idle.unref();
      };
      armIdle();
      let sessions = 0;
      client.on('session', (accept, reject) => {
        if (sessions >= MAX_SESSIONS_PER_CONNECTION) {
          logger.warning(`ssh ${who}: more than ${MAX_SESSIONS_PER_CONNECTION} sessions at once: refused`);
          return reject();
        }
        sessions += 1;
        const session = accept();
        session.once('close', () => (sessions -= 1));
        session.on('subsystem', (acceptSub, rejectSub, request) => {
          if (request.name !== SUBSYSTEM) return rejectSub();
          const channel = acceptSub() as unknown as ServiceChannel;
          inFlight += 1;
          clearTimeout(idle);
          void service.handle(channel, peer).finally(() => {
            inFlight -= 1;
            if (inFlight === 0) armIdle();
          });
        });
        // Nothing else of a session is offered.
        session.on('exec', (_accept, reject) => reject());
        session.on('shell', (_accept, reject) => reject());
        session.on('pty', (_accept, reject) => reject?.());
        session.on('env', (_accept, reject) => reject?.());
        session.on('sftp', (_accept, reject) => reject());
        session.on('x11', (_accept, reject) => reject?.());
        session.on('auth-agent', (_accept, reject) => reject?.());
      });
      client.on('tcpip', (_accept, reject) => reject());
      client.on('openssh.streamlocal', (_accept, reject) => reject());
      client.on('request', (_accept, reject) => reject?.());
      client.on('close', () => clearTimeout(idle));
    });
    client.on('error', (err) => logger.debug(`ssh ${who}: ${err.message}`));
  });
}

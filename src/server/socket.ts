// The plugin's unix socket. A socket file left by a crash makes dockerd hang
// in retries (the original's issue #47), so a stale one is removed at start;
// but a socket that still answers belongs to a live server, which is never
// taken over.
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';

import type { Logger } from '../log.js';
import { DaemonError } from './errors.js';
import { errCode } from '../util/err-code.js';

/** Mode of the socket: owner and group may talk to the plugin (as the original). */
export const SOCKET_MODE = 0o660;

const PROBE_TIMEOUT_MS = 1000;

/** Whether something accepts connections on the unix socket `path`. */
export function socketAnswers(path: string, timeout = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    // A server too busy to accept still holds the socket: count it as alive.
    const timer = setTimeout(() => finish(true), timeout);
    const finish = (alive: boolean, err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(alive);
    };
    socket.once('connect', () => finish(true));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') finish(false);
      else finish(false, err);
    });
  });
}

/**
 * Makes `path` ready to listen on: creates its directory, removes a stale
 * socket, and refuses a live one or a file that is not a socket.
 * @throws DaemonError `ERR_ALREADY_RUNNING`, `ERR_SOCKET_PATH`.
 */
export async function prepareSocket(path: string, logger: Logger): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new DaemonError('ERR_SOCKET_PATH', `cannot create the directory of SOCKET ${path}: ${(err as Error).message}`, { cause: err });
  }
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if (errCode(err) === 'ENOENT') return;
    throw new DaemonError('ERR_SOCKET_PATH', `cannot inspect SOCKET ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!isSocket) throw new DaemonError('ERR_SOCKET_PATH', `SOCKET ${path} exists and is not a socket: remove it or set another SOCKET`);
  let alive: boolean;
  try {
    alive = await socketAnswers(path);
  } catch (err) {
    throw new DaemonError('ERR_SOCKET_PATH', `cannot probe SOCKET ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (alive) {
    throw new DaemonError('ERR_ALREADY_RUNNING', `another server is already listening on ${path}: stop it first, or set another SOCKET`);
  }
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  logger.info(`Removed the stale socket ${path}`);
}

/**
 * Listens on `path` with mode {@link SOCKET_MODE}. The umask is narrowed
 * while binding (bind happens synchronously in listen()), so the socket is
 * never reachable with wider permissions, even for an instant.
 * @throws DaemonError `ERR_ALREADY_RUNNING` if another server bound it meanwhile.
 */
export async function listenUnix(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') {
        reject(new DaemonError('ERR_ALREADY_RUNNING', `another server is already listening on ${path}`, { cause: err }));
      } else {
        reject(new DaemonError('ERR_SOCKET_PATH', `cannot listen on SOCKET ${path}: ${err.message}`, { cause: err }));
      }
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    const previous = process.umask(0o777 & ~SOCKET_MODE);
    try {
      server.listen(path);
    } finally {
      process.umask(previous);
    }
  });
  await chmod(path, SOCKET_MODE);
}

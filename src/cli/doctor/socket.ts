// The doctor's check of the plugin socket: there, a socket, and answered by
// a buttervolume daemon. A socket file nobody answers (the daemon was
// killed) is the worst case for Docker: it retries on it at every use
// (docs/docker-quirks.md), so it is named as stale.
import { lstat } from 'node:fs/promises';
import { request } from 'node:http';

import { errCode } from '../../util/err-code.js';
import { fail, ok, warn, why, type Finding } from './report.js';

const TIMEOUT_MS = 5000;
const START = 'start the daemon: systemctl start buttervolume (installed by scripts/install.sh), or buttervolume run';

type Answer = { status: 'answered'; implements: unknown } | { status: 'refused' | 'timeout' } | { status: 'error'; error: Error };

/** POST /Plugin.Activate as dockerd does (empty body). */
function activate(socketPath: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/Plugin.Activate', method: 'POST', timeout: TIMEOUT_MS, headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': 0 } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', (error) => resolve({ status: 'error', error }));
      res.on('end', () => {
        try {
          resolve({ status: 'answered', implements: (JSON.parse(Buffer.concat(parts).toString('utf8')) as { Implements?: unknown }).Implements });
        } catch {
          resolve({ status: 'answered', implements: undefined });
        }
      });
    });
    req.on('timeout', () => {
      req.destroy();
      resolve({ status: 'timeout' });
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' ? { status: 'refused' } : { status: 'error', error }));
    req.end();
  });
}

/** The plugin socket `path` (SOCKET, or the managed plugin's). */
export async function socketCheck(path: string, variable: string): Promise<Finding> {
  try {
    if (!(await lstat(path)).isSocket()) return fail('socket', `${variable} ${path} exists and is not a socket: the daemon cannot listen there`, `remove it (or set ${variable} to another path), then ${START}`);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return fail('socket', `nothing at ${variable} ${path}: no daemon listens`, START);
    return warn('socket', `${path} cannot be looked at: ${why(err)}`, 'run buttervolume doctor as root');
  }
  const answer = await activate(path);
  switch (answer.status) {
    case 'answered':
      return Array.isArray(answer.implements) && answer.implements.includes('VolumeDriver')
        ? ok('socket', `the daemon answers on ${path}`)
        : fail('socket', `something answers on ${path}, but not a volume plugin (Plugin.Activate: ${JSON.stringify(answer.implements) ?? 'no Implements'})`, `stop what listens there, or set ${variable} to another path`);
    case 'refused':
      return fail(
        'socket',
        `${path} is stale: a socket file nobody answers (a daemon that was killed); Docker retries on it for 15 s at each use of a volume, and at its start for each volume`,
        `${START} (it replaces the stale socket), or rm ${path}`,
      );
    case 'timeout':
      return warn('socket', `${path} accepts connections but gave no answer within ${TIMEOUT_MS / 1000} s`, 'see the daemon log (journalctl -u buttervolume): it may be stuck');
    default:
      return fail('socket', `cannot talk to ${path}: ${answer.error.message}`, 'run buttervolume doctor as root');
  }
}

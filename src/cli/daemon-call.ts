// A command that only the running daemon can carry out (it holds the
// volume's mounts and coordinates its takeover: failover, replicas), asked
// over the plugin's socket (SOCKET) as Docker asks it.
import { request } from 'node:http';

import type { Config } from '../config.js';
import { CliError } from './errors.js';

/** POSTs `body` to `endpoint` on the daemon's socket; the answer's fields, or its Err as a CliError. */
export function callDaemon(config: Config, endpoint: string, body: Record<string, unknown>, timeoutMs = 120_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: config.socketPath, path: `/${endpoint}`, method: 'POST', timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        let answer: Record<string, unknown>;
        try {
          answer = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
        } catch {
          return reject(new CliError(`the daemon on ${config.socketPath} answered something that is not JSON (status ${res.statusCode})`));
        }
        if (typeof answer.Err === 'string' && answer.Err !== '') return reject(new CliError(answer.Err, { code: typeof answer.Code === 'string' ? answer.Code : 'ERR_CLI' }));
        resolve(answer);
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new CliError(`the daemon on ${config.socketPath} did not answer within ${timeoutMs / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(err instanceof CliError ? err : new CliError(`no daemon answers on ${config.socketPath} (${err.code ?? err.message}): this command needs "buttervolume run" (set SOCKET for another socket)`, { cause: err })),
    );
    req.end(`${JSON.stringify(body)}\n`);
  });
}

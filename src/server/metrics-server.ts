// Serves the metrics (metrics.ts) over HTTP on METRICS_ADDRESS: GET or HEAD
// /metrics, nothing else. Plain node:http: one read-only path needs no
// router. Bounded like everything facing the network: few connections,
// short timeouts, no request body read.
import { createServer, type Server } from 'node:http';

import type { Logger } from '../log.js';
import type { VolumeStore } from '../store/volume-store.js';
import { createMetrics, type Metrics } from './metrics.js';

const MAX_CONNECTIONS = 16;
const REQUEST_TIMEOUT_MS = 10_000;

export interface MetricsServer {
  readonly metrics: Metrics;
  /** The address and port it listens on (the port chosen when 0 was asked). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startMetricsServer(address: { host: string; port: number }, store: VolumeStore, logger: Logger, dtFormat: string): Promise<MetricsServer> {
  const metrics = createMetrics(store, logger, dtFormat);
  const server: Server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    metrics.render().then(
      ({ contentType, text }) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: Error) => {
        logger.error(`metrics: a scrape failed: ${err.message}`);
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`scrape failed: ${err.message}\n`);
      },
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger.error(`metrics: ${err.message}`));
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : address.port;
  logger.info(`metrics: serving http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${port}/metrics`);
  return {
    metrics,
    address: { host: address.host, port },
    close: () =>
      new Promise<void>((resolve) => {
        metrics.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

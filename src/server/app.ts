// The Koa application of the plugin: respond (errors, logs) -> fallback
// (404/405) -> the routes of every endpoint. Independent of any socket, so a
// test or another transport can mount it.
import { createRequire } from 'node:module';

import type { Router as RouterClass } from '@koa/router';
import type Koa from 'koa';

import { DEFAULT_BODY_LIMIT, readJsonBody } from './body.js';
import type { Endpoint, PluginContext } from './endpoint.js';
import { onlyFields } from './fields.js';
import { answerJson, fallback, respond } from './middleware.js';
import { clusterEndpoints } from './routes/cluster.js';
import { dockerEndpoints } from './routes/docker.js';
import { quotaEndpoints } from './routes/quota.js';
import { scheduleEndpoints } from './routes/schedule.js';
import { snapshotEndpoints } from './routes/snapshots.js';

// Loaded with require(): the CommonJS builds of koa and @koa/router cost the
// daemon 2-5 MB less RSS than their ESM entry points (51 vs 53-57 MB idle).
const require = createRequire(import.meta.url);
const { Router } = require('@koa/router') as { Router: typeof RouterClass };
const KoaApp = require('koa') as typeof Koa;

/** Every endpoint the plugin serves: Docker's protocol, then the original's extensions. */
export const endpoints: readonly Endpoint[] = [...dockerEndpoints, ...snapshotEndpoints, ...quotaEndpoints, ...scheduleEndpoints, ...clusterEndpoints];

/** Options of {@link createApp}. */
export interface AppOptions {
  /** Largest accepted request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** True once shutting down: answers then ask the client to close the connection. */
  closing?: () => boolean;
}

/** Builds the Koa app serving {@link endpoints} on `context`'s store and schedule. */
export function createApp(context: PluginContext, options: AppOptions = {}): Koa {
  const limit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  // Case-sensitive like the original (bottle) and Docker's Go client.
  const router = new Router({ sensitive: true });
  for (const endpoint of endpoints) {
    const route: Koa.Middleware = async (ctx) => {
      ctx.state.endpoint = endpoint.path; // the route, not the path asked: a bounded label for the metrics
      const body = await readJsonBody(ctx.req, limit);
      ctx.state.body = body;
      if (endpoint.fields) onlyFields(body, endpoint.fields);
      const params = (ctx as unknown as { params?: Record<string, string> }).params ?? {};
      const answer = await endpoint.handle({ body, params }, context);
      answerJson(ctx, { Err: '', ...answer });
    };
    for (const method of endpoint.methods) {
      if (method === 'GET') router.get(endpoint.path, route);
      else router.post(endpoint.path, route);
    }
  }
  const app = new KoaApp();
  app.silent = true; // every error is answered and logged by respond()
  app.use(respond({ logger: context.logger, ...(options.closing ? { closing: options.closing } : {}) }));
  app.use(fallback());
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

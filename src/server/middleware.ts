// The two middlewares around the routes: `respond` is the one place where
// errors become `{"Err": ...}` answers and where each request is logged;
// `fallback` turns "no route" into a 404 or 405 that names the endpoint.
import type { Middleware, ParameterizedContext } from 'koa';

import type { Logger } from '../log.js';
import { report } from '../util/telemetry.js';
import { errorAnswer, RequestError } from './errors.js';

const MAX_LOGGED_JSON = 400;

/**
 * Answers `value` as JSON, serialised here: Koa's body setter, given an
 * object, first asks whether it is a web ReadableStream, a Blob or a fetch
 * Response, and the first look at the global `Response` loads Node's fetch
 * (undici): ~5 MB of the daemon's RSS for nothing. A string is answered as
 * it is; the bytes on the wire are the same as Koa's own JSON.
 */
export function answerJson(ctx: ParameterizedContext, value: unknown): void {
  ctx.state.answer = value;
  ctx.type = 'json';
  ctx.body = JSON.stringify(value);
}

// Never throws: a body nested too deeply for JSON.stringify (RangeError) must
// not turn the answer into Koa's plain-text 500.
function excerpt(value: unknown): string {
  let text: string;
  try {
    text = value === undefined ? '-' : JSON.stringify(value);
  } catch {
    return '(a body too deeply nested to show)';
  }
  return text.length > MAX_LOGGED_JSON ? `${text.slice(0, MAX_LOGGED_JSON)}…(${text.length} chars)` : text;
}

/** Options of {@link respond}. */
export interface RespondOptions {
  logger: Logger;
  /** True once the daemon is shutting down: answers then close their connection. */
  closing?: () => boolean;
}

/**
 * Maps every error thrown below to its status and `{"Err": msg}`, and logs one
 * line per request: DEBUG on success, ERROR on failure (with the stack for an
 * unexpected error). Exception: Get of a missing volume is how dockerd asks
 * "does it exist?" before each Create, so it stays at DEBUG.
 */
export function respond({ logger, closing }: RespondOptions): Middleware {
  return async (ctx, next) => {
    // Not performance.now(): the global `performance` loads perf_hooks (~0.5 MB of RSS) at the first request.
    const start = process.hrtime.bigint();
    let failure: ReturnType<typeof errorAnswer> | undefined;
    let stack: string | undefined;
    try {
      await next();
    } catch (err) {
      failure = errorAnswer(err);
      if (!failure.expected) stack = (err as Error)?.stack;
      ctx.status = failure.status;
      answerJson(ctx, { Err: failure.message });
    }
    // Shutting down, or a body too large to read to its end: close after answering.
    if (closing?.() || failure?.code === 'ERR_BODY_TOO_LARGE') ctx.set('Connection', 'close');
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    report({ kind: 'request', endpoint: typeof ctx.state.endpoint === 'string' ? ctx.state.endpoint : 'other', seconds, ok: failure === undefined });
    const probe = failure?.code === 'ERR_VOLUME_NOT_FOUND' && ctx.path === '/VolumeDriver.Get';
    const level = failure && !probe ? 'ERROR' : 'DEBUG';
    if (!logger.enabled(level)) return;
    const ms = (seconds * 1000).toFixed(1);
    const line = `${ctx.method} ${ctx.path} ${excerpt(ctx.state.body)} -> ${ctx.status} ${excerpt(ctx.state.answer)} (${ms} ms)`;
    if (level === 'DEBUG') logger.debug(line);
    else logger.error(stack ? `${line}\n${stack}` : line);
  };
}

/**
 * After the router (and its allowedMethods): a request no route answered is
 * an unknown endpoint (404), or a known one called with the wrong method (405).
 */
export function fallback(): Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.body !== undefined && ctx.body !== null) return;
    if (ctx.status === 405 || ctx.status === 501) {
      const allowed = ctx.response.get('Allow');
      throw new RequestError('ERR_METHOD_NOT_ALLOWED', `${ctx.method} ${ctx.path}: method not allowed, use ${allowed || 'another method'}`);
    }
    throw new RequestError('ERR_UNKNOWN_ENDPOINT', `unknown endpoint: ${ctx.method} ${ctx.path}`);
  };
}

// The JSON body of a plugin request. dockerd sends no Content-Type and an
// empty body for Plugin.Activate (Podman also for List), so the header is
// ignored and an empty body means {}. Anything else must be one JSON object.
import type { IncomingMessage } from 'node:http';

import { RequestError } from './errors.js';

/** A parsed request body: a plain JSON object. */
export type JsonObject = Record<string, unknown>;

/** Largest body accepted by default: plugin requests are a few hundred bytes. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

const decoder = new TextDecoder('utf-8', { fatal: true });

function invalid(message: string): RequestError {
  return new RequestError('ERR_INVALID_REQUEST', message);
}

function tooLarge(limit: number): RequestError {
  return new RequestError('ERR_BODY_TOO_LARGE', `request body too large: the limit is ${limit} bytes`);
}

/** Reads the raw bytes, refusing more than `limit` (from Content-Length when given, else while reading). */
function readBytes(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge(limit));
  // Events rather than `for await`: no iterator and promise per chunk on every request.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else finish(tooLarge(limit));
    };
    const onEnd = () => finish();
    const finish = (err?: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', finish);
      if (err) reject(err);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    req.on('data', onData).on('end', onEnd).on('error', finish);
  });
}

/**
 * Parses a request body: empty (or blank) is `{}`; otherwise UTF-8 JSON whose
 * top level is an object.
 * @throws RequestError `ERR_INVALID_REQUEST` saying what is wrong.
 */
export function parseJsonBody(bytes: Uint8Array): JsonObject {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw invalid('request body is not valid UTF-8');
  }
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid(`request body is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw invalid(`request body must be a JSON object, got ${kind}`);
  }
  return value as JsonObject;
}

/**
 * Reads and parses the body of `req` (see {@link parseJsonBody}).
 * @throws RequestError `ERR_BODY_TOO_LARGE` past `limit` bytes, `ERR_INVALID_REQUEST`.
 */
export async function readJsonBody(req: IncomingMessage, limit = DEFAULT_BODY_LIMIT): Promise<JsonObject> {
  return parseJsonBody(await readBytes(req, limit));
}

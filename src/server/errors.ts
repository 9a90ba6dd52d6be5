// The one outward mapping of errors for the plugin server: every failure
// becomes an HTTP status plus a one-line `Err`. Docker reads `Err` from any
// non-200 answer, and Podman ignores `Err` on a 200, so failures are never 200.
import { CodedError } from '../util/coded-error.js';
import { isExpectedError } from '../util/expected-error.js';
import { nameErrorClass } from '../util/error-name.js';
import { errCode } from '../util/err-code.js';

/** Codes of the server's own refusals (the request itself is wrong). */
export type RequestErrorCode =
  | 'ERR_INVALID_REQUEST'
  | 'ERR_BODY_TOO_LARGE'
  | 'ERR_UNKNOWN_ENDPOINT'
  | 'ERR_METHOD_NOT_ALLOWED';

const STATUS: Record<RequestErrorCode, number> = {
  ERR_INVALID_REQUEST: 500,
  ERR_BODY_TOO_LARGE: 413,
  ERR_UNKNOWN_ENDPOINT: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
};

/** A request the server refuses before reaching the store: bad body, bad field, unknown endpoint. */
export class RequestError extends CodedError<RequestErrorCode> {
  /** HTTP status of the answer. */
  readonly status: number;

  constructor(code: RequestErrorCode, message: string) {
    super(code, message);
    this.status = STATUS[code];
  }
}

nameErrorClass(RequestError, 'RequestError');

/** What the server answers for an error, and how it is logged. */
export interface ErrorAnswer {
  status: number;
  /** The `Err` text: one line. */
  message: string;
  /** The error code (`ERR_*`, or an errno name for a BtrfsError); undefined for an unexpected error. */
  code: string | undefined;
  /** False for an unexpected error (a bug or an unknown failure): logged with its stack. */
  expected: boolean;
}

const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ').trim();

/**
 * Maps any thrown value to the answer: the store's, the schedule's and the
 * server's refusals and btrfs failures keep their own message; an invalid
 * purge pattern reads `Invalid purge pattern ...` (the original's words,
 * followed by the error's `detail`); anything else is an internal error.
 * Errors are told apart by their code, never by their text.
 */
export function errorAnswer(err: unknown): ErrorAnswer {
  if (err instanceof RequestError) return { status: err.status, message: oneLine(err.message), code: err.code, expected: true };
  const code = errCode(err);
  if (code === 'ERR_INVALID_PURGE_PATTERN' && typeof (err as { detail?: unknown }).detail === 'string') {
    return { status: 500, message: oneLine(`Invalid purge pattern${(err as { detail: string }).detail}`), code, expected: true };
  }
  if (isExpectedError(err)) {
    return { status: 500, message: oneLine((err as Error).message), code: typeof code === 'string' ? code : undefined, expected: true };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, message: `internal error: ${oneLine(message)}`, code: typeof code === 'string' ? code : undefined, expected: false };
}

/** Codes of a daemon that cannot start. */
export type DaemonErrorCode = 'ERR_NOT_BTRFS' | 'ERR_ALREADY_RUNNING' | 'ERR_SOCKET_PATH' | 'ERR_STORE_PATH';

/** Why the daemon cannot start; `message` is one line for the operator. */
export class DaemonError extends CodedError<DaemonErrorCode> {}

nameErrorClass(DaemonError, 'DaemonError');

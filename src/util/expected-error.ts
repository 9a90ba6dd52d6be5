import { isCodedError } from './coded-error.js';

/**
 * The one rule, shared by the server and the CLI, for an error we expect and
 * word ourselves (answered or printed as its message, no stack): a refusal
 * of ours (a CodedError: `ERR_*`), or a system call that failed (a
 * BtrfsError, or a Node fs error: a string `code` and `syscall`), which is
 * the environment speaking, not a bug. Anything else is unexpected.
 */
export function isExpectedError(err: unknown): boolean {
  if (isCodedError(err)) return true;
  if (typeof err !== 'object' || err === null) return false;
  const { code, syscall } = err as { code?: unknown; syscall?: unknown };
  return typeof code === 'string' && typeof syscall === 'string';
}

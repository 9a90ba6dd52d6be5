// The CLI's one outward mapping of errors: whatever a command throws becomes
// one line `buttervolume: <command>: <what went wrong>` on stderr and an exit
// status (1 for a failure, 2 for a usage error, which also prints the usage
// line). Stack traces only with --debug: a user reads the sentence, a
// developer asks for the rest.
import { CodedError } from '../util/coded-error.js';
import { errCode } from '../util/err-code.js';
import { nameErrorClass } from '../util/error-name.js';
import { isExpectedError } from '../util/expected-error.js';

/**
 * An expected failure whose message is already the sentence to print: code
 * ERR_CLI, or the code of what it words (ERR_VOLUME_NOT_FOUND...).
 */
export class CliError extends CodedError {
  /** Exit status: 1. */
  readonly exitCode: number = 1;

  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'ERR_CLI', message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** A command line that does not say what to do (ERR_USAGE); exit status 2, with the usage line. */
export class UsageError extends CliError {
  override readonly exitCode: number = 2;
  /** The usage line of the command (or of the program) to print below the message. */
  readonly usage: string;

  constructor(message: string, usage: string) {
    super(message, { code: 'ERR_USAGE' });
    this.usage = usage;
  }
}

nameErrorClass(CliError, 'CliError');
nameErrorClass(UsageError, 'UsageError');

/** What a command was working on, to name it in a "not found" message. */
export interface Subject {
  volume?: string;
  snapshot?: string;
}

/**
 * Names the missing volume or snapshot in the store's "not found" errors
 * (`No such volume`, `No such snapshot` carry no name): use as
 * `.catch(about({ volume }))`. Other errors pass through unchanged.
 */
export function about(subject: Subject): (err: unknown) => never {
  return (err) => {
    const code = errCode(err);
    if (code === 'ERR_VOLUME_NOT_FOUND' && subject.volume !== undefined) {
      throw new CliError(`no such volume: ${subject.volume}`, { cause: err, code });
    }
    if (code === 'ERR_SNAPSHOT_NOT_FOUND' && subject.snapshot !== undefined) {
      throw new CliError(`no such snapshot: ${subject.snapshot}`, { cause: err, code });
    }
    throw err;
  };
}


/**
 * An error we expect and word ourselves: the CLI's own, or what the shared
 * rule says (util/expected-error.ts). Anything else is a bug, and the line
 * says how to see its stack.
 */
function isExpected(err: unknown): boolean {
  return err instanceof CliError || isExpectedError(err);
}

/** The one-line description of `err` (never a stack, never a newline). */
export function describeError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.trim().replace(/\s*\n\s*/g, ' ') || (err instanceof Error ? err.name : 'unknown error');
  return isExpected(err) ? line : `${line} (internal error; run with --debug for the stack trace)`;
}

/** Stack of `err` and of each `cause` below it, for --debug. */
function stackOf(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 8; depth++) {
    parts.push(e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e));
    e = e instanceof Error ? e.cause : undefined;
    if (e !== undefined) parts.push('caused by:');
  }
  return parts.join('\n');
}

/** Where {@link reportError} writes (stderr by default; tests pass their own). */
export type Write = (text: string) => void;

const stderr: Write = (text) => {
  process.stderr.write(text);
};

/**
 * Prints `err` the CLI's way and returns the exit status: the line
 * `buttervolume: <command>: <message>` (`buttervolume: <message>` before a
 * command is known), then the usage line for a {@link UsageError}, then with
 * `debug` the stack and causes.
 */
export function reportError(err: unknown, context: { command?: string | undefined; debug?: boolean; write?: Write } = {}): number {
  const write = context.write ?? stderr;
  const where = context.command ? `buttervolume: ${context.command}: ` : 'buttervolume: ';
  let text = `${where}${describeError(err)}\n`;
  if (err instanceof UsageError) text += `usage: ${err.usage}\n`;
  if (context.debug) text += `${stackOf(err)}\n`;
  write(text);
  return err instanceof CliError ? err.exitCode : 1;
}

/**
 * Last-resort handler for the bin (`main(argv).catch(handleError)`): main
 * reports its own errors, so this only sees a failure of the reporting
 * itself. Sets `process.exitCode` to 1 or 2.
 */
export function handleError(err: unknown): void {
  process.exitCode = reportError(err, { debug: process.argv.includes('--debug') });
}

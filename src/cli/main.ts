// The `buttervolume` command line. `main(argv)` parses with cac, loads only
// the command asked for, and ends every failure in one place
// (reportError), so each error is one line on stderr and an exit status.
// Importing this module has no effect; calling main() touches the process
// only to guard stdout and set the exit status.
import { readFileSync } from 'node:fs';

import { cac, type CAC } from 'cac';

import { createContext, type ParsedOptions } from './context.js';
import { reportError, UsageError } from './errors.js';
import { createOutput, handleStdoutErrors, writeStdout } from './output.js';
import { cacParam, COMMANDS, findCommand, PROGRAM_USAGE, usageOf, type CommandSpec } from './spec.js';

export { handleError } from './errors.js';

const GLOBAL_OPTION_NAMES = new Set(['--', 'debug', 'h', 'help', 'version']);

/** `buttervolume <package.json version>`. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

// Our global options take no value, so the first word not starting with "-"
// names the command; cac then only has that one to parse for (it runs its
// parser once per registered command).
function buildCli(argv: readonly string[]): CAC {
  const cli = cac('buttervolume');
  cli.option('--debug', 'print stack traces').option('-h, --help', 'help').option('--version', 'version');
  const named = findCommand(argv.slice(2).find((a) => !a.startsWith('-')) ?? '');
  for (const spec of named ? [named] : COMMANDS) {
    const command = cli.command([spec.name, ...spec.params.map(cacParam)].join(' '), spec.summary);
    for (const option of spec.options) command.option(option.flags, option.description);
    command.action(() => undefined); // dispatch is ours, after cac's checks
  }
  return cli;
}

// cac's own usage messages, reworded; the argument named as in the usage line.
function usageProblem(message: string, spec: CommandSpec, given: number): string {
  if (message.startsWith('missing required args')) return `missing argument ${spec.params[given] ?? ''}`.trimEnd();
  const unknown = /^Unknown option `(.+)`$/.exec(message);
  if (unknown) return `unknown option ${unknown[1]}`;
  const value = /^option `([^ `]+).*` value is missing$/.exec(message);
  if (value) return `option ${value[1]} needs a value`;
  const extra = /^Unused args: (.+)$/.exec(message);
  if (extra) return `unexpected argument${extra[1]!.includes(', ') ? 's' : ''} ${extra[1]!.replaceAll('`', '')}`;
  return message;
}

// Writing to a closed pipe (`buttervolume snapshots | head -1`) is not an
// error of the command. Anything escaping the command's promise (a bug, in
// a callback) is still one line, not Node's default trace, and exit 1.
function guardProcess(debug: boolean, command: () => string | undefined): void {
  handleStdoutErrors((err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    process.exitCode = reportError(err, { command: command(), debug });
  });
  const fatal = (err: unknown) => {
    reportError(err, { command: command(), debug });
    process.exit(1);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}

/**
 * Runs the command line `argv` (`process.argv` form: node, script, args...).
 * Resolves to the exit status, also set as `process.exitCode`: 0 when the
 * command did what it says, 1 when it failed, 2 for a usage error. Never
 * rejects for a command's failure: it is printed as one line on stderr.
 */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const debug = argv.includes('--debug');
  let command: string | undefined;
  let status: number;
  try {
    guardProcess(debug, () => command);
    status = await dispatch([...argv], (name) => (command = name));
  } catch (err) {
    status = reportError(err, { command, debug });
  }
  // A failure reported meanwhile (stdout broken) is not undone by success.
  status = Math.max(status, Number(process.exitCode ?? 0));
  process.exitCode = status;
  return status;
}

/**
 * The values of the options of `spec` that take one, as typed: mri reads
 * numeric-looking values as numbers (`""` as 0, `0501` as 501, `1e400` as
 * Infinity), which would lose a date like `--at 05012024` or misquote a bad
 * value in its error. Repeated, an array as mri gives.
 */
function valuesAsTyped(argv: readonly string[], spec: CommandSpec, parsed: ParsedOptions): Record<string, unknown> {
  const end = argv.indexOf('--');
  const words = end < 0 ? argv : argv.slice(0, end);
  const typed: Record<string, unknown> = {};
  for (const { flags } of spec.options) {
    const name = /^--([a-z-]+) </.exec(flags)?.[1];
    if (name === undefined) continue;
    const values: string[] = [];
    for (let i = 0; i < words.length; i++) {
      if (words[i] === `--${name}` && i + 1 < words.length) values.push(words[++i]!);
      else if (words[i]!.startsWith(`--${name}=`)) values.push(words[i]!.slice(name.length + 3));
    }
    const key = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const given = parsed[key];
    if (given === undefined || values.length !== (Array.isArray(given) ? given.length : 1)) continue;
    typed[key] = Array.isArray(given) ? values : values[0];
  }
  return typed;
}

async function dispatch(argv: string[], named: (command: string) => void): Promise<number> {
  const cli = buildCli(argv);
  cli.parse(argv, { run: false });
  const options: ParsedOptions = cli.options;
  const spec = cli.matchedCommand ? findCommand(cli.matchedCommand.name) : undefined;
  if (options['version']) {
    writeStdout(`buttervolume ${version()}\n`);
    return 0;
  }
  if (options['help']) {
    const { commandHelp, programHelp } = await import('./help.js');
    writeStdout(spec ? commandHelp(spec) : programHelp(version()));
    return 0;
  }
  if (!spec) {
    const [first] = cli.args;
    if (first !== undefined) throw new UsageError(`${String(first)}: unknown command`, PROGRAM_USAGE);
    const unknown = Object.keys(options).find((o) => !GLOBAL_OPTION_NAMES.has(o));
    if (unknown) throw new UsageError(`unknown option ${unknown.length > 1 ? '--' : '-'}${unknown}`, PROGRAM_USAGE);
    const { programHelp } = await import('./help.js');
    writeStdout(programHelp(version()));
    return 0;
  }
  named(spec.name);
  // Arguments after `--` are arguments too, counted like the others.
  cli.args = [...cli.args, ...((options['--'] as unknown[] | undefined) ?? []).map(String)];
  try {
    cli.runMatchedCommand();
  } catch (err) {
    if (!(err instanceof Error && err.name === 'CACError')) throw err;
    throw new UsageError(usageProblem(err.message, spec, cli.args.length), usageOf(spec));
  }
  // mri turns numeric-looking values into numbers; arguments are names.
  const args = cli.args.map(String);
  const typed = { ...options, ...valuesAsTyped(argv, spec, options) };
  const ctx = createContext({ command: spec.name, usage: usageOf(spec), options: typed, out: createOutput(options['json'] === true) });
  const module = await spec.load();
  await module.run(ctx, args);
  return 0;
}

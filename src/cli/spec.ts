// Every command of the CLI: its arguments, options, help text and examples,
// and how to load its code. Loading is lazy: `buttervolume snapshot v` never
// parses the server, the scheduler or another command.
import type { CommandContext } from './context.js';

/** A command's code: `run` gets the positional arguments as strings. */
export interface CommandModule {
  run(ctx: CommandContext, args: readonly string[]): Promise<void>;
}

/** An option of one command. */
export interface OptionSpec {
  /** As written on the command line and given to cac: `--json`, `--now <time>`. */
  readonly flags: string;
  readonly description: string;
}

/** One command. */
export interface CommandSpec {
  readonly name: string;
  /** Positional parameters as shown: `<volume>`, `[<target>]`, `[<host>...]`, `[list|pause]`. */
  readonly params: readonly string[];
  readonly options: readonly OptionSpec[];
  /** One line for the command list. */
  readonly summary: string;
  /** More lines for `buttervolume <command> --help`: output, exit status, differences. */
  readonly details: readonly string[];
  /** Command lines, without the leading `buttervolume`. */
  readonly examples: readonly string[];
  load(): Promise<CommandModule>;
}

const JSON_OPTION: OptionSpec = { flags: '--json', description: 'print one JSON document instead of text' };
const NOW_OPTION: OptionSpec = {
  flags: '--now <time>',
  description: 'act as if it were <time> (ISO 8601, e.g. 2024-01-10T12:00:00; local time without a zone)',
};

/** The commands, in help order. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'run',
    params: [],
    options: [],
    summary: 'run the plugin: the Docker volume API on its socket, and the scheduler',
    details: ['Runs until SIGTERM, SIGINT, SIGHUP or SIGQUIT, then closes cleanly and exits with status 0.'],
    examples: ['run'],
    load: () => import('./commands/run.js'),
  },
  {
    name: 'snapshot',
    params: ['<volume>'],
    options: [JSON_OPTION],
    summary: 'take a read-only snapshot of a volume; prints its name <volume>@<date>',
    details: [],
    examples: ['snapshot db'],
    load: () => import('./commands/snapshot.js'),
  },
  {
    name: 'snapshots',
    params: ['[<volume>]'],
    options: [JSON_OPTION],
    summary: 'list the snapshots of a volume (of every volume without one), oldest first',
    details: ['Send markers <volume>@<date>@<host> are listed too, as the original did.'],
    examples: ['snapshots db', 'snapshots --json'],
    load: () => import('./commands/snapshots.js'),
  },
  {
    name: 'schedule',
    params: ['<action>', '<timer>', '<volume>'],
    options: [],
    summary: 'add, change, pause, resume or delete a scheduled job',
    details: [
      '<action>: snapshot, replicate:<host>, purge:<pattern> or synchronize:<host>[,<host>...]',
      '<timer>: minutes between two runs; 0 or delete removes the job; pause or resume.',
      'A running daemon picks the change up at its next tick.',
    ],
    examples: ['schedule snapshot 60 db', 'schedule purge:4h:1d:2w:2y 1440 db', 'schedule snapshot pause db', 'schedule snapshot 0 db'],
    load: () => import('./commands/schedule.js'),
  },
  {
    name: 'scheduled',
    params: ['[list|pause|resume|run]'],
    options: [JSON_OPTION, { ...NOW_OPTION, description: `with run: ${NOW_OPTION.description}` }],
    summary: 'list the scheduled jobs, pause or resume the whole schedule, or run one pass now',
    details: [
      'list (the default) prints one line per job: <action> <timer> <volume> , then (paused) for a paused job.',
      'run runs the jobs that are due now (at --now) once, prints one line per job, and exits 1 if one failed.',
    ],
    examples: ['scheduled', 'scheduled pause', 'scheduled resume', 'scheduled run --now 2024-01-10T12:00:00'],
    load: () => import('./commands/scheduled.js'),
  },
  {
    name: 'restore',
    params: ['<snapshot|volume>', '[<target>]'],
    options: [JSON_OPTION],
    summary: 'restore a snapshot (a volume: its newest) into a volume; prints the backup snapshot',
    details: [
      '<target> defaults to the volume of the snapshot. If it exists, it is first kept as a read-only',
      'snapshot, whose name is printed. Refused while the target volume is mounted.',
    ],
    examples: ['restore db@2024-01-10T12:00:00.123456', 'restore db', 'restore db@2024-01-10T12:00:00.123456 db-copy'],
    load: () => import('./commands/restore.js'),
  },
  {
    name: 'clone',
    params: ['<volume>', '<new_volume>'],
    options: [JSON_OPTION],
    summary: 'create <new_volume> as a writable copy of <volume>; prints its name',
    details: [],
    examples: ['clone db db-test'],
    load: () => import('./commands/clone.js'),
  },
  {
    name: 'send',
    params: ['<host>', '<snapshot>'],
    options: [],
    summary: 'send a snapshot to another host (not available in this version)',
    details: ['Checks its arguments, then fails: replication comes in a later version.'],
    examples: ['send node2 db@2024-01-10T12:00:00.123456'],
    load: () => import('./commands/send.js'),
  },
  {
    name: 'sync',
    params: ['<volume>', '<host>', '[<host>...]'],
    options: [],
    summary: 'pull a volume from other hosts (not available in this version)',
    details: ['Checks its arguments, then fails: replication comes in a later version.'],
    examples: ['sync db node2 node3'],
    load: () => import('./commands/sync.js'),
  },
  {
    name: 'rm',
    params: ['<snapshot>'],
    options: [],
    summary: 'delete a snapshot',
    details: [],
    examples: ['rm db@2024-01-10T12:00:00.123456'],
    load: () => import('./commands/rm.js'),
  },
  {
    name: 'purge',
    params: ['<pattern>', '<volume>'],
    options: [
      { flags: '--dryrun', description: 'delete nothing; print the snapshots that would be deleted, one per line' },
      NOW_OPTION,
      JSON_OPTION,
    ],
    summary: 'delete the snapshots of a volume that the retention pattern does not keep',
    details: [
      '<pattern>: durations <number><m|h|d|w|y> joined by ":", at least two, e.g. 4h:1d:2w:2y keeps every',
      'snapshot of the last 4 hours, one per 4 hours up to a day, one per day up to 2 weeks, one per',
      '2 weeks up to 2 years, and nothing older.',
    ],
    examples: ['purge --dryrun 4h:1d:2w:2y db', 'purge 4h:1d:2w:2y db'],
    load: () => import('./commands/purge.js'),
  },
];

/** The command called `name`, if any. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** `buttervolume <name> [options] <params>`: the usage line. */
export function usageOf(spec: CommandSpec): string {
  return ['buttervolume', spec.name, ...spec.options.map((o) => `[${o.flags}]`), ...spec.params].join(' ');
}

/** The program's own usage line. */
export const PROGRAM_USAGE = 'buttervolume [--debug] <command> [<args>] (buttervolume --help lists the commands)';

/** A parameter as cac reads it: `[<target>]` -> `[target]`, `[<host>...]` -> `[...host]`. */
export function cacParam(param: string): string {
  return param.replace(/^\[<(.+?)>(\.\.\.)?\]$/, (_, name: string, dots?: string) => `[${dots ? '...' : ''}${name}]`);
}

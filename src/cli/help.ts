// `buttervolume --help` and `buttervolume <command> --help`. Written by hand
// rather than by cac so that each command shows its usage line exactly as
// usage errors print it, its examples, and the exit statuses.
import { COMMANDS, PROGRAM_USAGE, usageOf, type CommandSpec } from './spec.js';

const pad = (text: string, width: number) => text.padEnd(width);

const EXIT_STATUS = ['Exit status: 0 when the command did what it says, 1 when it failed, 2 for a usage error.'];

const GLOBAL_OPTIONS: ReadonlyArray<[string, string]> = [
  ['--debug', 'print the stack trace of an error'],
  ['-h, --help', 'print this help, or a command\'s help after its name'],
  ['--version', 'print the version'],
];

function optionLines(options: ReadonlyArray<[string, string]>): string[] {
  const width = Math.max(...options.map(([flags]) => flags.length));
  return options.map(([flags, description]) => `  ${pad(flags, width)}  ${description}`);
}

/** The program's help: every command with its usage and an example of each. */
export function programHelp(version: string): string {
  const heads = COMMANDS.map((c) => [c.name, ...c.params].join(' '));
  const width = Math.max(...heads.map((h) => h.length));
  return [
    `buttervolume ${version}: Docker volumes as BTRFS subvolumes: snapshot, restore, clone, purge, schedule`,
    '',
    `Usage: ${PROGRAM_USAGE}`,
    '',
    'Commands:',
    ...COMMANDS.map((c, i) => `  ${pad(heads[i]!, width)}  ${c.summary}`),
    '',
    'Options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Examples:',
    ...COMMANDS.flatMap((c) => c.examples.slice(0, 1).map((e) => `  buttervolume ${e}`)),
    '',
    'Configuration: BUTTERVOLUME_<VAR> environment variables, then the [DEFAULT] section of',
    '/etc/buttervolume/config.ini (or $BUTTERVOLUME_CONFIG), e.g. VOLUMES_PATH, SNAPSHOTS_PATH, SCHEDULE.',
    ...EXIT_STATUS,
    '',
  ].join('\n');
}

/** The help of one command. */
export function commandHelp(spec: CommandSpec): string {
  const options: Array<[string, string]> = [...spec.options.map((o): [string, string] => [o.flags, o.description]), ...GLOBAL_OPTIONS];
  return [
    `Usage: ${usageOf(spec)}`,
    '',
    `${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.`,
    ...spec.details,
    '',
    'Options:',
    ...optionLines(options),
    '',
    'Examples:',
    ...spec.examples.map((e) => `  buttervolume ${e}`),
    '',
    ...EXIT_STATUS,
    '',
  ].join('\n');
}

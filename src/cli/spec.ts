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
    options: [JSON_OPTION, { flags: '--size', description: 'with each snapshot, what deleting it would free (its exclusive bytes)' }],
    summary: 'list the snapshots of a volume (of every volume without one), oldest first',
    details: [
      'Send markers <volume>@<date>@<host> are listed too, as the original did.',
      '--size prints <snapshot> <bytes only it keeps> per read-only snapshot (markers left out): from the qgroups',
      'with full qgroups (QUOTAS=qgroup), else read from its files (takes longer on big snapshots).',
    ],
    examples: ['snapshots db', 'snapshots --json', 'snapshots --size db'],
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
    options: [
      JSON_OPTION,
      { ...NOW_OPTION, description: `with run: ${NOW_OPTION.description}` },
      { flags: '--test', description: "with run: replicate and synchronize with the peers' TEST_REMOTE_PATH (the original's test mode)" },
    ],
    summary: 'list the scheduled jobs, pause or resume the whole schedule, or run one pass now',
    details: [
      'list (the default) prints one line per job: <action> <timer> <volume> , then (paused) for a paused job.',
      'run runs the jobs that are due now (at --now) once, prints one line per job, and exits 1 if one failed.',
    ],
    examples: ['scheduled', 'scheduled pause', 'scheduled resume', 'scheduled run --now 2024-01-10T12:00:00'],
    load: () => import('./commands/scheduled.js'),
  },
  {
    name: 'resize',
    params: ['<volume>', '<size>'],
    options: [JSON_OPTION, { flags: '--force', description: 'set a limit below what the volume already uses (writes then fail until it is below)' }],
    summary: 'change the size limit of a volume (-o size=), or remove it with none',
    details: [
      '<size>: 10G, 512M, 1T (binary units), a number of bytes, or none. Needs QUOTAS=simple or qgroup',
      '(docs/quotas.md). Prints <volume> <size> (used <bytes used>). A limit below what the volume uses is',
      'refused unless --force; the kernel enforces it at once, running containers included.',
    ],
    examples: ['resize db 20G', 'resize db none'],
    load: () => import('./commands/resize.js'),
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
    options: [
      JSON_OPTION,
      { flags: '--test', description: "into the peer's TEST_REMOTE_PATH (the original's test mode)" },
      { flags: '--limit <rate>', description: 'at most this many bytes per second (10M, 512K)' },
      { flags: '--compress', description: 'SSH compression (for slow links)' },
      { flags: '--no-progress', description: 'no progress line, even on a terminal' },
    ],
    summary: 'send a snapshot to another host, incrementally when it holds an older one',
    details: [
      'Asks <host> (name, name:port or user@name[:port]; port SSH_PORT by default) which snapshots of the',
      'volume it holds and sends from the newest one it has a faithful copy of, or in full. A snapshot',
      'it already has is not sent again. Writes the marker <snapshot>@<host>. On a terminal, a progress',
      'line on stderr. Prints nothing (as the original), or with --json what was done.',
    ],
    examples: ['send node2 db@2024-01-10T12:00:00.123456', 'send --limit 20M --compress admin@node2:2222 db@2024-01-10T12:00:00.123456'],
    load: () => import('./commands/send.js'),
  },
  {
    name: 'receive',
    params: ['<host>', '<volume>'],
    options: [JSON_OPTION, { flags: '--test', description: "from the peer's TEST_REMOTE_PATH" }],
    summary: 'fetch the newest snapshot of a volume from another host (failover)',
    details: [
      'Fetches the newest snapshot of <volume> that <host> holds and this host lacks, incrementally when',
      'this host holds an older one; prints its name (nothing when there was nothing new). Then',
      '`buttervolume restore <volume>` makes it the volume. An unreachable host is an error.',
    ],
    examples: ['receive node1 db', 'restore db'],
    load: () => import('./commands/receive.js'),
  },
  {
    name: 'sync',
    params: ['<volume>', '<host>', '[<host>...]'],
    options: [JSON_OPTION, { flags: '--test', description: "from the peers' TEST_REMOTE_PATH/<volume>" }],
    summary: 'pull the files of a volume from other hosts into the local one (no deletion)',
    details: [
      'Takes a snapshot of the local volume first, then for each host copies the files of its live volume',
      'that are missing here or newer there (modes, owners, times, symlinks and hard links kept; each',
      'file replaced atomically). Nothing local is ever deleted. A host that fails is named; the others',
      'are synchronized anyway.',
    ],
    examples: ['sync db node2 node3'],
    load: () => import('./commands/sync.js'),
  },
  {
    name: 'replicas',
    params: ['<volume>'],
    options: [JSON_OPTION],
    summary: 'what each replica of a volume that follows its service holds (asked now)',
    details: [
      'For a volume created with -o replicas=node1,node2: its state here (in-sync, behind, ahead, diverged),',
      'who holds it, and per replica the newest state it holds, how old, and whether it is reachable.',
      'Asks the running daemon (SOCKET).',
    ],
    examples: ['replicas db', 'replicas --json db'],
    load: () => import('./commands/replicas.js'),
  },
  {
    name: 'failover',
    params: ['<volume>'],
    options: [JSON_OPTION],
    summary: 'take a replicated volume over on this node although its holder cannot be reached',
    details: [
      'Goes on from the newest state the reachable replicas hold; what the unreachable holder wrote since',
      'its last push is given up, and that node never serves its copy as current again. Then start the',
      'task again (Docker Swarm retries it by itself). Asks the running daemon (SOCKET).',
    ],
    examples: ['failover db'],
    load: () => import('./commands/failover.js'),
  },
  {
    name: 'doctor',
    params: [],
    options: [JSON_OPTION],
    summary: 'check the setup: filesystems, kernel, socket, Docker, SSH keys, peers; say how to fix what is wrong',
    details: [
      'One line per check: OK, WARN or FAIL, then how to fix it. VOLUMES_PATH and SNAPSHOTS_PATH on one btrfs,',
      'free space against RECEIVE_RESERVE, openat2 and QUOTAS against the kernel, the schedule, the plugin socket',
      '(a stale one included), whether Docker knows the driver and has no local volume named as one here, the SSH',
      "material and its permissions, and for every peer of the schedule and of replicated volumes its known_hosts",
      "entry and its clock (one bounded request; a peer known_hosts does not record is not contacted).",
      'Reads only. Exit status 0 when nothing FAILs, 1 otherwise.',
    ],
    examples: ['doctor', 'doctor --json'],
    load: () => import('./commands/doctor.js'),
  },
  {
    name: 'ssh-key',
    params: [],
    options: [],
    summary: "print this host's public SSH key, to authorize it on a peer",
    details: ["Add the line to the peer's SSH_PATH/authorized_keys (/var/lib/buttervolume/ssh/authorized_keys)."],
    examples: ['ssh-key', 'ssh-key | ssh node2 tee -a /var/lib/buttervolume/ssh/authorized_keys'],
    load: () => import('./commands/ssh-key.js'),
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
      { flags: '--explain', description: 'print every snapshot with KEEP or DELETE and the rule that decided (with --dryrun: would)' },
      { flags: '--at <date>', description: 'decide as at <date>: a date as in snapshot names (DTFORMAT) or ISO 8601, like --now' },
      NOW_OPTION,
      JSON_OPTION,
    ],
    summary: 'delete the snapshots of a volume that the retention pattern does not keep',
    details: [
      '<pattern>: durations <number><m|h|d|w|y> joined by ":", at least two, e.g. 4h:1d:2w:2y keeps every',
      'snapshot of the last 4 hours, one per 4 hours up to a day, one per day up to 2 weeks, one per',
      '2 weeks up to 2 years, and nothing older.',
      '--explain prints one line per snapshot, KEEP or DELETE<tab><snapshot><tab><why>: the plan the purge',
      'carries out; without --dryrun it purges, then prints what it did and why.',
    ],
    examples: ['purge --dryrun 4h:1d:2w:2y db', 'purge 4h:1d:2w:2y db', 'purge --dryrun --explain --at 2024-12-05T12:00:00 4h:1d:2w:2y db'],
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

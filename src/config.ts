// Startup configuration, read once: environment BUTTERVOLUME_<VAR>, then the
// [DEFAULT] section of config.ini, then the original's defaults. Unlike the
// original, which crashed at import time on a bad TIMER and accepted anything
// else, every value is checked here and refused with one line saying which
// variable, where it came from and what is wrong.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { posix, resolve } from 'node:path';

import { IniSyntaxError, parseIniDefaults, type IniEntry } from './config-ini.js';
import { TimestampError, validateDtformat } from './util/timestamp.js';
import { CodedError } from './util/coded-error.js';
import { nameErrorClass } from './util/error-name.js';
import { errCode } from './util/err-code.js';
import { parseSize } from './util/size.js';

/** Log levels, with Python's names (the original passed LOGLEVEL to `logging`). */
export type LogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';

/** Where the config.ini is looked for when `BUTTERVOLUME_CONFIG` is not set. */
export const DEFAULT_CONFIG_FILE = '/etc/buttervolume/config.ini';

/** The effective configuration; every path absolute, normalised, without trailing slash. */
export interface Config {
  /** VOLUMES_PATH: one subvolume per volume. */
  readonly volumesPath: string;
  /** SNAPSHOTS_PATH: read-only snapshots, received snapshots, send markers. */
  readonly snapshotsPath: string;
  /** TEST_REMOTE_PATH: the "remote" directory when a request has `Test: true`. */
  readonly testRemotePath: string;
  /** SCHEDULE: the schedule CSV; `<schedulePath>.disabled` while globally paused. */
  readonly schedulePath: string;
  /** DRIVERNAME: the managed plugin's name, used by the CLI to find its socket. */
  readonly driverName: string;
  /** RUNPATH: Docker's run directory. */
  readonly runPath: string;
  /** SOCKET: the listening socket; defaults to `<runPath>/plugins/btrfs.sock`. */
  readonly socketPath: string;
  /** TIMER: seconds between two scheduler passes. */
  readonly timerSeconds: number;
  /** DTFORMAT: strftime format of the date in snapshot names. */
  readonly dtFormat: string;
  /** LOGLEVEL, with WARN and FATAL mapped to WARNING and CRITICAL. */
  readonly logLevel: LogLevel;
  /** SSH_PORT: port of the embedded SSH server, and of the peers unless a host names another; 0: no server. */
  readonly sshPort: number;
  /** SSH_PATH: host key, client key (id_ed25519 or id_rsa), authorized_keys, known_hosts. */
  readonly sshPath: string;
  /** REPLICATION_IDLE_TIMEOUT: seconds a peer may send nothing of an expected stream or answer before the request is aborted. */
  readonly replicationIdleSeconds: number;
  /** RECEIVE_RESERVE: free space a receive must leave on the filesystem it writes to. */
  readonly receiveReserve: SpaceReserve;
  /** QUOTAS: the kind of btrfs quotas the daemon turns on for `-o size=` limits and usage ('off': none, size= refused). */
  readonly quotas: QuotaSetting;
  /** SYNC_CLOCK_SKEW: seconds a peer's mtime may lie in our future before sync skips the file. */
  readonly syncClockSkewSeconds: number;
  /** SEND_READ_AHEAD: a send reads the snapshot's file data ahead of the kernel (btrfs send()'s readAhead). */
  readonly sendReadAhead: boolean;
  /** NODE_NAME: this node's name as its peers name it in `replicas` (default: the hostname). */
  readonly nodeName: string;
  /** HANDOVER_TIMEOUT: seconds a first Mount waits for the old holder of a replicated volume to let it go. */
  readonly handoverTimeoutSeconds: number;
  /** FAILOVER_AFTER: seconds a holder must have been unreachable before a `failover=auto` volume is taken over without it. */
  readonly failoverAfterSeconds: number;
  /** METRICS_ADDRESS: where Prometheus metrics are served (`/metrics`), or null: not served. */
  readonly metricsAddress: { readonly host: string; readonly port: number } | null;
  /** The config.ini consulted, and whether it existed. */
  readonly configFile: { readonly path: string; readonly found: boolean };
  /** Non-fatal remarks worth logging at startup (unknown keys in config.ini). */
  readonly warnings: readonly string[];
}

/** QUOTAS: off, simple quotas (Linux 6.7+), or full qgroups (docs/quotas.md). */
export type QuotaSetting = 'off' | 'simple' | 'qgroup';

/** Free space to keep: a number of bytes, or a share of the filesystem's size. */
export type SpaceReserve = { readonly bytes: number } | { readonly percent: number };

/** Description of one configuration variable, for documentation and `--help`. */
export interface ConfigVariable {
  /** Name in config.ini (case-insensitive there) and after `BUTTERVOLUME_`. */
  readonly name: string;
  /** Environment variable that overrides it. */
  readonly env: string;
  /** Whether config.ini is consulted. */
  readonly ini: boolean;
  /** A plain environment variable also read (after BUTTERVOLUME_<name>), as the original's plugin sets it. */
  readonly plainEnv?: string;
  /** Default, as text (`$RUNPATH` means the effective RUNPATH). */
  readonly default: string;
  /** The `Config` field it fills. */
  readonly field: keyof Config;
  readonly description: string;
}

const variable = (
  name: string,
  def: string,
  field: keyof Config,
  description: string,
  plainEnv?: string,
): ConfigVariable => Object.freeze({ name, env: `BUTTERVOLUME_${name}`, ini: true, default: def, field, description, ...(plainEnv ? { plainEnv } : {}) });

/** Every variable with its default, in the order they are resolved. */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = Object.freeze([
  variable('VOLUMES_PATH', '/var/lib/buttervolume/volumes/', 'volumesPath', 'directory holding one subvolume per volume'),
  variable('SNAPSHOTS_PATH', '/var/lib/buttervolume/snapshots/', 'snapshotsPath', 'directory of read-only snapshots and send markers'),
  variable('TEST_REMOTE_PATH', '/var/lib/buttervolume/received/', 'testRemotePath', 'remote directory used by requests with "Test": true'),
  variable('SCHEDULE', '/etc/buttervolume/schedule.csv', 'schedulePath', 'schedule file; renamed to <SCHEDULE>.disabled while paused'),
  variable('DRIVERNAME', 'anybox/buttervolume:latest', 'driverName', 'managed plugin name, used by the CLI to find its socket'),
  variable('RUNPATH', '/run/docker', 'runPath', "Docker's run directory"),
  variable('SOCKET', '$RUNPATH/plugins/btrfs.sock', 'socketPath', 'unix socket the plugin listens on'),
  variable('TIMER', '60', 'timerSeconds', 'seconds between two scheduler passes'),
  variable('DTFORMAT', '%Y-%m-%dT%H:%M:%S.%f', 'dtFormat', 'strftime format of the date in snapshot names'),
  variable('LOGLEVEL', 'INFO', 'logLevel', 'DEBUG, INFO, WARNING, ERROR or CRITICAL (case-insensitive)'),
  variable('SSH_PORT', '1122', 'sshPort', 'port of the embedded SSH server, and of peers unless a host says host:port (also the plain SSH_PORT variable, as the original plugin sets it)', 'SSH_PORT'),
  variable('SSH_PATH', '/var/lib/buttervolume/ssh', 'sshPath', 'SSH material: host key, client key, authorized_keys, known_hosts'),
  variable('REPLICATION_IDLE_TIMEOUT', '60', 'replicationIdleSeconds', 'seconds a peer may stay silent in the middle of a replication request before it is aborted'),
  variable('RECEIVE_RESERVE', '5%', 'receiveReserve', 'free space a received snapshot must leave on its filesystem: a size (1G, 512M) or a percentage of the filesystem (5%)'),
  variable('QUOTAS', 'off', 'quotas', 'btrfs quotas for -o size= limits and usage: off, simple (simple quotas, Linux 6.7+) or qgroup (full qgroups, costly with many snapshots); the daemon turns them on'),
  variable('SYNC_CLOCK_SKEW', '300', 'syncClockSkewSeconds', "seconds a peer's file times may be ahead of this host's clock before sync skips those files"),
  variable('SEND_READ_AHEAD', 'true', 'sendReadAhead', "true: a send reads the snapshot's file data ahead of the kernel's send (faster from a cold page cache; Linux 6.5+, else ignored); false: the kernel reads alone"),
  variable('NODE_NAME', '$HOSTNAME', 'nodeName', "this node's name as its peers write it in a volume's replicas (default: the hostname)"),
  variable('HANDOVER_TIMEOUT', '25', 'handoverTimeoutSeconds', 'seconds the first Mount of a replicated volume waits for its old holder to let it go'),
  variable('FAILOVER_AFTER', '60', 'failoverAfterSeconds', 'seconds a holder must have been unreachable before a failover=auto volume is taken over without it'),
  variable('METRICS_ADDRESS', '', 'metricsAddress', 'address:port where Prometheus metrics are served at /metrics (127.0.0.1:9323); empty: not served'),
]);

/** Default of a variable, from {@link CONFIG_VARIABLES} (single source of the defaults). */
function defaultOf(name: string): string {
  return CONFIG_VARIABLES.find((v) => v.name === name)!.default;
}

/** An invalid configuration value or config.ini; `message` is one line. */
export class ConfigError extends CodedError<'ERR_INVALID_CONFIG'> {
  /** Variable at fault (e.g. 'TIMER'), absent for a config.ini syntax error. */
  readonly variable: string | undefined;
  /** 'environment', 'default', or the config.ini path (with its line). */
  readonly source: string;

  constructor(message: string, source: string, variable?: string) {
    super('ERR_INVALID_CONFIG', message);
    this.source = source;
    this.variable = variable;
  }
}

nameErrorClass(ConfigError, 'ConfigError');

/** Options of {@link loadConfig}; both default to the real process. */
export interface LoadConfigOptions {
  /** Environment to read (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** config.ini to read; default `BUTTERVOLUME_CONFIG`, else /etc/buttervolume/config.ini. */
  iniPath?: string;
}

interface Raw {
  value: string;
  /** How to name the variable in a message: BUTTERVOLUME_X for the environment, X otherwise. */
  label: string;
  source: string;
}

const LOG_LEVELS: Readonly<Record<string, LogLevel>> = {
  DEBUG: 'DEBUG',
  INFO: 'INFO',
  WARNING: 'WARNING',
  WARN: 'WARNING',
  ERROR: 'ERROR',
  CRITICAL: 'CRITICAL',
  FATAL: 'CRITICAL',
};

// setTimeout cannot wait longer than 2^31-1 ms: a longer tick would fire at once.
const MAX_TIMER_SECONDS = Math.floor(0x7fffffff / 1000);
// sun_path is 108 bytes including the terminating NUL.
const MAX_SOCKET_BYTES = 107;

/**
 * Read the configuration: for each variable the environment `BUTTERVOLUME_<VAR>`
 * (an empty or blank value falls through, as in the original), then the
 * `[DEFAULT]` section of config.ini, then the default. A missing config.ini is
 * fine; an unreadable or malformed one is an error. Values are trimmed.
 *
 * @throws ConfigError naming the variable, where the value came from and what is wrong.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const fromEnv = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value ? value : undefined;
  };
  const iniPath = resolve(options.iniPath ?? fromEnv('BUTTERVOLUME_CONFIG') ?? DEFAULT_CONFIG_FILE);
  const ini = readIni(iniPath);
  const warnings: string[] = [];
  if (ini) {
    for (const [key, entry] of ini) {
      const known = CONFIG_VARIABLES.find((v) => v.name.toLowerCase() === key);
      const where = `${iniPath} line ${entry.line}`;
      if (!known) warnings.push(`${where}: unknown key ${JSON.stringify(key)} ignored`);
    }
  }

  const lookup = (name: string, fallback = defaultOf(name)): Raw => {
    const value = fromEnv(`BUTTERVOLUME_${name}`);
    if (value !== undefined) return { value, label: `BUTTERVOLUME_${name}`, source: 'environment' };
    const plain = CONFIG_VARIABLES.find((v) => v.name === name)?.plainEnv;
    const plainValue = plain === undefined ? undefined : fromEnv(plain);
    if (plain !== undefined && plainValue !== undefined) return { value: plainValue, label: plain, source: 'environment' };
    const entry: IniEntry | undefined = ini?.get(name.toLowerCase());
    if (entry) return { value: entry.value, label: name, source: `${iniPath} line ${entry.line}` };
    return { value: fallback, label: name, source: 'default' };
  };

  const runPath = absolutePath(lookup('RUNPATH'));

  return Object.freeze({
    volumesPath: absolutePath(lookup('VOLUMES_PATH')),
    snapshotsPath: absolutePath(lookup('SNAPSHOTS_PATH')),
    testRemotePath: absolutePath(lookup('TEST_REMOTE_PATH')),
    schedulePath: absolutePath(lookup('SCHEDULE')),
    driverName: driverName(lookup('DRIVERNAME')),
    runPath,
    // Derived from the effective RUNPATH, as the original did.
    socketPath: socket(lookup('SOCKET', posix.join(runPath, 'plugins', 'btrfs.sock'))),
    timerSeconds: timer(lookup('TIMER')),
    dtFormat: dtFormat(lookup('DTFORMAT')),
    logLevel: logLevel(lookup('LOGLEVEL')),
    sshPort: sshPort(lookup('SSH_PORT')),
    sshPath: absolutePath(lookup('SSH_PATH')),
    replicationIdleSeconds: seconds(lookup('REPLICATION_IDLE_TIMEOUT'), 1, 86_400),
    receiveReserve: spaceReserve(lookup('RECEIVE_RESERVE')),
    quotas: quotaSetting(lookup('QUOTAS')),
    syncClockSkewSeconds: seconds(lookup('SYNC_CLOCK_SKEW'), 0, 366 * 86_400),
    sendReadAhead: flag(lookup('SEND_READ_AHEAD')),
    nodeName: nodeName(lookup('NODE_NAME', hostname())),
    handoverTimeoutSeconds: seconds(lookup('HANDOVER_TIMEOUT'), 1, 3600),
    failoverAfterSeconds: seconds(lookup('FAILOVER_AFTER'), 1, 86_400),
    metricsAddress: listenAddress(lookup('METRICS_ADDRESS')),
    configFile: Object.freeze({ path: iniPath, found: ini !== undefined }),
    warnings: Object.freeze(warnings),
  });
}

function readIni(path: string): Map<string, IniEntry> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined; // no config.ini: defaults
    throw new ConfigError(`config file ${path} cannot be read: ${(err as Error).message}`, path);
  }
  try {
    return parseIniDefaults(text);
  } catch (err) {
    if (!(err instanceof IniSyntaxError)) throw err;
    throw new ConfigError(`config file ${path} ${err.message}`, `${path} line ${err.line}`);
  }
}

function fail(raw: Raw, problem: string): never {
  const variable = raw.label.replace(/^BUTTERVOLUME_/, '');
  throw new ConfigError(`${raw.label}=${JSON.stringify(raw.value)} (${raw.source}): ${problem}`, raw.source, variable);
}

// Control characters (a continued ini value, a pasted newline) are never meant.
function singleLine(raw: Raw): string {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(raw.value)) fail(raw, 'must be a single line without control characters');
  return raw.value;
}

function absolutePath(raw: Raw): string {
  const value = singleLine(raw);
  if (!posix.isAbsolute(value)) fail(raw, 'must be an absolute path (starting with /)');
  const normal = posix.normalize(value);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

function socket(raw: Raw): string {
  const path = absolutePath(raw);
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_BYTES) fail(raw, `is ${bytes} bytes long; a unix socket path can have at most ${MAX_SOCKET_BYTES}`);
  return path;
}

function driverName(raw: Raw): string {
  const value = singleLine(raw);
  if (/\s/.test(value) || value.startsWith('-')) {
    fail(raw, 'must be a plugin reference such as anybox/buttervolume:latest (no spaces, no leading "-")');
  }
  return value;
}

function timer(raw: Raw): number {
  const value = singleLine(raw);
  const seconds = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!(seconds > 0)) fail(raw, 'must be a positive whole number of seconds');
  if (seconds > MAX_TIMER_SECONDS) fail(raw, `must be at most ${MAX_TIMER_SECONDS} seconds (about 24 days)`);
  return seconds;
}

function logLevel(raw: Raw): LogLevel {
  const level = LOG_LEVELS[singleLine(raw).toUpperCase()];
  if (!level) fail(raw, 'must be one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL');
  return level;
}

// 0 turns the embedded SSH server off (then every peer needs an explicit port).
function sshPort(raw: Raw): number {
  const value = singleLine(raw);
  const port = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) fail(raw, 'must be a port number from 1 to 65535 (0: no SSH server)');
  return port;
}

// A host name as peers write it (a label or dotted name; IPv6 literals are peers' specs, not names).
function nodeName(raw: Raw): string {
  const value = singleLine(raw);
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$/.test(value)) fail(raw, 'must be a host name (letters, digits, "." and "-")');
  return value;
}

function quotaSetting(raw: Raw): QuotaSetting {
  const value = singleLine(raw).toLowerCase();
  if (value !== 'off' && value !== 'simple' && value !== 'qgroup') fail(raw, 'must be off, simple (btrfs simple quotas, Linux 6.7+) or qgroup (full qgroups)');
  return value;
}

// A whole number of seconds within [min, max].
// true/false (also yes/no, on/off, 1/0; any case).
function flag(raw: Raw): boolean {
  const value = singleLine(raw).toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(value)) return true;
  if (['false', 'no', 'off', '0'].includes(value)) return false;
  return fail(raw, 'must be true or false');
}

function seconds(raw: Raw, min: number, max: number): number {
  const value = singleLine(raw);
  const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) fail(raw, `must be a whole number of seconds from ${min} to ${max}`);
  return n;
}

// `127.0.0.1:9323`, `[::1]:9323`, `localhost:9323`: an address to listen on, named (never a wildcard by default).
function listenAddress(raw: Raw): { host: string; port: number } | null {
  const value = singleLine(raw).trim();
  if (value === '') return null;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]{1,253})):([0-9]{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65_535)) fail(raw, 'must be address:port (127.0.0.1:9323, [::1]:9323), or empty');
  return { host: m[1] ?? m[2]!, port };
}

// `5%` of the filesystem, or a size with a binary unit (`1G`, `512M`, `0`).
function spaceReserve(raw: Raw): SpaceReserve {
  const value = singleLine(raw);
  const percent = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(value);
  if (percent) {
    const p = Number(percent[1]);
    if (!(p >= 0 && p <= 50)) fail(raw, 'a percentage must be from 0% to 50%');
    return Object.freeze({ percent: p });
  }
  const bytes = parseSize(value);
  if (bytes === null) fail(raw, 'must be a size such as 1G or 512M (binary units K, M, G, T) or a percentage such as 5%');
  if (!Number.isSafeInteger(bytes)) fail(raw, 'is too large');
  return Object.freeze({ bytes });
}

// The date goes into snapshot names `<volume>@<date>` and is parsed back by purge.
function dtFormat(raw: Raw): string {
  const value = singleLine(raw);
  if (!value.replaceAll('%%', '').includes('%')) fail(raw, 'must contain at least one strftime directive such as %Y');
  try {
    return validateDtformat(value); // the one rule the store names and parses with
  } catch (err) {
    if (err instanceof TimestampError) return fail(raw, err.reason);
    throw err;
  }
}

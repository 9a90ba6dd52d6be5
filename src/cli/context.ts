// What a command receives. The configuration and the store are loaded on
// first use only, so `--help`, `send` or a usage error never pay for them.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Replicator } from '../replication/replicator.js';
import type { VolumeStore } from '../store/volume-store.js';
import { UsageError } from './errors.js';
import type { Output } from './output.js';

/** Options cac parsed for a command (camelCased; `--` holds what followed `--`). */
export type ParsedOptions = Readonly<Record<string, unknown>>;

/** The environment of one command run. */
export interface CommandContext {
  /** Command name, as in error lines (`snapshot`, `scheduled`...). */
  readonly command: string;
  /** The command's usage line, for usage errors. */
  readonly usage: string;
  readonly options: ParsedOptions;
  readonly out: Output;
  /** The configuration (environment, config.ini, defaults), loaded once. */
  config(): Promise<Config>;
  /** The volume store of the configuration, opened once (no recovery: that is the daemon's job). */
  store(): Promise<VolumeStore>;
  /** Replication with peers (SSH_PORT, SSH_PATH of the configuration), made once. */
  replicator(): Promise<Replicator>;
  /**
   * A logger on stderr: DEBUG with --debug; else LOGLEVEL for the daemon,
   * and at least WARNING for a command, whose result is on stdout.
   */
  logger(use?: 'daemon' | 'command'): Promise<Logger>;
  /** A usage error for this command (exit status 2, prints the usage line). */
  usageError(message: string): UsageError;
}

/** Builds the context of one command run. */
export function createContext(fields: { command: string; usage: string; options: ParsedOptions; out: Output }): CommandContext {
  let config: Promise<Config> | undefined;
  let store: Promise<VolumeStore> | undefined;
  let replicator: Promise<Replicator> | undefined;
  const ctx: CommandContext = {
    ...fields,
    config: () =>
      (config ??= import('../config.js').then(({ loadConfig }) => loadConfig())),
    store: () =>
      (store ??= Promise.all([ctx.config(), import('../store/open.js')]).then(([c, { openStore }]) => openStore(c, { recover: false }))),
    replicator: () =>
      (replicator ??= Promise.all([ctx.config(), ctx.store(), ctx.logger(), import('../replication/replicator.js')]).then(
        ([c, s, logger, { SshReplicator }]) => new SshReplicator({ config: c, store: s, logger }),
      )),
    logger: async (use = 'command') => {
      const [{ logLevel }, { createLogger }] = await Promise.all([ctx.config(), import('../log.js')]);
      const quiet = use === 'command' && (logLevel === 'DEBUG' || logLevel === 'INFO');
      return createLogger(fields.options['debug'] === true ? 'DEBUG' : quiet ? 'WARNING' : logLevel);
    },
    usageError: (message) => new UsageError(message, fields.usage),
  };
  return ctx;
}

// One line per event on stderr, filtered by LOGLEVEL (the original's Python
// level names). Kept tiny: the CLI imports it on its start-up path.
import type { LogLevel } from './config.js';

const RANK: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Whether messages at `level` are written (skip building costly ones). */
  enabled(level: LogLevel): boolean;
}

/** A logger writing `<ISO time> <LEVEL> <message>` lines to `write` (stderr by default). */
export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = RANK[level];
  const emit = (lvl: LogLevel, message: string) => {
    if (RANK[lvl] >= min) write(`${new Date().toISOString()} ${lvl} ${message.replace(/\n/g, '\\n')}\n`);
  };
  return {
    debug: (m) => emit('DEBUG', m),
    info: (m) => emit('INFO', m),
    warning: (m) => emit('WARNING', m),
    error: (m) => emit('ERROR', m),
    enabled: (lvl) => RANK[lvl] >= min,
  };
}

/** A logger that drops everything (library use, tests). */
export const silentLogger: Logger = createLogger('CRITICAL', () => undefined);

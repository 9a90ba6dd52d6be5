// Until the replication issue lands, send and sync check their arguments
// (so a script's mistakes show now, not later) and then fail clearly.
import { CliError } from './errors.js';

/** The failure of send and sync in this version (exit status 1). */
export function replicationUnavailable(): CliError {
  return new CliError('replication is not available in this version');
}

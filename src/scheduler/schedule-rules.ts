// What a schedule line may say. The original accepted any name, action and
// timer and silently ignored what it could not run (its PR #93); here each is
// refused with a sentence saying what was expected. Pure: no I/O.
import { checkPeerSpec } from '../replication/peer.js';
import { validateVolumeName as validateStoreVolumeName } from '../store/names.js';
import { parsePurgePattern } from '../store/purge-plan.js';
import { CodedError } from '../util/coded-error.js';
import { nameErrorClass } from '../util/error-name.js';

/** Error codes of the schedule. */
export type ScheduleErrorCode = 'ERR_INVALID_SCHEDULE' | 'ERR_SCHEDULED_JOB_NOT_FOUND' | 'ERR_SCHEDULE_PAUSED';

/** A refused schedule change or line; `message` is one line meant for the user. */
export class ScheduleError extends CodedError<ScheduleErrorCode> {}

nameErrorClass(ScheduleError, 'ScheduleError');

const invalid = (message: string): ScheduleError => new ScheduleError('ERR_INVALID_SCHEDULE', message);

/** What a job does, read from its `Action` column. */
export type ScheduledAction =
  | { readonly kind: 'snapshot' }
  | { readonly kind: 'replicate'; readonly host: string }
  | { readonly kind: 'purge'; readonly pattern: string }
  | { readonly kind: 'synchronize'; readonly hosts: readonly string[] };

/** What a `Timer` given to the Schedule endpoint asks for. */
export type TimerChange =
  | { readonly kind: 'set'; readonly minutes: number }
  | { readonly kind: 'delete' }
  | { readonly kind: 'pause' }
  | { readonly kind: 'resume' };

/** Longest accepted period: 100 years of minutes (keeps `minutes * 60000` exact). */
export const MAX_TIMER_MINUTES = 100 * 365 * 24 * 60;

const ACTIONS = 'snapshot, replicate:<host>, purge:<pattern> or synchronize:<host>[,<host>...]';

/** Runs one of the store's validators, turning its refusal into ERR_INVALID_SCHEDULE. */
function check(validate: () => unknown): void {
  try {
    validate();
  } catch (err) {
    throw invalid((err as Error).message);
  }
}

/**
 * Check a volume name with the store's rule (`^[A-Za-z0-9][A-Za-z0-9_.-]*$`,
 * at most 255 bytes, so never `@` or `/`).
 * @throws ScheduleError `ERR_INVALID_SCHEDULE`
 */
export function validateVolumeName(name: string): void {
  check(() => validateStoreVolumeName(name));
}

/**
 * Check a host of `replicate:`/`synchronize:`: `name`, `name:port` or
 * `user@name[:port]`, with the store's rule for the name (the host part of
 * send markers `<volume>@<date>@<host>`), so a job accepted here can run.
 * @throws ScheduleError `ERR_INVALID_SCHEDULE`
 */
export function validateHost(host: string): void {
  check(() => checkPeerSpec(host));
}

/**
 * Check a purge retention pattern with the purge module's own parser.
 * @throws ScheduleError `ERR_INVALID_SCHEDULE`
 */
export function checkPurgePattern(pattern: string): void {
  if (pattern === '') throw invalid('purge needs a retention pattern, e.g. purge:4h:1d:2w');
  check(() => parsePurgePattern(pattern));
}

/**
 * Read an `Action`: `snapshot`, `replicate:<host>`, `purge:<pattern>` or
 * `synchronize:<host>[,<host>...]`. The verb is what precedes the first `:`.
 * @throws ScheduleError `ERR_INVALID_SCHEDULE`
 */
export function parseAction(action: string): ScheduledAction {
  const colon = action.indexOf(':');
  const verb = colon < 0 ? action : action.slice(0, colon);
  const rest = colon < 0 ? undefined : action.slice(colon + 1);
  switch (verb) {
    case 'snapshot':
      if (rest !== undefined) throw invalid(`invalid action ${JSON.stringify(action)}: snapshot takes no argument`);
      return { kind: 'snapshot' };
    case 'replicate':
      if (!rest) throw invalid(`invalid action ${JSON.stringify(action)}: replicate needs a host (replicate:<host>)`);
      validateHost(rest);
      return { kind: 'replicate', host: rest };
    case 'purge':
      checkPurgePattern(rest ?? '');
      return { kind: 'purge', pattern: rest! };
    case 'synchronize': {
      if (!rest) throw invalid(`invalid action ${JSON.stringify(action)}: synchronize needs hosts (synchronize:<host>[,<host>...])`);
      const hosts = rest.split(',');
      hosts.forEach(validateHost);
      return { kind: 'synchronize', hosts };
    }
    default:
      throw invalid(`unknown action ${JSON.stringify(action)}: expected ${ACTIONS}`);
  }
}

/**
 * Read a `Timer` given to the Schedule endpoint: ASCII digits are minutes
 * (all zeros, like `0`, means delete), or one of the words `delete`, `pause`,
 * `resume`. A number is accepted too (JSON clients send `60`).
 * @throws ScheduleError `ERR_INVALID_SCHEDULE`
 */
export function parseTimer(timer: string | number): TimerChange {
  const text = typeof timer === 'number' && Number.isSafeInteger(timer) && timer >= 0 ? String(timer) : timer;
  if (text === 'delete' || text === 'pause' || text === 'resume') return { kind: text };
  if (typeof text === 'string' && /^[0-9]+$/.test(text)) {
    const minutes = Number(text);
    if (minutes === 0) return { kind: 'delete' };
    if (minutes > MAX_TIMER_MINUTES) throw invalid(`invalid timer ${JSON.stringify(text)}: at most ${MAX_TIMER_MINUTES} minutes (100 years)`);
    return { kind: 'set', minutes };
  }
  throw invalid(`invalid timer ${JSON.stringify(String(timer))}: expected a number of minutes, or 0 (or delete), pause, resume`);
}

/**
 * Read the `Timer` column of a schedule line: a positive number of minutes.
 * @throws ScheduleError `ERR_INVALID_SCHEDULE`
 */
export function parseTimerColumn(timer: string): number {
  const change = /^[0-9]+$/.test(timer) ? parseTimer(timer) : undefined;
  if (change?.kind === 'set') return change.minutes;
  if (change?.kind === 'delete') throw invalid(`invalid timer ${JSON.stringify(timer)}: a scheduled job runs every 1 minute or more`);
  throw invalid(`invalid timer ${JSON.stringify(timer)}: expected a whole number of minutes`);
}

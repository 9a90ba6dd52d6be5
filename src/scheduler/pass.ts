// One scheduler pass: read schedule.csv, start every due job, report each
// line. Used by the daemon's Scheduler at every tick and by
// `buttervolume scheduled run [--now ISO]`, with the same persisted state.
//
// Guarantees: invalid lines are reported (and logged once) and skipped; one
// failing job never stops the others; jobs of different volumes run
// concurrently (see SchedulerState's pools); two jobs of one volume never
// run at once, in this process or across processes; a job still running
// from an earlier pass is not started again.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { VolumeStore } from '../store/volume-store.js';
import { report as telemetry } from '../util/telemetry.js';
import { errorText, executeJob } from './jobs.js';
import { SshReplicator, type Replicator } from '../replication/replicator.js';
import { ScheduleFile, type ScheduleEntry, type ScheduleLine } from './schedule-file.js';
import { SchedulerState, VOLUME_BUSY, isDue, jobKey, nextRunAt, type JobRecord } from './state.js';

/** What a pass works with. */
export interface SchedulerContext {
  config: Config;
  store: VolumeStore;
  logger: Logger;
  /** Default: an {@link SshReplicator} of `config` (tests pass their own peer). */
  replicator?: Replicator;
  /** replicate/synchronize into the peers' TEST_REMOTE_PATH (the original's test mode). */
  test?: boolean;
  /** Default: a fresh `SchedulerState.of(config)` (records come from the state file). */
  state?: SchedulerState;
}

/** Options of a pass. */
export interface PassOptions {
  /** The pass's clock: decides what is due, purges evaluate their pattern at it, and it is recorded as the last run. Default: now. */
  now?: Date;
}

/** What happened to one schedule line. */
export interface JobReport {
  name: string;
  action: string;
  /** Whether the job ran in this pass. */
  ran: boolean;
  /** False when it ran and failed, or when the line is invalid. */
  ok: boolean;
  error?: string;
  detail?: string;
}

/** The result of a pass: one report per schedule line, in file order. */
export interface PassResult {
  /** True when the schedule is globally paused (`<SCHEDULE>.disabled`): nothing ran. */
  paused: boolean;
  jobs: JobReport[];
}

/**
 * Run one pass at `options.now` and wait for the jobs it started.
 * @throws when the schedule file cannot be read (never for a job's failure).
 */
export async function runSchedulerPass(ctx: SchedulerContext, options: PassOptions = {}): Promise<PassResult> {
  return (await startSchedulerPass(ctx, options)).finished;
}

/**
 * Start one pass: resolves once every due job is started, with `finished`,
 * which resolves (never rejects) when they have all ended. The Scheduler
 * does not wait for `finished` before its next tick; jobs still running then
 * are reported as such and not started twice.
 * @throws when the schedule file cannot be read.
 */
export async function startSchedulerPass(ctx: SchedulerContext, options: PassOptions = {}): Promise<{ finished: Promise<PassResult> }> {
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new TypeError('now must be a valid Date');
  const { config, logger } = ctx;
  const state = ctx.state ?? SchedulerState.of(config);
  const file = new ScheduleFile(config.schedulePath);
  if (await file.isPaused()) {
    logger.info(`schedule globally paused (${file.disabledPath} exists): no job runs`);
    return { finished: Promise.resolve({ paused: true, jobs: [] }) };
  }
  const lines = await file.readLines();
  const records = await state.records(logger);
  const keys = new Set(lines.flatMap((l) => (l.kind === 'entry' ? [jobKey(l.entry.name, l.entry.action)] : [])));
  await state.prune(keys, logger).catch((err: unknown) => logger.error(`scheduler state not saved: ${errorText(err)}`));
  const reports = lines.map((line) => Promise.resolve(planLine(ctx, state, line, records, now)));
  return { finished: Promise.all(reports).then((jobs) => ({ paused: false, jobs })) };
}

function planLine(
  ctx: SchedulerContext,
  state: SchedulerState,
  line: ScheduleLine,
  records: Map<string, JobRecord>,
  now: Date,
): JobReport | Promise<JobReport> {
  if (line.kind === 'invalid') {
    const error = `schedule line ${line.line} ignored: ${line.error}`;
    if (state.firstReport(`${error}\0${line.raw}`)) ctx.logger.warning(`${error}: ${line.raw}`);
    return { name: line.fields[0] ?? '', action: line.fields[1] ?? '', ran: false, ok: false, error };
  }
  const { entry } = line;
  const report = { name: entry.name, action: entry.action };
  if (!entry.active) return { ...report, ran: false, ok: true, detail: 'paused' };
  const key = jobKey(entry.name, entry.action);
  const last = records.get(key)?.lastRun;
  if (!isDue(last, entry.timer, now)) {
    return { ...report, ran: false, ok: true, detail: `next run at ${nextRunAt(last, entry.timer, now).toISOString()}` };
  }
  if (!state.claim(key)) return { ...report, ran: false, ok: true, detail: 'still running (started by an earlier pass)' };
  return runJob(ctx, state, entry, key, now).finally(() => state.release(key));
}

async function runJob(ctx: SchedulerContext, state: SchedulerState, entry: ScheduleEntry, key: string, now: Date): Promise<JobReport> {
  const { logger } = ctx;
  const report = { name: entry.name, action: entry.action };
  const held = await state.withVolume(entry.name, async (): Promise<JobReport> => {
    // Another process may have run it since the pass read the records.
    const previous = (await state.records(logger)).get(key);
    if (!isDue(previous?.lastRun, entry.timer, now)) {
      return { ...report, ran: false, ok: true, detail: 'already run by another buttervolume process' };
    }
    const env = { store: ctx.store, logger, replicator: ctx.replicator ?? new SshReplicator({ config: ctx.config, store: ctx.store, logger }), state, test: ctx.test ?? false };
    let result: JobReport;
    let unsent = previous?.unsent;
    try {
      const done = await executeJob(env, entry, now, unsent);
      unsent = done.unsent;
      result = { ...report, ran: true, ok: done.ok, ...pick(done) };
    } catch (err) {
      result = { ...report, ran: true, ok: false, error: errorText(err) };
    }
    // Failed or not, the job waits a full period before its next run (the
    // original retried a failed snapshot at every tick, flooding the log).
    const record = { lastRun: now, ok: result.ok, ...(unsent ? { unsent } : {}) };
    await state.update(key, record, logger).catch((err: unknown) => {
      logger.error(`scheduler state not saved (${entry.action} of ${entry.name} may run again after a restart): ${errorText(err)}`);
    });
    return result;
  }).catch((err: unknown): JobReport => ({ ...report, ran: false, ok: false, error: errorText(err) }));
  const outcome: JobReport =
    held === VOLUME_BUSY
      ? { ...report, ran: false, ok: true, detail: 'volume busy with a job of another buttervolume process; tried again at the next pass' }
      : held;
  if (outcome.ran || !outcome.ok) telemetry({ kind: 'scheduled', action: entry.action.split(':')[0]!, volume: entry.name, ok: outcome.ok });
  const what = `scheduled ${entry.action} of ${entry.name}`;
  if (!outcome.ok) logger.error(`${what} failed: ${outcome.error}${outcome.detail ? ` (${outcome.detail})` : ''}`);
  else if (outcome.ran) logger.info(`${what}: ${outcome.detail}`);
  else logger.debug(`${what}: ${outcome.detail}`);
  return outcome;
}

function pick(o: { detail?: string; error?: string }): { detail?: string; error?: string } {
  return { ...(o.detail !== undefined ? { detail: o.detail } : {}), ...(o.error !== undefined ? { error: o.error } : {}) };
}

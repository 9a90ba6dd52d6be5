// What a scheduled purge will delete at its next run: the plan the store
// carries out for it (the same decisions as `purge --dryrun --explain`),
// evaluated at the job's next run time on the snapshots there now. Snapshots
// taken meanwhile are not foreseen; they are younger than every duration of
// a pattern at the next run, so they rarely change the count.
import type { PurgePlan, VolumeStore } from '../store/volume-store.js';
import { parseAction, type ScheduleEntry } from './schedule-file.js';
import { jobKey, nextRunAt, type JobRecord } from './state.js';

/** A purge job's next run and what it deletes then. */
export interface PurgeForecast {
  /** When it runs next: a period after its last run, or `now` if it is due. */
  nextRun: Date;
  /** The plan at that time: `doomed` is what it deletes, `decisions` every snapshot of the volume and why. */
  plan: PurgePlan;
}

/**
 * The forecast of an active `purge:` job, given the scheduler's records
 * (`SchedulerState.records`), or null for another job or a paused one (it
 * does not run).
 * @throws what the store throws listing the snapshots.
 */
export async function forecastPurge(
  env: { store: VolumeStore; records: ReadonlyMap<string, JobRecord> },
  entry: ScheduleEntry,
  now: Date,
): Promise<PurgeForecast | null> {
  const action = parseAction(entry.action);
  if (action.kind !== 'purge' || !entry.active) return null;
  const nextRun = nextRunAt(env.records.get(jobKey(entry.name, entry.action))?.lastRun, entry.timer, now);
  const plan = await env.store.purgeWithPlan(entry.name, action.pattern, { dryRun: true, now: nextRun });
  return { nextRun, plan };
}

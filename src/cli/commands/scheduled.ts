// `buttervolume scheduled [list|pause|resume|run]`. `list` prints the
// original's lines `<action> <timer> <volume> ` / `... (paused)`, which can be
// pasted back after `buttervolume schedule`; an active purge job of a volume
// with snapshots gets a trailing `# deletes <n> of <m> snapshots at its next
// run, <time>` (a shell comment: the line still pastes back). `run` runs one
// scheduler pass in this process (the scheduler is loaded only then).
import type { PurgeForecast } from '../../scheduler/forecast.js';
import { formatScheduledLine, SCHEDULE_PAUSED_MESSAGE, ScheduleFile, type ScheduleEntry } from '../../scheduler/schedule-file.js';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import { nowOption } from '../time.js';

const ACTIONS = ['list', 'pause', 'resume', 'run'];

/** Lists, pauses, resumes or runs the schedule. */
export async function run(ctx: CommandContext, [action = 'list']: readonly string[]): Promise<void> {
  if (!ACTIONS.includes(action)) throw ctx.usageError(`unknown action ${JSON.stringify(action)}: expected list, pause, resume or run`);
  if (action !== 'run' && ctx.options['now'] !== undefined) throw ctx.usageError('--now goes with run only');
  if (action !== 'run' && ctx.options['test'] !== undefined) throw ctx.usageError('--test goes with run only');
  const now = nowOption(ctx); // checked before anything is read
  const config = await ctx.config();
  const file = new ScheduleFile(config.schedulePath);
  switch (action) {
    case 'list':
      return list(ctx, file);
    case 'pause':
    case 'resume':
      await (action === 'pause' ? file.pause() : file.resume());
      if (ctx.out.json) ctx.out.document({ paused: action === 'pause' });
      return;
    default:
      return runPass(ctx, now);
  }
}

async function list(ctx: CommandContext, file: ScheduleFile): Promise<void> {
  // As the original: while paused the file is elsewhere and listing is an error.
  if (await file.isPaused()) throw new CliError(`${SCHEDULE_PAUSED_MESSAGE} (buttervolume scheduled resume)`);
  const { entries, problems } = await file.read();
  for (const p of problems) process.stderr.write(`buttervolume: scheduled: ${file.path} line ${p.line} ignored: ${p.error}\n`);
  const forecasts = await purgeForecasts(ctx, entries);
  ctx.out.result(
    entries.map((entry, i) => {
      const f = forecasts[i];
      return `${formatScheduledLine(entry)}${f ? `# deletes ${f.plan.doomed.length} of ${f.plan.decisions.length} snapshots at its next run, ${f.nextRun.toISOString()}` : ''}`;
    }),
    {
      jobs: entries.map(({ name, action, timer, active }, i) => {
        const f = forecasts[i];
        return { name, action, timer, active, ...(f ? { nextRun: f.nextRun.toISOString(), toDelete: f.plan.doomed.length, snapshots: f.plan.decisions.length } : {}) };
      }),
      problems,
    },
  );
}

/**
 * For each entry, what an active purge job deletes at its next run (the
 * store's plan at that time: scheduler/forecast.ts), or null: another job, a
 * paused one, a volume without snapshots (nothing to tell), or one that
 * cannot be told (a warning on stderr). The store is opened only for a purge job.
 */
async function purgeForecasts(ctx: CommandContext, entries: readonly ScheduleEntry[]): Promise<Array<PurgeForecast | null>> {
  const none = entries.map(() => null);
  if (!entries.some((e) => e.active && e.action.startsWith('purge:'))) return none;
  const warn = (what: string, err: unknown) =>
    process.stderr.write(`buttervolume: scheduled: ${what}: ${err instanceof Error ? err.message : String(err)}\n`);
  let env;
  try {
    const [config, logger, store, { SchedulerState }] = await Promise.all([ctx.config(), ctx.logger(), ctx.store(), import('../../scheduler/state.js')]);
    env = { store, records: await SchedulerState.of(config).records(logger) };
  } catch (err) {
    // The listing is the original's and needs neither: it goes on without the counts.
    warn('cannot tell what the purge jobs delete at their next runs', err);
    return none;
  }
  const { forecastPurge } = await import('../../scheduler/forecast.js');
  const now = new Date();
  const forecasts: Array<PurgeForecast | null> = [];
  for (const entry of entries) {
    try {
      const f = await forecastPurge(env, entry, now);
      forecasts.push(f && f.plan.decisions.length > 0 ? f : null);
    } catch (err) {
      warn(`${entry.action} of ${entry.name}: cannot tell what its next run deletes`, err);
      forecasts.push(null);
    }
  }
  return forecasts;
}

async function runPass(ctx: CommandContext, now: Date | undefined): Promise<void> {
  // The store comes from the same (ESM) build as the scheduler, not from the
  // CLI's bundle (scripts/bundle-cli.mjs), so the pass uses one copy of each module.
  const [config, logger, { runSchedulerPass }, { openStore }] = await Promise.all([
    ctx.config(),
    ctx.logger(),
    import('../../scheduler/pass.js'),
    import('../../store/open.js'),
  ]);
  const store = await openStore(config);
  const report = await runSchedulerPass({ config, store, logger, test: ctx.options['test'] === true }, now ? { now } : {});
  if (report.paused) process.stderr.write('buttervolume: scheduled: the schedule is globally paused: no job ran\n');
  // An invalid line did not run, and is not ok: the job it meant never runs.
  const state = (job: (typeof report.jobs)[number]) => (job.ok ? (job.ran ? 'ok' : 'skipped') : job.ran ? 'failed' : 'invalid');
  ctx.out.result(
    report.jobs.map((job) => {
      const why = [job.detail, job.error].filter(Boolean).join('; ');
      return `${state(job)} ${job.action} ${job.name}${why ? `: ${why}` : ''}`;
    }),
    { now: now?.toISOString() ?? null, paused: report.paused, jobs: report.jobs },
  );
  const failed = report.jobs.filter((job) => !job.ok).length;
  if (failed > 0) throw new CliError(`${failed} of ${report.jobs.length} scheduled job${report.jobs.length > 1 ? 's' : ''} failed or invalid`);
}

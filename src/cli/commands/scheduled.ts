// `buttervolume scheduled [list|pause|resume|run]`. `list` prints the
// original's lines `<action> <timer> <volume> ` / `... (paused)`, which can be
// pasted back after `buttervolume schedule`. `run` runs one scheduler pass
// in this process (the scheduler is loaded only then).
import { formatScheduledLine, SCHEDULE_PAUSED_MESSAGE, ScheduleFile } from '../../scheduler/schedule-file.js';
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
  ctx.out.result(entries.map(formatScheduledLine), {
    jobs: entries.map(({ name, action, timer, active }) => ({ name, action, timer, active })),
    problems,
  });
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

// `buttervolume schedule <action> <timer> <volume>`: changes schedule.csv
// in place (atomically); a running daemon reads it at its next tick. Prints
// nothing, as the original. Unlike the original, a bad action or timer, or
// pausing a job that does not exist, is refused instead of silently ignored.
import { ScheduleFile } from '../../scheduler/schedule-file.js';
import type { CommandContext } from '../context.js';

/** Adds, replaces, pauses, resumes or deletes the job (volume, action). */
export async function run(ctx: CommandContext, [action, timer, volume]: readonly string[]): Promise<void> {
  const config = await ctx.config();
  await new ScheduleFile(config.schedulePath).update({ name: volume!, action: action!, timer: timer! });
}

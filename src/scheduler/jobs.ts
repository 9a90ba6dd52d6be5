// What each scheduled action does. Local btrfs work runs in the state's
// local pool and talking to peers in its remote pool, so a send that hangs
// for half an hour holds a remote slot only: other volumes' snapshots and
// purges keep their pace. The caller holds the volume (no two jobs of one
// volume at once) and records the outcome.
import type { Logger } from '../log.js';
import type { VolumeStore } from '../store/volume-store.js';
import type { Replicator } from '../replication/replicator.js';
import { parseAction, type ScheduleEntry } from './schedule-file.js';
import type { SchedulerState } from './state.js';
import { superseded } from './unsent.js';

/** What a job needs. */
export interface JobEnv {
  store: VolumeStore;
  logger: Logger;
  replicator: Replicator;
  state: SchedulerState;
  /** Replicate into the peers' TEST_REMOTE_PATH (the original's test mode). */
  test?: boolean;
}

/** How a job went; an exception thrown by {@link executeJob} is a failure too. */
export interface JobOutcome {
  ok: boolean;
  /** What was done, one line. */
  detail?: string;
  /** Why it failed, one line. */
  error?: string;
  /** `replicate:` only: the snapshot this job took and still has to send. */
  unsent?: string;
}

/** One line of text for an error of any kind. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Run the action of `entry` once, evaluated at `now` (purge ages), given the
 * snapshot this job left unsent last time (`unsent`, `replicate:` only).
 * @throws what the store throws for `snapshot`, `purge`, and the snapshot
 *   step of `replicate` and `synchronize` (e.g. ERR_VOLUME_NOT_FOUND).
 */
export async function executeJob(env: JobEnv, entry: ScheduleEntry, now: Date, unsent: string | undefined): Promise<JobOutcome> {
  const { store, state } = env;
  const action = parseAction(entry.action);
  switch (action.kind) {
    case 'snapshot': {
      const snapshot = await state.local.run(() => store.snapshot(entry.name));
      return { ok: true, detail: `took ${snapshot}` };
    }
    case 'purge': {
      const kept: string[] = []; // what a volume made from it needs (`-o from=`), with why
      const deleted = await state.local.run(() => store.purge(entry.name, action.pattern, { now, onKept: (s, why) => kept.push(`${s} (${why})`) }));
      return { ok: true, detail: `deleted ${deleted.length} snapshot${deleted.length === 1 ? '' : 's'}${kept.length > 0 ? `; kept ${kept.join(', ')}` : ''}` };
    }
    case 'replicate':
      return replicate(env, entry.name, action.host, unsent);
    case 'synchronize': {
      // As the original: a snapshot first, so what the pull overwrites is kept (one remote slot for both).
      const hosts = [...action.hosts];
      try {
        const { snapshot } = await state.remote.run(() => env.replicator.snapshotAndSync(entry.name, hosts, { test: env.test ?? false }));
        return { ok: true, detail: `took ${snapshot}, synchronized from ${hosts.join(', ')}` };
      } catch (err) {
        const snapshot = (err as { snapshot?: string }).snapshot;
        if (snapshot === undefined) throw err; // the snapshot step failed (no such volume...)
        return { ok: false, detail: `took ${snapshot}`, error: `synchronize from ${hosts.join(', ')} failed: ${errorText(err)}` };
      }
    }
  }
}

async function replicate(env: JobEnv, volume: string, host: string, previous: string | undefined): Promise<JobOutcome> {
  const { store, state, logger } = env;
  const { snapshot, reused } = await state.local.run(async () => {
    const names = await store.snapshots(volume);
    const again = await store.unsentSnapshot(volume, host);
    const snapshot = again ?? (await store.snapshot(volume));
    if (superseded(previous, snapshot, names)) {
      await store.removeSnapshot(previous).then(
        () => logger.info(`replicate:${host} of ${volume}: deleted ${previous}, never sent and superseded by ${snapshot}`),
        (err: unknown) => logger.warning(`replicate:${host} of ${volume}: cannot delete superseded ${previous}: ${errorText(err)}`),
      );
    }
    return { snapshot, reused: again !== null };
  });
  // Only a snapshot this job took is its to delete later, never one of a
  // `snapshot` job or of a user that it merely sent.
  const mine = !reused || snapshot === previous;
  try {
    await state.remote.run(() => env.replicator.send(snapshot, host, { test: env.test ?? false }));
  } catch (err) {
    return {
      ok: false,
      detail: `${reused ? 'kept' : 'took'} ${snapshot}`,
      error: `send of ${snapshot} to ${host} failed: ${errorText(err)}; the next run sends it again if the volume has not changed`,
      ...(mine ? { unsent: snapshot } : {}),
    };
  }
  return { ok: true, detail: `${reused ? 'sent the unsent' : 'took and sent'} ${snapshot} to ${host}` };
}

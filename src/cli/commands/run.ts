// `buttervolume run`: the plugin daemon in the foreground, with the
// scheduler hooked into it. The server and the scheduler are imported here
// only, never on the path of the short commands. A signal closes the daemon
// cleanly (requests in flight finish, the scheduler stops, the socket goes)
// and the process exits 0; the original exited 1 after its signal handler,
// which made every stop look like a crash to a supervisor.
import type { CommandContext } from '../context.js';

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const;

/** Serves until a signal, then closes; resolves once closed, rejects if the start or the close fails. */
export async function run(ctx: CommandContext): Promise<void> {
  const [config, logger, { runDaemon }, { Scheduler }] = await Promise.all([
    ctx.config(),
    ctx.logger('daemon'),
    import('../../server/daemon.js'),
    import('../../scheduler/scheduler.js'),
  ]);
  let stopping = false;
  let failClose!: (err: unknown) => void;
  const closeFailed = new Promise<never>((_, reject) => (failClose = reject));
  closeFailed.catch(() => undefined);
  let close: (() => Promise<void>) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal: the operator does not want to wait for the close.
      logger.error(`${signal} again while closing: exiting now`);
      process.exit(1);
    }
    logger.info(`${signal} received: closing`);
    stopping = true;
    close?.().catch(failClose);
  };
  // Installed before the start, so a signal then is not the default (death without cleanup).
  for (const signal of SIGNALS) process.on(signal, onSignal);
  try {
    const daemon = await runDaemon(config, {
      logger,
      onStarted: (store, replicator) => {
        const scheduler = new Scheduler({ config, store, logger, replicator });
        logger.info(`Starting scheduler job every ${config.timerSeconds}s`);
        scheduler.start();
        return scheduler;
      },
    });
    // Not runDaemon's `signal` option: its abort path leaves a failed close unhandled.
    close = () => daemon.close();
    if (stopping) close().catch(failClose); // the signal came during the start
    await Promise.race([daemon.closed, closeFailed]);
  } finally {
    for (const signal of SIGNALS) process.off(signal, onSignal);
  }
}

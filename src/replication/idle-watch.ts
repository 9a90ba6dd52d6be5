// A request's peer must keep the transfer moving: a peer that stops sending
// a stream we are reading, or stops reading one we are writing, would
// otherwise hold its channel, a receive thread, a temporary subvolume and
// the volume's lock for as long as it likes (SSH keepalives only find a
// dead link, not a live peer that says nothing). Time spent waiting on our
// own side (the input paused because the receiver is busy) does not count.
import { Duplex } from 'node:stream';

import { ReplicationError } from './protocol.js';

/** Stops watching (idempotent). */
export type StopWatch = () => void;

/**
 * Calls `onIdle` (once) when `stream` has waited `idleMs` for its peer:
 * flowing and nothing read, or a write waiting for the peer's window and no
 * 'drain'. Only a stream being read in flowing mode counts as waiting for
 * input: a stream nobody reads (paused, or not yet read) waits for nothing.
 */
export function watchIdle(stream: Duplex, idleMs: number, onIdle: (err: ReplicationError) => void): StopWatch {
  let last = Date.now();
  const progress = () => {
    last = Date.now();
  };
  const waitingForPeer = () => {
    const input = stream.readableFlowing === true && !stream.readableEnded;
    return input || stream.writableNeedDrain;
  };
  const tick = setInterval(
    () => {
      if (!waitingForPeer()) return progress();
      if (Date.now() - last < idleMs) return;
      stop();
      onIdle(new ReplicationError('ERR_PEER_TIMEOUT', `the peer sent or took nothing for ${Math.round(idleMs / 1000)} s (REPLICATION_IDLE_TIMEOUT): aborted`));
    },
    Math.min(1000, Math.max(50, idleMs / 4)),
  );
  tick.unref();
  // 'data' listeners are added only while someone reads (prepend: counted before it is consumed).
  const onResume = () => {
    if (stream.listenerCount('data') > 0 && !stream.listeners('data').includes(progress)) stream.prependListener('data', progress);
  };
  stream.on('resume', onResume);
  if (stream.readableFlowing === true) onResume();
  stream.on('drain', progress);
  const stop: StopWatch = () => {
    clearInterval(tick);
    stream.off('data', progress);
    stream.off('resume', onResume);
    stream.off('drain', progress);
    stream.off('close', stop);
  };
  stream.once('close', stop);
  return stop;
}

/**
 * Ends a request whose peer stalls: the channel is closed towards the peer
 * (ssh2's close(); ssh2's own destroy() only asks the peer to close, and a
 * stalling peer may never answer) and destroyed here with `err` (Node's
 * destroy), so whatever reads or writes it (a receive, a send) fails with
 * `err` at once and lets go of its thread, temporary subvolume and lock.
 */
export function abortChannel(channel: Duplex & { close?(): unknown }, err: Error): void {
  channel.on('error', () => undefined); // reported by the request that fails with it
  channel.close?.();
  Duplex.prototype.destroy.call(channel, err);
}

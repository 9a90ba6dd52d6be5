// What the daemon measures, told to whoever listens (the metrics exporter,
// when METRICS_ADDRESS is set). Every layer reports here without knowing of
// the exporter; with no listener a report costs one check and is dropped, so
// nothing accumulates in a daemon without metrics.

/** One thing that happened, as the layers report it. */
export type TelemetryEvent =
  /** A plugin API request answered (endpoint: the route's path, or "other"). */
  | { kind: 'request'; endpoint: string; seconds: number; ok: boolean }
  /** A replication transfer with a peer ended: bytes of the stream, sent or received; ok false: it failed. */
  | { kind: 'replication'; peer: string; volume: string; direction: 'sent' | 'received'; bytes: number; ok: boolean }
  /** A scheduled job ran (action: snapshot, replicate, purge, synchronize). */
  | { kind: 'scheduled'; action: string; volume: string; ok: boolean };

type Listener = (event: TelemetryEvent) => void;

let listener: Listener | null = null;

/** Reports `event` to the listener, if any. Never throws: measuring must not break what is measured. */
export function report(event: TelemetryEvent): void {
  if (listener === null) return;
  try {
    listener(event);
  } catch {
    // a listener's bug is not the caller's failure
  }
}

/** Makes `fn` the listener (one at a time); returns what stops it. */
export function listen(fn: Listener): () => void {
  listener = fn;
  return () => {
    if (listener === fn) listener = null;
  };
}

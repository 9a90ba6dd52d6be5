// Per-key serial execution inside one process: tasks for the same key run one
// after the other, in call order; a failing task does not stop the queue.
const queues = new Map<string, Promise<unknown>>();

/** Runs `task` after every task queued before it for `key`. */
export function enqueue<T>(key: string, task: () => Promise<T>): Promise<T> {
  const run = (queues.get(key) ?? Promise.resolve()).then(task);
  const tail = run.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

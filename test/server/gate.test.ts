// The admission gate of heavy requests: a cap on concurrent tasks, one task
// at a time per key, in arrival order, and slots given back on failure.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import { threadPoolSize, WorkGate } from '../../src/server/gate.js';

/** A task that records when it runs and finishes when told. */
function task(log: string[], name: string) {
  let finish!: (value: string) => void;
  let fail!: (err: Error) => void;
  const started = { value: false };
  const run = () => {
    started.value = true;
    log.push(`start ${name}`);
    return new Promise<string>((resolve, reject) => {
      finish = (v) => {
        log.push(`end ${name}`);
        resolve(v);
      };
      fail = reject;
    });
  };
  return { run, started, finish: (v = name) => finish(v), fail: (e: Error) => fail(e) };
}

t.test('threadPoolSize reads UV_THREADPOOL_SIZE as libuv does', async (t) => {
  t.equal(threadPoolSize({}), 4);
  t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '16' }), 16);
  t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '0' }), 4);
  t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: 'lots' }), 4);
  t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '5000' }), 1024);
  t.equal(new WorkGate().slots, Math.max(1, threadPoolSize() - 1), 'one pool thread is kept for light requests');
});

t.test('at most `slots` tasks at once; a freed slot goes to the first waiter', async (t) => {
  const gate = new WorkGate(2);
  const log: string[] = [];
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => task(log, n)) as [ReturnType<typeof task>, ReturnType<typeof task>, ReturnType<typeof task>, ReturnType<typeof task>];
  const runs = [gate.run('va', a.run), gate.run('vb', b.run), gate.run('vc', c.run), gate.run('vd', d.run)];
  await sleep(10);
  t.same(log, ['start a', 'start b']);
  t.equal(gate.running, 2);
  b.finish();
  await sleep(10);
  t.same(log.slice(2), ['end b', 'start c'], 'c, the first waiter, gets the slot');
  a.fail(new Error('boom'));
  await t.rejects(runs[0]!, { message: 'boom' });
  await sleep(10);
  t.equal(log.at(-1), 'start d', 'a failing task gives its slot back');
  c.finish();
  d.finish();
  t.same(await Promise.all(runs.slice(1)), ['b', 'c', 'd']);
  t.equal(gate.running, 0);
});

t.test('tasks of one key run one after the other without holding slots while they wait', async (t) => {
  const gate = new WorkGate(2);
  const log: string[] = [];
  const [v1, v2, w] = ['v1', 'v2', 'w'].map((n) => task(log, n)) as [ReturnType<typeof task>, ReturnType<typeof task>, ReturnType<typeof task>];
  const p1 = gate.run('v', v1.run);
  const p2 = gate.run('v', v2.run);
  const pw = gate.run('w', w.run);
  await sleep(10);
  t.same(log, ['start v1', 'start w'], 'the second task of v waits, w runs in the other slot');
  t.equal(gate.running, 2);
  v1.fail(new Error('v1 failed'));
  await t.rejects(p1);
  await sleep(10);
  t.equal(log.at(-1), 'start v2', 'the next task of v runs after a failure too');
  v2.finish();
  w.finish();
  t.same(await Promise.all([p2, pw]), ['v2', 'w']);
  t.equal((gate as unknown as { tails: Map<string, unknown> }).tails.size, 0, 'no key left behind');
});

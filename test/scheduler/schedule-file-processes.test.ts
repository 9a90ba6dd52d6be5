// Several processes changing schedule.csv at once (the CLI's `schedule` and
// the daemon's Schedule endpoint): no change is lost.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import { packageRoot } from '../../src/btrfs/binding.js';
import { ScheduleFile } from '../../src/scheduler/schedule-file.js';

const script = `
const { ScheduleFile } = await import(process.env.BV_DIST + '/scheduler/schedule-file.js');
const file = new ScheduleFile(process.argv[1]);
for (let i = 0; i < 25; i++) await file.update({ name: process.argv[2] + i, action: 'snapshot', timer: '60' });
`;

t.test('four processes adding 25 jobs each: all 100 are in the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bv-schedule-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'etc', 'schedule.csv');
  const children = ['a', 'b', 'c', 'd'].map((prefix) =>
    spawn(process.execPath, ['--input-type=module', '-e', script, path, prefix], {
      env: { ...process.env, BV_DIST: join(packageRoot, 'dist') },
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
  const codes = await Promise.all(children.map(async (c) => (await once(c, 'exit'))[0]));
  t.same(codes, [0, 0, 0, 0]);
  const { entries, problems } = await new ScheduleFile(path).read();
  t.same(problems, []);
  t.equal(entries.length, 100);
  t.equal(new Set(entries.map((e) => e.name)).size, 100);
});

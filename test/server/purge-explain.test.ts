// Snapshots.Purge with `Explain`: the answer adds `At` and `Explanation`
// (each snapshot with KEEP or DELETE and why: the plan the purge carried
// out), and the daemon deletes exactly the DELETE ones. Without `Explain`
// the answer is the one it always was.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { formatTimestamp } from '../../src/util/timestamp.js';
import { startTestDaemon } from '../fixtures/daemon.js';

const H = 3600e3;

t.test('Snapshots.Purge explains when asked, and does what it explains', async (t) => {
  const d = await startTestDaemon(t);
  const { snapshotsPath, dtFormat } = d.config;
  t.equal((await d.call('/VolumeDriver.Create', { Name: 'db' })).body.Err, '');
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const names: string[] = [];
  for (let h = 19; h >= 0; h--) {
    const name = `db@${formatTimestamp(new Date(now.getTime() - h * H), dtFormat)}`;
    await btrfs.snapshot(join(d.config.volumesPath, 'db'), join(snapshotsPath, name), { readonly: true });
    names.push(name);
  }
  const marker = `${names[5]}@node2`; // sent 14 h ago
  await btrfs.snapshot(join(d.config.volumesPath, 'db'), join(snapshotsPath, marker), { readonly: true });
  const purge = (body: Record<string, unknown>) => d.call('/VolumeDriver.Snapshots.Purge', { Name: 'db', Pattern: '2h:2h', Now: now.toISOString(), ...body });

  let r = await purge({ Dryrun: true });
  t.same(Object.keys(r.body).sort(), ['Err', 'Purged'], 'without Explain: the answer as before');
  const purged = r.body.Purged as string[];

  r = await purge({ Dryrun: true, Explain: true });
  t.same([r.status, r.body.Err, r.body.Purged, r.body.At], [200, '', purged, now.toISOString()]);
  const explanation = r.body.Explanation as Array<{ Name: string; Decision: string; Reason: string; Rule: { kind: string } }>;
  t.same(explanation.map((e) => e.Name), [...names, marker].sort(), 'every snapshot of the volume, by name');
  t.same(explanation.filter((e) => e.Decision === 'DELETE').map((e) => e.Name).sort(), [...purged].sort(), 'DELETE: what Purged lists');
  t.equal(purged.length, 17, '2h:2h on 20 hourly snapshots: all from 2 h on, less the newest marker and what it marks');
  t.match(explanation.find((e) => e.Name === names[5]), {
    Decision: 'KEEP',
    Reason: /^kept for peer node2's next incremental \(the newest snapshot sent to it\) \(the pattern alone would delete it: /,
    Rule: { kind: 'replication', role: 'sent', peer: 'node2' },
    Pattern: { decision: 'DELETE' },
    Protections: [{ rule: { kind: 'replication', role: 'sent', peer: 'node2' } }],
  });
  t.match(explanation.find((e) => e.Name === names[19]), { Decision: 'KEEP', Reason: 'younger than 2h', Rule: { kind: 'younger', than: '2h' } });
  t.equal(readdirSync(snapshotsPath).length, 21, 'a dry run deletes nothing');

  r = await purge({ Explain: true });
  t.same([r.status, r.body.Err, r.body.Purged], [200, '', purged]);
  t.same(r.body.Explanation, explanation, 'the same plan, carried out');
  t.same(readdirSync(snapshotsPath).sort(), explanation.filter((e) => e.Decision === 'KEEP').map((e) => e.Name), 'what is left is the KEEP set');

  r = await purge({ Explain: 'yes' });
  t.same([r.status, r.body], [500, { Err: 'Explain must be true or false, got a string' }]);
  r = await purge({ explain: true });
  t.equal(r.body.Err, 'unknown field "explain"; did you mean "Explain"?');
});

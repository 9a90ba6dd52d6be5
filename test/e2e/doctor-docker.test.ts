// `buttervolume doctor` against a real dockerd (its own legacy plugin
// directory): the driver not loaded yet (a warning: Swarm would place nothing
// needing it here), then known once `docker volume ls` has loaded it; a local
// volume of Docker holding the name of one of ours (what dockerd makes when it
// starts before the plugin) fails; the doctor's own questions reach no plugin.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import { startDockerd, uniqueDriverName } from '../fixtures/docker.js';
import { cliFixture, startRun } from '../cli/fixtures/cli.js';

interface Finding {
  check: string;
  status: 'OK' | 'WARN' | 'FAIL';
  message: string;
  fix?: string;
}

t.test('Docker knows the driver once used; a local volume named as ours fails', async (t) => {
  const f = await cliFixture(t);
  const pluginDir = mkdtempSync(join(tmpdir(), 'bv-doctor-plugins-'));
  t.teardown(() => rmSync(pluginDir, { recursive: true, force: true }));
  mkdirSync(pluginDir, { recursive: true });
  const driver = uniqueDriverName('bv-doctor');
  const env = { ...f.env, BUTTERVOLUME_SOCKET: join(pluginDir, `${driver}.sock`), BUTTERVOLUME_LOGLEVEL: 'DEBUG' };
  const daemon = await startRun(t, env);
  const e = await startDockerd(t, { pluginDir });
  const doctor = async () => {
    const r = await f.bv(['doctor', '--json'], { ...env, DOCKER_HOST: e.host });
    const checks = (JSON.parse(r.stdout) as { checks: Finding[] }).checks;
    return { code: r.code, of: (check: string) => checks.find((c) => c.check === check)! };
  };

  await f.volume('db');
  let d = await doctor();
  t.equal(d.of('docker').status, 'WARN');
  t.match(d.of('docker').message, new RegExp(`has not loaded the volume driver ${driver} \\(drivers: local\\): it does at its first use, and until then Swarm places no task needing it on this node`));
  t.match(d.of('docker').fix, /^docker volume ls/);
  t.equal(d.of('docker-volumes').status, 'OK');
  t.equal(d.of('socket').status, 'OK');
  t.equal(d.code, 0, 'warnings only');

  // A local volume holding the name of one of ours (as dockerd makes for a
  // container when it cannot reach the plugin): made while Docker has not
  // asked our plugin yet, so that removing it later removes Docker's only.
  await e.docker(['volume', 'create', '--driver', 'local', 'shadow']);
  await f.volume('shadow');
  d = await doctor();
  t.equal(d.of('docker-volumes').status, 'FAIL');
  t.match(d.of('docker-volumes').message, /Docker has local volumes named as volumes here: shadow \(/);
  t.match(d.of('docker-volumes').fix, /docker volume rm shadow/);
  t.equal(d.code, 1);
  await e.docker(['volume', 'rm', 'shadow']);
  t.ok((await f.store.list()).some((v) => v.name === 'shadow'), 'ours is still there');
  d = await doctor();
  t.equal(d.of('docker-volumes').status, 'OK');
  // Docker's requests (the doctor itself only sends Plugin.Activate, to tell a live socket).
  const asked = () => daemon.stderr().split('\n').filter((l) => /DEBUG POST \/VolumeDriver\./.test(l)).length;
  t.equal(asked(), 0, "the doctor's questions to Docker reached no plugin");

  await e.docker(['volume', 'ls']);
  t.ok(asked() > 0, 'docker volume ls did');
  d = await doctor();
  t.equal(d.of('docker').status, 'OK');
  t.match(d.of('docker').message, new RegExp(`knows the volume driver ${driver}`));
});

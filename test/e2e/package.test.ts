// The npm package as a user installs it: `npm pack` of this checkout (dist/
// is built by `npm test`'s pretest, so no prepack here), then
// scripts/check-package.sh --warm-cache: what the tarball holds (what runs,
// both prebuilds; no tests, benches, fixtures, docs), `npm install -g` into a
// temporary prefix with no compiler on PATH (CC=CXX=/bin/false) and no addon
// build (the prebuild is taken), then the installed `buttervolume --version`,
// `buttervolume run` on a loop btrfs, a volume created over its socket,
// `buttervolume snapshot` and a clean stop. .ci/run runs the same script with
// an empty npm cache (the cold install a new user gets) and prints its times.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import { ROOT, runProgram } from '../fixtures/managed-plugin.js';

t.test('npm pack, npm install -g without a compiler, buttervolume run and snapshot from the installed package', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'bv-pack-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const pack = await runProgram('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', out], { cwd: ROOT, timeoutMs: 120_000 });
  t.equal(pack.code, 0, `npm pack ${pack.stderr.trim()}`);
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.same(readdirSync(out), [`buttervolume-${version}.tgz`], 'one tarball, named after the version');

  const check = await runProgram('bash', [join(ROOT, 'scripts/check-package.sh'), '--warm-cache', join(out, `buttervolume-${version}.tgz`)], { timeoutMs: 400_000 });
  t.comment(check.stderr.trim());
  t.equal(check.code, 0, 'scripts/check-package.sh passes');
  t.match(check.stderr, /no tests, benches, fixtures, docs/, 'the package holds only what runs');
  t.match(check.stderr, /addon from prebuilds\/ \(no build\/\)/, 'installed without compiling the addon');
  t.match(check.stderr, new RegExp(`ok: buttervolume ${version.replaceAll('.', '\\.')}; buttervolume run answered on its socket, VolumeDriver\\.Create made pkgcheck, buttervolume snapshot made pkgcheck@\\S+ \\(read-only\\), ssh-key printed its key, SIGTERM stopped it \\(exit 0\\)`), 'the installed command runs the daemon, makes a snapshot, and runs a peer command (ssh-key, from the peer bundle)');
  t.match(check.stderr, /npm install -g -> snapshot done: \d+ ms/, 'timed');
});

// The package entry `buttervolume/btrfs` as a user imports it, under strace:
// a create/snapshot/list/info/delete sequence spawns no process.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import { packageRoot } from '../../src/btrfs/binding.js';
import { mountBtrfs } from '../fixtures/btrfs.js';

const { mnt } = mountBtrfs(t);

const script = `
import * as btrfs from 'buttervolume/btrfs';
const mnt = process.argv[1];
await btrfs.createSubvolume(mnt + '/v');
await btrfs.createSubvolume(mnt + '/v/nested', { nocow: true });
await btrfs.snapshot(mnt + '/v', mnt + '/v@1', { readonly: true });
const list = await btrfs.listSubvolumes(mnt);
const info = await btrfs.subvolumeInfo(mnt + '/v@1');
await btrfs.setCompression(mnt + '/v', 'zstd');
await btrfs.syncFilesystem(mnt);
const l = await btrfs.lock(mnt + '/v.lock');
l.release();
await btrfs.deleteSubvolume(mnt + '/v@1');
await btrfs.deleteSubvolume(mnt + '/v', { recursive: true });
console.log(JSON.stringify({ names: list.map((e) => e.name), readonly: info.readonly, left: (await btrfs.listSubvolumes(mnt)).length }));
`;

t.test('create/snapshot/list/delete through the package export spawn nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bv-strace-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const trace = join(dir, 'trace');
  // cwd = the package: `buttervolume/btrfs` resolves through package.json "exports".
  const out = execFileSync(
    'strace',
    ['-f', '-qq', '-e', 'trace=execve,execveat,fork,vfork', '-o', trace, process.execPath, '--input-type=module', '-e', script, mnt],
    { cwd: packageRoot, encoding: 'utf8' },
  );
  t.same(JSON.parse(out), { names: ['v', 'v@1'], readonly: true, left: 0 });
  const calls = readFileSync(trace, 'utf8').split('\n').filter((l) => /exec|fork/.test(l));
  t.equal(calls.length, 1, `only node itself was executed:\n${calls.join('\n')}`);
  t.match(calls[0], /execve\("[^"]*node"/);
});

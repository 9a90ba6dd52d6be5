// The SSH material this host makes for itself: every key it generates must
// be one it can read back (ssh2's generator makes an unreadable ed25519 key
// about once in 250), and the daemon's start checks existing keys without
// loading ssh2.
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';
import ssh2 from 'ssh2';

import { clientKey, ensureKeyFiles, HOST_KEY_FILE, hostKey } from '../../src/replication/keys.js';

function scratch(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bv-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('every generated key reads back (1,000 host keys)', async (t) => {
  const dir = scratch(t);
  let unreadable = 0;
  for (let i = 0; i < 1000; i++) {
    const text = await hostKey(dir);
    const key = ssh2.utils.parseKey(text);
    if (key instanceof Error || !key.isPrivateKey()) unreadable++;
    unlinkSync(join(dir, HOST_KEY_FILE));
  }
  t.equal(unreadable, 0);
});

t.test('ensureKeyFiles makes both keys once and refuses a file that is not a private key', async (t) => {
  const dir = scratch(t);
  await ensureKeyFiles(dir);
  const host = readFileSync(join(dir, HOST_KEY_FILE), 'utf8');
  const client = await clientKey(dir);
  t.equal(client.path, join(dir, 'id_ed25519'));
  t.match(client.publicLine, /^ssh-ed25519 [A-Za-z0-9+/=]+$/);
  await ensureKeyFiles(dir);
  t.equal(readFileSync(join(dir, HOST_KEY_FILE), 'utf8'), host, 'an existing key is kept');
  t.equal((await clientKey(dir)).privateKey, client.privateKey);
  writeFileSync(join(dir, HOST_KEY_FILE), 'ssh-ed25519 AAAA... a public key where the private one belongs\n');
  await t.rejects(ensureKeyFiles(dir), { code: 'ERR_SSH_KEY', message: `${join(dir, HOST_KEY_FILE)} is not an unencrypted private key` });
});

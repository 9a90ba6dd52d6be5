// The doctor's checks of the SSH material in SSH_PATH: the directory, the
// host key (when this host serves peers, SSH_PORT not 0), the client key,
// authorized_keys and known_hosts, present and safe: a private key only its
// owner reads, no file or directory others may write (a key added by someone
// else is a peer let in). Nothing is created: the daemon makes missing keys
// at its start.
import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import type { Config } from '../../config.js';
import { authorizedKeys, AUTHORIZED_KEYS_FILE } from '../../replication/authorized-keys.js';
import { HOST_KEY_FILE, KNOWN_HOSTS_FILE } from '../../replication/keys.js';
import { errCode } from '../../util/err-code.js';
import { fail, ok, warn, why, type Finding } from './report.js';

const octal = (mode: number): string => `0${(mode & 0o777).toString(8)}`;
const START = 'start the daemon (it makes the missing keys at its start)';

async function statOf(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return null;
    throw err;
  }
}

/** A private key: there, only its owner's, and a key. */
async function privateKey(check: string, path: string, what: string): Promise<Finding> {
  const st = await statOf(path);
  if (!st) return warn(check, `no ${what} (${path})`, START);
  if ((st.mode & 0o077) !== 0) return fail(check, `${path} (${what}) has mode ${octal(st.mode)}: others may read it`, `chmod 600 ${path}`);
  if (st.uid !== process.geteuid?.()) return warn(check, `${path} (${what}) belongs to uid ${st.uid}, not to this user`, `chown root: ${path} (the daemon runs as root)`);
  const text = await readFile(path, 'utf8');
  if (!/^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return fail(check, `${path} (${what}) is not a private key in OpenSSH or PEM format`, `replace it with an unencrypted private key, or remove it: the daemon then makes one (${what === 'client key' ? 'peers must then authorize the new one' : 'peers then see a new host key'})`);
  return ok(check, `${path} (${what}): mode ${octal(st.mode)}`);
}

/** A file others must not write: authorized_keys, known_hosts. */
function notWritableByOthers(check: string, path: string, mode: number): Finding | null {
  return (mode & 0o022) !== 0 ? fail(check, `${path} has mode ${octal(mode)}: others may write it, and so let a key in`, `chmod 644 ${path}`) : null;
}

/** The SSH material; `peers`: whether this host replicates with any (schedule, replicated volumes). */
export async function sshChecks(config: Config, peers: boolean): Promise<Finding[]> {
  const dir = config.sshPath;
  const serving = config.sshPort !== 0;
  try {
    const st = await statOf(dir);
    if (!st) {
      return serving || peers
        ? [warn('ssh-dir', `SSH_PATH ${dir} does not exist: no keys yet`, START)]
        : [ok('ssh-dir', `SSH_PATH ${dir} does not exist: not used (SSH_PORT 0, no peer scheduled or replicated)`)];
    }
    const findings: Finding[] = [];
    if (!st.isDirectory()) return [fail('ssh-dir', `SSH_PATH ${dir} is not a directory`, 'remove it, or set SSH_PATH to a directory')];
    if ((st.mode & 0o022) !== 0) findings.push(fail('ssh-dir', `SSH_PATH ${dir} has mode ${octal(st.mode)}: others may replace the keys in it`, `chmod 700 ${dir}`));
    else findings.push(ok('ssh-dir', `SSH_PATH ${dir}: mode ${octal(st.mode)}`));
    if (serving) findings.push(await privateKey('host-key', join(dir, HOST_KEY_FILE), 'host key'));
    const ed25519 = join(dir, 'id_ed25519');
    const rsa = join(dir, 'id_rsa');
    findings.push(await privateKey('client-key', (await statOf(ed25519)) || !(await statOf(rsa)) ? ed25519 : rsa, 'client key'));
    findings.push(await authorizedKeysCheck(dir, serving, peers));
    const known = join(dir, KNOWN_HOSTS_FILE);
    const kst = await statOf(known);
    if (kst) findings.push(notWritableByOthers('known-hosts-file', known, kst.mode) ?? ok('known-hosts-file', `${known}: mode ${octal(kst.mode)}`));
    return findings;
  } catch (err) {
    return [warn('ssh-dir', `SSH_PATH ${dir} cannot be read: ${why(err)}`, 'run buttervolume doctor as root')];
  }
}

async function authorizedKeysCheck(dir: string, serving: boolean, peers: boolean): Promise<Finding> {
  const path = join(dir, AUTHORIZED_KEYS_FILE);
  if (!serving) return ok('authorized-keys', 'SSH_PORT is 0: no SSH server, no peer connects here');
  const st = await statOf(path);
  const fix = `on each peer, run buttervolume ssh-key and add the line it prints to ${path}`;
  if (!st) {
    return peers
      ? warn('authorized-keys', `no ${path}: no peer may connect here (to send to this host, fetch from it, or hand a replicated volume over)`, fix)
      : ok('authorized-keys', `no ${path}: no peer may connect here`);
  }
  const unsafe = notWritableByOthers('authorized-keys', path, st.mode);
  if (unsafe) return unsafe;
  const { keys, problems } = await authorizedKeys(dir);
  if (problems.length > 0) return warn('authorized-keys', `${keys.length} key${keys.length === 1 ? '' : 's'}, and ${problems.length} line${problems.length === 1 ? '' : 's'} ignored: ${problems.join('; ')}`, 'correct or remove those lines');
  return ok('authorized-keys', `${keys.length} key${keys.length === 1 ? '' : 's'} in ${path}`);
}

// Which node a replica spec names: its host, and whether it is this node.
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

import { parsePeer } from './peer.js';

/** The host a peer spec names; the spec itself when it cannot be read (it is then unreachable, with the reason). */
export function hostOf(spec: string, sshPort: number): string {
  try {
    return parsePeer(spec, sshPort).host;
  } catch {
    return spec;
  }
}

/** Whether `spec` names this node: by NODE_NAME (`me`), or by one of its addresses (`10.0.0.1`, `[fe80::1]`). */
export function isSelf(spec: string, me: string, sshPort: number): boolean {
  const host = hostOf(spec, sshPort).toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host === me.toLowerCase()) return true;
  if (isIP(host) === 0) return false;
  const address = host.replace(/^::ffff:(?=\d+\.)/, '');
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.address.toLowerCase() === address));
}

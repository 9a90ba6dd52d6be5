// What the replication chain needs: for each host, the newest send marker
// `<volume>@<date>@<host>` and the snapshot `<volume>@<date>` it marks. The
// next incremental send uses that snapshot as its parent, so purging it
// would silently turn the next send into a full one (a bug of the original).
// On the receiving host, the newest snapshot received from a peer is the
// parent the peer's next incremental needs: it is kept too.
import { isSendMarker } from './names.js';

/**
 * The names among `names` (snapshots of one volume) that purge must keep;
 * `received` are those of them that were received from a peer.
 */
export function replicationKeep(names: readonly string[], received: readonly string[] = []): Set<string> {
  const newestByHost = new Map<string, string>();
  for (const name of names) {
    if (!isSendMarker(name)) continue;
    const host = name.slice(name.lastIndexOf('@') + 1);
    const current = newestByHost.get(host);
    if (current === undefined || name > current) newestByHost.set(host, name);
  }
  const keep = new Set<string>();
  for (const marker of newestByHost.values()) {
    keep.add(marker);
    keep.add(marker.slice(0, marker.lastIndexOf('@')));
  }
  let newestReceived: string | undefined;
  for (const name of received) if (!isSendMarker(name) && (newestReceived === undefined || name > newestReceived)) newestReceived = name;
  if (newestReceived !== undefined) keep.add(newestReceived);
  return keep;
}

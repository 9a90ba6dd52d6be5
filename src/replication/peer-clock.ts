// How far a peer's clock is from ours (`buttervolume doctor`): one `list`
// request, whose answer carries the server's clock (`now`, see protocol.ts),
// timed on our side. The offset is the peer's time minus the middle of the
// round trip, good to half the round trip. Only a peer known_hosts records
// is contacted: a doctor records no host key.
import { withPeer, type ConnectOptions } from './client.js';
import type { Peer } from './peer.js';

/** What the peer's clock says, relative to ours. */
export interface PeerClock {
  /** The peer's clock minus ours, in ms (positive: the peer is ahead). */
  offsetMs: number;
  /** How long the request took: the offset is right to half of it. */
  roundTripMs: number;
}

/**
 * Asks `peer` for the snapshots of `volume` (any volume the peer's grant for
 * our key allows) and reads its clock from the answer; null when the peer
 * does not say (a buttervolume before `now`).
 * @throws ReplicationError `ERR_PEER_UNREACHABLE`, `ERR_PEER_AUTH`, the peer's refusal (`ERR_NOT_PERMITTED`...);
 *   SshKeyError `ERR_HOST_KEY_UNKNOWN`, `ERR_HOST_KEY_CHANGED`.
 */
export function readPeerClock(peer: Peer, volume: string, options: Omit<ConnectOptions, 'knownHostsOnly'>): Promise<PeerClock | null> {
  return withPeer(peer, { ...options, knownHostsOnly: true }, async (conn) => {
    const sent = Date.now();
    const { channel, answer } = await conn.open({ op: 'list', volume, test: false });
    const received = Date.now();
    channel.destroy();
    const now = answer.now;
    if (typeof now !== 'number' || !Number.isFinite(now)) return null;
    return { offsetMs: now - (sent + received) / 2, roundTripMs: received - sent };
  });
}

// What this node knows and says about the volumes that follow their
// service (`-o replicas=`): the record of each (store/cluster-record.ts)
// and what is happening to it right now in this daemon (mounted since
// when, being let go, being fetched). Peers ask for it (`status`), tell us
// who took a volume over (`claim`) and push us its new states (a `receive`
// with an epoch). One instance per daemon, shared by the SSH service and
// the coordinator (cluster.ts).
import type { ClusterRecord } from '../store/cluster-record.js';
import { epochOf } from '../store/cluster-record.js';
import type { VolumeStore } from '../store/volume-store.js';
import { identity } from '../store/lineage.js';
import { isSendMarker } from '../store/names.js';
import type { ClusterStatus, WireOwnership, WireState } from './protocol.js';
import { changedHere } from './cluster-state.js';

/** What a volume is going through in this daemon now. */
export interface LiveFlags {
  /** Mounted here since (first Mount). */
  since: Date | null;
  /** The last Unmount is pushing the final state. */
  releasing: boolean;
  /** Being fetched for a Mount here. */
  fetching: { from: string; percent: number | null } | null;
}

/** A record for a volume known here only through what peers pushed (no Create here yet). */
export function emptyRecord(): ClusterRecord {
  return { version: 1, options: { replicas: [], rpo: null, failover: 'manual' }, state: null, live: { epoch: 0, ctransid: 0 }, owner: null, superseded: [] };
}

export class LocalCluster {
  readonly #flags = new Map<string, LiveFlags>();

  constructor(
    readonly store: VolumeStore,
    /** NODE_NAME: how peers name this node. */
    readonly node: string,
  ) {}

  /** The live flags of `volume` (made on first use; they live as long as the daemon). */
  flags(volume: string): LiveFlags {
    let f = this.#flags.get(volume);
    if (!f) {
      f = { since: null, releasing: false, fetching: null };
      this.#flags.set(volume, f);
    }
    return f;
  }

  /** What this node knows of `volume` now. */
  async status(volume: string): Promise<ClusterStatus> {
    const [record, exists] = await Promise.all([this.store.clusterRecord(volume), this.store.exists(volume)]);
    const { count } = exists ? await this.store.mountState(volume) : { count: 0 };
    const f = this.flags(volume);
    let live: ClusterStatus['live'] = null;
    if (exists && record) live = { epoch: record.live.epoch, changed: await changedHere(this.store, volume, record) };
    const at = record?.state ? (await this.store.listSnapshots(volume)).find((s) => s.name === record.state!.snapshot)?.otime ?? null : null;
    return {
      node: this.node,
      exists,
      mounted: count,
      since: count > 0 && f.since ? f.since.toISOString() : null,
      releasing: f.releasing,
      fetching: f.fetching,
      state: record?.state ? { epoch: record.state.epoch, identity: record.state.identity, snapshot: record.state.snapshot, at: at?.toISOString() ?? null } : null,
      live,
      owner: record?.owner ?? null,
      superseded: record?.superseded ?? [],
    };
  }

  /**
   * A peer holds `volume` (`owner`; recorded when its term is the highest
   * seen here), and, with `state`, has just pushed its newest state here:
   * the snapshot of that identity becomes this node's newest state when its
   * epoch is newer. One of the same epoch and another identity is not
   * adopted: two nodes made that epoch apart (a split brain), and the next
   * Mount here says so.
   */
  async claim(volume: string, owner: WireOwnership, state?: WireState): Promise<void> {
    const held = state ? (await this.store.listSnapshots(volume)).find((s) => s.readonly && identity(s) === state.identity && !isSendMarker(s.name)) : undefined;
    await this.store.updateClusterRecord(volume, (r) => {
      const record = r ?? emptyRecord();
      const next: ClusterRecord = { ...record };
      let changed = false;
      if (!record.owner || owner.term > record.owner.term) {
        next.owner = owner;
        changed = true;
      }
      if (state && held && state.epoch > epochOf(record)) {
        next.state = { epoch: state.epoch, snapshot: held.name, identity: state.identity };
        changed = true;
      }
      return changed ? next : null;
    });
  }
}

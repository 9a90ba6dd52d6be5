// The states of a volume that follows its service, as this node makes and
// judges them: the next state to push, and whether a failover elsewhere
// superseded this node.
import { epochOf, type ClusterRecord, type ClusterState } from '../store/cluster-record.js';
import type { VolumeStore } from '../store/volume-store.js';
import type { Asked } from './cluster-report.js';
import type { ClusterStatus } from './protocol.js';

/** The state to push: the newest one if the volume did not change since, else a new snapshot as the next epoch. */
export async function nextState(store: VolumeStore, volume: string): Promise<ClusterState | null> {
  const record = await store.clusterRecord(volume);
  if (!record || !(await store.exists(volume))) return null;
  const ctransid = await store.liveCtransid(volume);
  if (record.state && ctransid === record.live.ctransid && record.live.epoch === record.state.epoch) return record.state;
  const snapshot = await store.snapshot(volume);
  const info = (await store.listSnapshots(volume)).find((s) => s.name === snapshot);
  if (!info?.uuid) return null;
  const state: ClusterState = { epoch: epochOf(record) + 1, snapshot, identity: info.uuid };
  await store.updateClusterRecord(volume, (r) => ({ ...(r ?? record), state, live: { epoch: state.epoch, ctransid: info.ctransid } }));
  return state;
}

/** The reachable replica whose failover superseded this node (it took the volume over without it, with a higher term), if any. */
export function supersededBy(me: string, record: ClusterRecord, answers: ReadonlyArray<Extract<Asked, { status: ClusterStatus }>>): Extract<Asked, { status: ClusterStatus }> | undefined {
  const mine = record.owner?.node === me ? record.owner.term : -1;
  return answers.find((a) => a.status.owner && a.status.owner.term > mine && a.status.superseded.some((x) => x.node === me));
}
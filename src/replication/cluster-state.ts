// The states of a volume that follows its service, as this node makes and
// judges them: the next state to push, and whether a failover elsewhere
// superseded this node.
import { epochOf, type ClusterRecord, type ClusterState } from '../store/cluster-record.js';
import type { LiveMark, VolumeStore } from '../store/volume-store.js';
import type { Asked } from './cluster-report.js';
import type { ClusterStatus } from './protocol.js';

/** What the live volume is compared with to tell whether it changed here (reads do not count: store/live-change.ts). */
export function liveMark(record: ClusterRecord): LiveMark {
  const { live, state } = record;
  const snapshot = live.snapshot ?? (live.epoch === 0 ? null : live.epoch === state?.epoch ? state.snapshot : undefined);
  return { ctransid: live.ctransid, snapshot };
}

/** Whether `volume` changed on this node since its record's live state. */
export function changedHere(store: VolumeStore, volume: string, record: ClusterRecord): Promise<boolean> {
  return store.liveChanged(volume, liveMark(record));
}

/** The state to push: the newest one if the volume did not change since, else a new snapshot as the next epoch. */
export async function nextState(store: VolumeStore, volume: string): Promise<ClusterState | null> {
  const record = await store.clusterRecord(volume);
  if (!record || !(await store.exists(volume))) return null;
  if (record.state && record.live.epoch === record.state.epoch && !(await changedHere(store, volume, record))) return record.state;
  const snapshot = await store.snapshot(volume);
  const info = (await store.listSnapshots(volume)).find((s) => s.name === snapshot);
  if (!info?.uuid) return null;
  const state: ClusterState = { epoch: epochOf(record) + 1, snapshot, identity: info.uuid };
  await store.updateClusterRecord(volume, (r) => ({ ...(r ?? record), state, live: { epoch: state.epoch, ctransid: info.ctransid, snapshot } }));
  return state;
}

/** The reachable replica whose failover superseded this node (it took the volume over without it, with a higher term), if any. */
export function supersededBy(me: string, record: ClusterRecord, answers: ReadonlyArray<Extract<Asked, { status: ClusterStatus }>>): Extract<Asked, { status: ClusterStatus }> | undefined {
  const mine = record.owner?.node === me ? record.owner.term : -1;
  return answers.find((a) => a.status.owner && a.status.owner.term > mine && a.status.superseded.some((x) => x.node === me));
}
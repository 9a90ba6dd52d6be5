// What is shown of a volume that follows its service: its state here
// (in-sync, behind, ahead, diverged), who holds it, and what each replica
// holds (`buttervolume replicas`, Get's Status).
import { epochOf, type ClusterRecord } from '../store/cluster-record.js';
import { formatDuration } from '../util/duration.js';
import type { ClusterStatus } from './protocol.js';

/** One replica's answer (`status`), or why there is none. */
export type Asked = { spec: string; host: string; status: ClusterStatus } | { spec: string; host: string; error: Error };

export const reachable = (a: Asked): a is Extract<Asked, { status: ClusterStatus }> => 'status' in a;

/** What `buttervolume replicas` and Get show. */
export interface ReplicaReport {
  volume: string;
  node: string;
  /** in-sync, behind (a replica holds a newer state), ahead (changed here since), diverged. */
  state: 'in-sync' | 'behind' | 'ahead' | 'diverged';
  /** Who holds it (has it mounted, or last took it over). */
  holder: string | null;
  epoch: number;
  replicas: Array<{ peer: string; node: string | null; reachable: boolean; error?: string; epoch: number | null; snapshot: string | null; age: string | null; mounted: number }>;
}

/** The report of `volume` on node `me` from its record and the replicas' answers (none: the record alone). */
export function localReport(me: string, volume: string, record: ClusterRecord, asked: readonly Asked[]): ReplicaReport {
  const myEpoch = epochOf(record);
  const answers = asked.filter(reachable);
  const newest = answers.reduce((max, a) => Math.max(max, a.status.state?.epoch ?? 0), 0);
  const holder = answers.find((a) => a.status.mounted > 0)?.status.node ?? record.owner?.node ?? null;
  const state: ReplicaReport['state'] = record.diverged ? 'diverged' : newest > myEpoch ? 'behind' : record.live.epoch < myEpoch || myEpoch > newest ? 'ahead' : 'in-sync';
  return {
    volume,
    node: me,
    state,
    holder,
    epoch: myEpoch,
    replicas: asked.map((a) =>
      reachable(a)
        ? {
            peer: a.spec,
            node: a.status.node,
            reachable: true,
            epoch: a.status.state?.epoch ?? 0,
            snapshot: a.status.state?.snapshot ?? null,
            age: a.status.state?.at ? formatDuration((Date.now() - Date.parse(a.status.state.at)) / 1000) : null,
            mounted: a.status.mounted,
          }
        : { peer: a.spec, node: null, reachable: false, error: a.error.message, epoch: null, snapshot: null, age: null, mounted: 0 },
    ),
  };
}
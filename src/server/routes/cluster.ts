// The endpoints of a volume that follows its service (docs/cluster.md):
// what every replica holds now, and the failover that takes a volume over
// without its holder, which cannot be reached.
import type { ReplicaReport } from '../../replication/cluster.js';
import { ClusterError } from '../../replication/cluster-error.js';
import { validateVolumeName } from '../../store/names.js';
import type { JsonObject } from '../body.js';
import type { Endpoint, PluginContext } from '../endpoint.js';
import { requiredString } from '../fields.js';

const post = ['POST'] as const;

function coordinator(context: PluginContext): NonNullable<PluginContext['cluster']> {
  if (!context.cluster) throw new ClusterError('ERR_NOT_REPLICATED', 'this daemon runs without replication (SSH_PORT is 0)');
  return context.cluster;
}

/** A report as the HTTP answer (the CLI prints it as it is with --json). */
export function reportAnswer(r: ReplicaReport): JsonObject {
  return { Volume: r.volume, Node: r.node, State: r.state, Holder: r.holder, Epoch: r.epoch, Replicas: r.replicas.map((x) => ({ ...x })) };
}

export const clusterEndpoints: readonly Endpoint[] = [
  {
    path: '/VolumeDriver.Volume.Replicas',
    methods: post,
    fields: ['Name'],
    async handle({ body }, context) {
      return reportAnswer(await coordinator(context).replicas(validateVolumeName(requiredString(body, 'Name'))));
    },
  },
  {
    path: '/VolumeDriver.Volume.Failover',
    methods: post,
    fields: ['Name'],
    async handle({ body }, context) {
      return reportAnswer(await coordinator(context).failover(validateVolumeName(requiredString(body, 'Name'))));
    },
  },
];

// Docker's volume plugin protocol (Plugin.Activate and VolumeDriver.*): what
// dockerd and Podman call. Unknown fields are ignored here, as engines may add
// some; names and options are checked by the store.
import { parseCreateOptions } from '../../store/create-options.js';
import type { ReplicaReport } from '../../replication/cluster.js';
import type { Freshness, VolumeStatus } from '../../store/volume-store.js';
import { formatDuration } from '../../util/duration.js';
import type { JsonObject } from '../body.js';
import type { Endpoint } from '../endpoint.js';
import { optionalString, requiredString } from '../fields.js';

/**
 * The caller ID of Mount/Unmount. Engines before Docker 1.13 (and the
 * original's own tests) send none: such a mount is answered but not counted,
 * since no Unmount could ever match it and the volume would stay "in use".
 */
function mountId(body: JsonObject): string | undefined {
  const id = optionalString(body, 'ID');
  return id === '' ? undefined : id;
}

/** VolumeStatus as Docker's flat `Status` map: `{Snapshots, LastSnapshot, Mounts, CopyOnWrite, Compression}`, and `{From, ReadOnly, Ephemeral}` for a volume made with `-o from=`. */
function statusMap(status: VolumeStatus): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(status)) out[key.charAt(0).toUpperCase() + key.slice(1)] = value;
  return out;
}

/** A replicated volume's part of Status (the last known: Get asks no peer). */
function clusterStatus(r: ReplicaReport): JsonObject {
  return {
    State: r.state,
    Holder: r.holder,
    Epoch: r.epoch,
    Replicas: r.replicas.map((x) => ({ Peer: x.peer, Node: x.node, Reachable: x.reachable, Epoch: x.epoch, Snapshot: x.snapshot, Age: x.age, ...(x.error ? { Error: x.error } : {}) })),
  };
}

/** A volume with an rpo: whether its newest snapshot is within it (store/freshness.ts). */
function freshnessStatus(f: Freshness): JsonObject {
  return {
    Rpo: formatDuration(f.rpo),
    NewestSnapshotAge: f.newestAgeSeconds === null ? null : formatDuration(f.newestAgeSeconds),
    RpoExceeded: f.exceeded,
    ChangedSinceLastState: f.changed,
  };
}

const post = ['POST'] as const;

/** The endpoints of Docker's protocol, in the order of its documentation. */
export const dockerEndpoints: readonly Endpoint[] = [
  {
    path: '/Plugin.Activate',
    methods: post,
    handle: async () => ({ Implements: ['VolumeDriver'] }),
  },
  {
    path: '/VolumeDriver.Create',
    methods: post,
    async handle({ body }, { store, gate, replicator }) {
      const name = requiredString(body, 'Name');
      const options = parseCreateOptions(Object.hasOwn(body, 'Opts') ? body.Opts : undefined);
      options.cluster?.replicas.forEach((spec) => replicator.peer(spec)); // a host that is not one: refused at Create, not at the first Mount
      await gate.run(name, () => store.create(name, options));
      return {};
    },
  },
  {
    path: '/VolumeDriver.Remove',
    methods: post,
    async handle({ body }, { store, gate }) {
      const name = requiredString(body, 'Name');
      await gate.run(name, () => store.remove(name));
      return {};
    },
  },
  {
    path: '/VolumeDriver.Mount',
    methods: post,
    async handle({ body }, { store, cluster }) {
      const name = requiredString(body, 'Name');
      const id = mountId(body);
      if (id === undefined) return { Mountpoint: await store.path(name) };
      return { Mountpoint: cluster ? await cluster.mount(name, id) : await store.mount(name, id) };
    },
  },
  {
    path: '/VolumeDriver.Unmount',
    methods: post,
    async handle({ body }, { store, cluster }) {
      const name = requiredString(body, 'Name');
      const id = mountId(body);
      if (id !== undefined) await (cluster ? cluster.unmount(name, id) : store.unmount(name, id));
      return {};
    },
  },
  {
    path: '/VolumeDriver.Path',
    methods: post,
    async handle({ body }, { store }) {
      return { Mountpoint: await store.path(requiredString(body, 'Name')) };
    },
  },
  {
    path: '/VolumeDriver.Get',
    methods: post,
    async handle({ body }, { store, cluster }) {
      const volume = await store.get(requiredString(body, 'Name'));
      const [replicas, fresh] = await Promise.all([cluster?.lastReport(volume.name), store.freshness(volume.name)]);
      return {
        Volume: {
          Name: volume.name,
          Mountpoint: volume.mountpoint,
          CreatedAt: volume.createdAt.toISOString(),
          Status: { ...statusMap(volume.status), ...(replicas ? clusterStatus(replicas) : {}), ...(fresh ? freshnessStatus(fresh) : {}) },
        },
      };
    },
  },
  {
    path: '/VolumeDriver.List',
    methods: post,
    async handle(_, { store }) {
      const volumes = await store.list();
      return { Volumes: volumes.map((v) => ({ Name: v.name, Mountpoint: v.mountpoint })) };
    },
  },
  {
    path: '/VolumeDriver.Capabilities',
    methods: post,
    handle: async () => ({ Capabilities: { Scope: 'local' } }),
  },
];

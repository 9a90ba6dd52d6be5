// The original buttervolume's extension endpoints for snapshots: same paths,
// methods, request and answer fields. Fields other than those listed are
// refused. Send and Sync are validated, then refused: replication comes later.
import { validateHostName, validateSnapshotName, validateVolumeName } from '../../store/names.js';
import type { JsonObject } from '../body.js';
import type { Endpoint, PluginContext } from '../endpoint.js';
import { RequestError } from '../errors.js';
import { optionalBoolean, optionalDate, optionalString, requiredString, stringList } from '../fields.js';

const post = ['POST'] as const;
// GET as the original; POST too, as the original's 3.10 clients sent `{"Name"}`.
const getOrPost = ['GET', 'POST'] as const;

/** The volume a snapshot name belongs to: the gate's key (the store validates the name). */
const volumeOf = (name: string): string => name.split('@')[0]!;

function notAvailable(endpoint: string): never {
  throw new RequestError(
    'ERR_NOT_AVAILABLE',
    `${endpoint}: replication is not available in this version of buttervolume (the request is valid; nothing was done)`,
  );
}

async function listSnapshots(volume: string | undefined, { store }: PluginContext): Promise<JsonObject> {
  return { Snapshots: await store.snapshots(volume) };
}

/** Snapshot, Snapshot.List, Snapshot.Remove, Snapshot.Restore, Clone, Snapshots.Purge, Snapshot.Send, Volume.Sync. */
export const snapshotEndpoints: readonly Endpoint[] = [
  {
    path: '/VolumeDriver.Snapshot',
    methods: post,
    fields: ['Name'],
    async handle({ body }, { store, gate }) {
      const name = requiredString(body, 'Name');
      return { Snapshot: await gate.run(name, () => store.snapshot(name)) };
    },
  },
  {
    // Every snapshot (the original CLI's `snapshots` without a name listed nothing: not reproduced).
    path: '/VolumeDriver.Snapshot.List',
    methods: getOrPost,
    fields: ['Name'],
    handle: ({ body }, context) => listSnapshots(optionalString(body, 'Name') || undefined, context),
  },
  {
    path: '/VolumeDriver.Snapshot.List/:name',
    methods: getOrPost,
    fields: [],
    handle: ({ params }, context) => listSnapshots(params.name ?? '', context),
  },
  {
    path: '/VolumeDriver.Snapshot.Remove',
    methods: post,
    fields: ['Name'],
    async handle({ body }, { store, gate }) {
      const name = requiredString(body, 'Name');
      await gate.run(volumeOf(name), () => store.removeSnapshot(name));
      return {};
    },
  },
  {
    // Name: a snapshot, or a volume meaning its newest snapshot. `Target: ""`
    // means the snapshot's own volume, as in the original.
    path: '/VolumeDriver.Snapshot.Restore',
    methods: post,
    fields: ['Name', 'Target'],
    async handle({ body }, { store, gate }) {
      const name = requiredString(body, 'Name');
      const target = optionalString(body, 'Target') || undefined;
      const result = await gate.run(target ?? volumeOf(name), () => store.restore(name, target));
      return { Snapshot: result.snapshot, Volume: result.volume, ...(result.backup === null ? {} : { VolumeBackup: result.backup }) };
    },
  },
  {
    path: '/VolumeDriver.Clone',
    methods: post,
    fields: ['Name', 'Target'],
    async handle({ body }, { store, gate }) {
      const name = requiredString(body, 'Name');
      const target = requiredString(body, 'Target');
      return { VolumeCloned: await gate.run(target, () => store.clone(name, target)) };
    },
  },
  {
    // Purged: the snapshots deleted, or those a dry run would delete (the
    // original only logged them). Now: evaluate the pattern at this instant.
    path: '/VolumeDriver.Snapshots.Purge',
    methods: post,
    fields: ['Name', 'Pattern', 'Dryrun', 'Now'],
    async handle({ body }, { store, logger, gate }) {
      const name = requiredString(body, 'Name');
      const pattern = requiredString(body, 'Pattern');
      const dryRun = optionalBoolean(body, 'Dryrun');
      const now = optionalDate(body, 'Now');
      const purge = () => store.purge(name, pattern, { dryRun, ...(now ? { now } : {}) });
      const purged = dryRun ? await purge() : await gate.run(name, purge);
      for (const snapshot of purged) logger.info(dryRun ? `(Dry run) Would delete snapshot ${snapshot}` : `Deleted snapshot ${snapshot}`);
      return { Purged: purged };
    },
  },
  {
    path: '/VolumeDriver.Snapshot.Send',
    methods: post,
    fields: ['Name', 'Host', 'Test'],
    async handle({ body }) {
      validateSnapshotName(requiredString(body, 'Name'));
      validateHostName(requiredString(body, 'Host'));
      optionalBoolean(body, 'Test');
      return notAvailable('VolumeDriver.Snapshot.Send');
    },
  },
  {
    path: '/VolumeDriver.Volume.Sync',
    methods: post,
    fields: ['Volumes', 'Hosts', 'Test'],
    async handle({ body }) {
      stringList(body, 'Volumes').forEach((v) => validateVolumeName(v));
      stringList(body, 'Hosts').forEach((h) => validateHostName(h));
      optionalBoolean(body, 'Test');
      return notAvailable('VolumeDriver.Volume.Sync');
    },
  },
];

// The original buttervolume's extension endpoints for snapshots: same paths,
// methods, request and answer fields (and more answer fields). Fields other
// than those listed are refused. Send, Receive and Sync go to the replicator.
import { ReplicationError } from '../../replication/protocol.js';
import { validateSnapshotName, validateVolumeName } from '../../store/names.js';
import type { PurgePlan } from '../../store/volume-store.js';
import type { JsonObject } from '../body.js';
import type { Endpoint, PluginContext } from '../endpoint.js';
import { optionalBoolean, optionalDate, optionalString, requiredString, stringList } from '../fields.js';

const post = ['POST'] as const;
// GET as the original; POST too, as the original's 3.10 clients sent `{"Name"}`.
const getOrPost = ['GET', 'POST'] as const;

/** The volume a snapshot name belongs to: the gate's key (the store validates the name). */
const volumeOf = (name: string): string => name.split('@')[0]!;

async function listSnapshots(volume: string | undefined, { store }: PluginContext): Promise<JsonObject> {
  return { Snapshots: await store.snapshots(volume) };
}

/** `Explain` of Snapshots.Purge: the time of the plan and each snapshot's decision (the fields of `purge --explain --json`, capitalized). */
function explanation(plan: PurgePlan): JsonObject {
  return {
    At: plan.at.toISOString(),
    Explanation: plan.decisions.map((d) => ({
      Name: d.name,
      Decision: d.decision,
      Reason: d.reason,
      Rule: d.rule,
      ...(d.pattern ? { Pattern: d.pattern, Protections: d.protections } : {}),
    })),
  } as JsonObject;
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
    // Explain: also every snapshot with KEEP or DELETE and why, from the
    // plan the purge carried out (`purge --explain`).
    path: '/VolumeDriver.Snapshots.Purge',
    methods: post,
    fields: ['Name', 'Pattern', 'Dryrun', 'Now', 'Explain'],
    async handle({ body }, { store, logger, gate }) {
      const name = requiredString(body, 'Name');
      const pattern = requiredString(body, 'Pattern');
      const dryRun = optionalBoolean(body, 'Dryrun');
      const now = optionalDate(body, 'Now');
      // Kept: what the pattern would delete but a volume made from it needs (`-o from=`), with why.
      const kept: JsonObject[] = [];
      const onKept = (snapshot: string, reason: string) => kept.push({ Snapshot: snapshot, Reason: reason });
      const purge = () => store.purgeWithPlan(name, pattern, { dryRun, ...(now ? { now } : {}), onKept });
      const plan = dryRun ? await purge() : await gate.run(name, purge);
      const purged = plan.doomed;
      for (const snapshot of purged) logger.info(dryRun ? `(Dry run) Would delete snapshot ${snapshot}` : `Deleted snapshot ${snapshot}`);
      for (const k of kept) logger.info(`${dryRun ? '(Dry run) Would keep' : 'Kept'} snapshot ${String(k.Snapshot)}: ${String(k.Reason)}`);
      return { Purged: purged, ...(kept.length > 0 ? { Kept: kept } : {}), ...(optionalBoolean(body, 'Explain') ? explanation(plan) : {}) };
    },
  },
  {
    // Host: name, name:port or user@name[:port]; Test: into the peer's TEST_REMOTE_PATH (the original's tests).
    path: '/VolumeDriver.Snapshot.Send',
    methods: post,
    fields: ['Name', 'Host', 'Test'],
    async handle({ body }, { replicator }) {
      const name = validateSnapshotName(requiredString(body, 'Name'));
      const host = requiredString(body, 'Host');
      const test = optionalBoolean(body, 'Test');
      replicator.peer(host);
      const result = await replicator.send(name, host, { test });
      return { Snapshot: result.snapshot, Host: result.host, Transferred: result.transferred, Parent: result.parent, Bytes: result.bytes, Marker: result.marker };
    },
  },
  {
    // Pull (failover): the newest snapshot of Name that Host holds and this host lacks.
    path: '/VolumeDriver.Snapshot.Receive',
    methods: post,
    fields: ['Name', 'Host', 'Test'],
    async handle({ body }, { replicator }) {
      const name = validateVolumeName(requiredString(body, 'Name'));
      const host = requiredString(body, 'Host');
      replicator.peer(host);
      const result = await replicator.pull(host, name, { test: optionalBoolean(body, 'Test') });
      return { Snapshot: result.fetched, Newest: result.newest, Parent: result.parent, Host: result.host };
    },
  },
  {
    // A local snapshot of each volume first (for recovery, as the original), then a pull of the
    // files of each host's live volume; every host is tried, the failures are named in Err.
    path: '/VolumeDriver.Volume.Sync',
    methods: post,
    fields: ['Volumes', 'Hosts', 'Test'],
    async handle({ body }, { replicator }) {
      const volumes = stringList(body, 'Volumes').map((v) => validateVolumeName(v));
      const hosts = stringList(body, 'Hosts');
      const test = optionalBoolean(body, 'Test');
      hosts.forEach((h) => replicator.peer(h)); // every host checked before the first snapshot
      const errors: string[] = [];
      const results: JsonObject[] = [];
      for (const volume of volumes) {
        try {
          const r = await replicator.snapshotAndSync(volume, hosts, { test });
          results.push({ Volume: volume, Snapshot: r.snapshot, Hosts: r.hosts });
        } catch (err) {
          const snapshot = (err as { snapshot?: string }).snapshot;
          if (snapshot === undefined) throw err; // the snapshot failed: nothing was pulled
          errors.push((err as Error).message);
          results.push({ Volume: volume, Snapshot: snapshot });
        }
      }
      if (errors.length > 0) throw new ReplicationError('ERR_SYNC_FAILED', errors.join('\n'));
      return { Synced: results };
    },
  },
];

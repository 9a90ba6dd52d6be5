// A volume follows its service across a Docker Swarm (`-o replicas=`). Swarm
// schedules; this moves the data, with no membership of its own: what a node
// knows is its record of each volume (store/cluster-record.ts) and what its
// peers answer now (`status`). First Mount on a node (takeOver): ask every
// replica at once; wait (HANDOVER_TIMEOUT) while one still has it mounted or
// pushes its last state; refuse when its holder cannot be reached unless
// failover; take the newest state (by epoch: each release of a changed
// volume makes the next one) and make it the live volume, incrementally,
// before answering; refuse, keeping both, when it changed here too
// (diverged); then claim it (the next term, told to every replica). Last
// Unmount (release): snapshot if changed, push to every replica (a claim
// says which state it is), then answer; a replica down gets it when back.
import { setTimeout as sleep } from 'node:timers/promises';

import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { epochOf, type ClusterRecord, type ClusterState, type Ownership } from '../store/cluster-record.js';
import type { ClusterOptions } from '../store/create-options.js';
import { identity } from '../store/lineage.js';
import type { VolumeStore } from '../store/volume-store.js';
import { ClusterError } from './cluster-error.js';
import { emptyRecord, type LocalCluster } from './cluster-local.js';
import { hostOf, isSelf } from './cluster-peers.js';
import { localReport, reachable, type Asked, type ReplicaReport } from './cluster-report.js';
import { RpoTimers } from './cluster-rpo.js';
import { changedHere as changedHereOf, nextState, supersededBy } from './cluster-state.js';
import type { ClusterStatus } from './protocol.js';
import type { SshReplicator } from './replicator.js';

/** Connecting to a replica to ask it: bounded, a Mount waits for this. */
const ASK_TIMEOUT_MS = 5000;
/** How long a Mount or an Unmount waits for a transfer before it answers (the engine gives up at 30 s). */
const ANSWER_WITHIN_MS = 20_000;
/** Unpushed states are pushed again this often (a replica that was down). */
const RETRY_MS = 30_000;

export interface ClusterOptionsIn {
  store: VolumeStore;
  config: Config;
  logger: Logger;
  replicator: SshReplicator;
  local: LocalCluster;
  /** The hosts of `replicate:<host>` schedule lines of a volume (the original's way: such a volume follows that host). */
  scheduledHosts?: (volume: string) => Promise<string[]>;
}

export type { ReplicaReport } from './cluster-report.js';

export class ClusterCoordinator {
  readonly #o: ClusterOptionsIn;
  readonly #queues = new Map<string, Promise<unknown>>();
  /** Fetches going on for a Mount (answered with their progress meanwhile). */
  readonly #fetches = new Map<string, Promise<void>>();
  /** Pushes of a release still going on after the Unmount was answered. */
  readonly #pushes = new Map<string, Promise<void>>();
  /** Since when each node has been unreachable (failover=auto). */
  readonly #unreachableSince = new Map<string, number>();
  /** Replicas that still lack the newest state, per volume. */
  readonly #unpushed = new Map<string, Set<string>>();
  readonly #rpo = new RpoTimers();
  /** The last report of each volume, for Get (no peer is asked on a Get). */
  readonly #reports = new Map<string, ReplicaReport>();
  #retry: NodeJS.Timeout | undefined;

  constructor(options: ClusterOptionsIn) {
    this.#o = options;
  }

  get #me(): string {
    return this.#o.config.nodeName;
  }

  /** Starts pushing what was left unpushed (and, at the daemon's start, whatever this node holds). */
  start(): void {
    this.#retry = setInterval(() => void this.#retryPushes(), RETRY_MS);
    this.#retry.unref();
  }

  stop(): void {
    clearInterval(this.#retry);
    this.#rpo.stopAll();
  }

  /** Runs `fn` after the previous operations of `volume` in this daemon. */
  #serial<T>(volume: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.#queues.get(volume) ?? Promise.resolve()).then(fn);
    const settled = run.catch(() => undefined);
    this.#queues.set(volume, settled);
    void settled.then(() => {
      if (this.#queues.get(volume) === settled) this.#queues.delete(volume);
    });
    return run;
  }

  /** The record of `volume` and its replicas other than this node; null for a volume that does not follow its service. */
  async #replicated(volume: string): Promise<{ record: ClusterRecord; peers: string[] } | null> {
    let record = await this.#o.store.clusterRecord(volume);
    if (!record || record.options.replicas.length === 0) {
      // The original's form: a volume with `replicate:<host>` lines follows that host.
      const hosts = (await this.#o.scheduledHosts?.(volume)) ?? [];
      if (hosts.length === 0) return record && record.options.rpo !== null ? { record, peers: [] } : null;
      const options: ClusterOptions = { replicas: hosts, rpo: record?.options.rpo ?? null, failover: record?.options.failover ?? 'manual' };
      const ctransid = await this.#o.store.liveCtransid(volume);
      record = (await this.#o.store.updateClusterRecord(volume, (r) => ({ ...(r ?? { ...emptyRecord(), live: { epoch: 0, ctransid } }), options })))!;
    }
    return { record, peers: record.options.replicas.filter((spec) => !this.#isSelf(spec)) };
  }

  #hostOf(spec: string): string {
    return hostOf(spec, this.#o.config.sshPort);
  }

  #isSelf(spec: string): boolean {
    return isSelf(spec, this.#me, this.#o.config.sshPort);
  }

  /** Every replica asked at once, each within ASK_TIMEOUT_MS. */
  async #askAll(volume: string, peers: readonly string[]): Promise<Asked[]> {
    return Promise.all(
      peers.map(async (spec): Promise<Asked> => {
        const host = this.#hostOf(spec);
        try {
          const status = await this.#o.replicator.status(spec, volume, { timeoutMs: ASK_TIMEOUT_MS });
          this.#unreachableSince.delete(status.node);
          return { spec, host, status };
        } catch (err) {
          if (!this.#unreachableSince.has(host)) this.#unreachableSince.set(host, Date.now());
          return { spec, host, error: err as Error };
        }
      }),
    );
  }

  // ---- Mount -------------------------------------------------------------------

  /** Docker's Mount: a first Mount of a replicated volume takes it over first (see the top). */
  mount(volume: string, id: string): Promise<string> {
    return this.#serial(volume, async () => {
      const { count } = await this.#o.store.mountState(volume);
      if (count === 0) {
        const replicated = await this.#replicated(volume);
        if (replicated && replicated.peers.length > 0) await this.#takeOver(volume, replicated.record, replicated.peers, { force: false });
      }
      const path = await this.#o.store.mount(volume, id);
      const flags = this.#o.local.flags(volume);
      if (count === 0) {
        flags.since = new Date();
        await this.#startRpo(volume);
      }
      return path;
    });
  }

  /** Docker's Unmount: the last one lets the volume go (see release); of a name that is no volume, it succeeds (the original). */
  unmount(volume: string, id: string): Promise<void> {
    return this.#serial(volume, async () => {
      await this.#o.store.unmount(volume, id);
      if ((await Promise.resolve().then(() => this.#o.store.mountState(volume)).catch(() => ({ count: 1 }))).count > 0) return;
      this.#rpo.stop(volume);
      this.#o.local.flags(volume).since = null;
      const replicated = await this.#replicated(volume).catch(() => null);
      if (replicated && replicated.peers.length > 0) await this.#release(volume, replicated.peers);
    });
  }

  /**
   * `buttervolume failover <volume>`: take the volume over without its
   * holder, which cannot be reached: from the newest state the others hold;
   * the holder is recorded as superseded (what it wrote since its last push
   * is given up; it never serves its copy as current again).
   */
  failover(volume: string): Promise<ReplicaReport> {
    return this.#serial(volume, async () => {
      const replicated = await this.#replicated(volume);
      if (!replicated) throw new ClusterError('ERR_NOT_REPLICATED', `${volume} does not follow a service (no replicas): nothing to fail over`);
      await this.#takeOver(volume, replicated.record, replicated.peers, { force: true });
      return this.#report(volume, true);
    });
  }

  async #takeOver(volume: string, record: ClusterRecord, peers: string[], { force }: { force: boolean }): Promise<void> {
    const { store, logger, config } = this.#o;
    // A fetch that ran past a Mount's time: wait for it again, within the time.
    const running = this.#fetches.get(volume);
    if (running) await this.#within(volume, running);

    let asked = await this.#askAll(volume, peers);
    const deadline = Date.now() + config.handoverTimeoutSeconds * 1000;
    for (;;) {
      const busy = asked.filter(reachable).find((a) => a.status.mounted > 0 || a.status.releasing || a.status.fetching);
      if (!busy) break;
      if (Date.now() >= deadline) {
        const s = busy.status;
        const what = s.mounted > 0 ? `in use on ${s.node}${s.since ? ` since ${s.since}` : ''}` : s.releasing ? `being let go by ${s.node}` : `being fetched by ${s.node}`;
        throw new ClusterError('ERR_VOLUME_HELD_ELSEWHERE', `${volume} is ${what} (waited ${config.handoverTimeoutSeconds} s, HANDOVER_TIMEOUT): stop it there first`);
      }
      await sleep(500);
      asked = await this.#askAll(volume, peers);
    }
    const answers = asked.filter(reachable);
    const owners = [record.owner, ...answers.map((a) => a.status.owner)].filter((o): o is Ownership => o !== null);
    const owner = owners.reduce<Ownership | null>((best, o) => (best === null || o.term > best.term ? o : best), null);
    const superseding: string[] = [];
    if (owner && owner.node !== this.#me && !answers.some((a) => a.status.node === owner.node)) {
      const down = asked.find((a) => !reachable(a) && a.host === owner.node) as Extract<Asked, { error: Error }> | undefined;
      const reason = down ? down.error.message : 'it is not among the replicas reachable';
      const since = this.#unreachableSince.get(owner.node);
      const auto = record.options.failover === 'auto' && since !== undefined && Date.now() - since >= config.failoverAfterSeconds * 1000;
      if (!force && !auto) {
        throw new ClusterError(
          'ERR_HOLDER_UNREACHABLE',
          `${volume}: its holder ${owner.node} cannot be reached (${reason}); it may hold writes it has not pushed: on the node that should take over, "buttervolume failover ${volume}" goes on from the newest state the others hold (what ${owner.node} wrote since its last push is then given up)` +
            (record.options.failover === 'auto' ? `, as this volume's failover=auto does by itself once ${owner.node} has been unreachable for FAILOVER_AFTER (${config.failoverAfterSeconds} s)` : ''),
        );
      }
      superseding.push(owner.node);
      logger.warning(`${volume}: taken over without its holder ${owner.node}, unreachable (${reason})${auto ? ' for FAILOVER_AFTER' : ' (failover)'}: what it wrote since its last push is given up`);
    }

    // The newest state: this node's, or the newest a reachable replica holds;
    // when a failover elsewhere superseded this node, its holder's, whatever this node holds.
    const myEpoch = epochOf(record);
    const changedHere = await changedHereOf(store, volume, record);
    const overMe = supersededBy(this.#me, record, answers);
    let best: { spec: string; node: string; state: NonNullable<ClusterStatus['state']> } | null = null;
    if (overMe?.status.state) best = { spec: overMe.spec, node: overMe.status.node, state: overMe.status.state };
    else {
      // Among replicas with the same newest state, the holder's: the others' are copies of its snapshot, a fetch from it is incremental.
      for (const a of answers) {
        const s = a.status.state;
        const newer = s && s.epoch > (best?.state.epoch ?? myEpoch);
        const sameFromHolder = s && best && s.epoch === best.state.epoch && a.status.node === owner?.node;
        if (s && (newer || sameFromHolder)) best = { spec: a.spec, node: a.status.node, state: s };
      }
      const sameEpochOther = answers.find((a) => a.status.state && a.status.state.epoch === myEpoch && myEpoch > 0 && a.status.state.identity !== record.state?.identity);
      // Two nodes made the same epoch apart: neither is newer.
      if (sameEpochOther && !best) await this.#diverged(volume, record, { spec: sameEpochOther.spec, node: sameEpochOther.status.node, state: sameEpochOther.status.state! });
    }
    if (best) {
      if (changedHere && !overMe) await this.#diverged(volume, record, best);
      if (overMe) logger.warning(`${volume}: ${overMe.status.node} took it over without this node (failover): its state ${best.state.epoch} is the volume now${changedHere ? '; what was written here alone is kept as a snapshot' : ''}`);
      await this.#fetchAndUse(volume, best, changedHere);
    } else if (record.state && record.live.epoch < record.state.epoch) {
      // This node holds a newer state than its live volume (pushed here): unless it changed here since, that is the volume now.
      if (changedHere) await this.#diverged(volume, record, { spec: '', node: record.owner?.node ?? 'a peer', state: { ...record.state, at: null } });
      await this.#use(volume, record.state, false);
    }
    await this.#claim(volume, answers, owners, superseding);
  }

  /** Waits for `work` within a Mount's time; past it, the Mount is refused with the fetch's progress (it goes on). */
  async #within(volume: string, work: Promise<void>): Promise<void> {
    const late = sleep(ANSWER_WITHIN_MS).then(() => 'late' as const);
    if ((await Promise.race([work.then(() => 'done' as const), late])) === 'done') return;
    const f = this.#o.local.flags(volume).fetching;
    const progress = f ? `fetching it from ${f.from}${f.percent === null ? '' : `, ${f.percent}% done`}` : 'fetching it';
    throw new ClusterError('ERR_FETCHING', `${volume}: ${progress}; the task starts once its data is here (Docker Swarm retries it)`);
  }

  /** Fetches the state `best` holds (incrementally) and makes it the live volume, keeping what it replaces when `backup`. */
  async #fetchAndUse(volume: string, best: { spec: string; node: string; state: NonNullable<ClusterStatus['state']> }, backup: boolean): Promise<void> {
    const { store, replicator, logger } = this.#o;
    const have = (await store.listSnapshots(volume)).find((s) => s.readonly && identity(s) === best.state.identity);
    let local = have?.name;
    if (!local) {
      const flags = this.#o.local.flags(volume);
      flags.fetching = { from: best.node, percent: null };
      const fetch = replicator
        .pull(best.spec, volume, {
          snapshot: best.state.snapshot,
          onProgress: (bytes, total) => (flags.fetching = { from: best.node, percent: total ? Math.min(99, Math.floor((bytes * 100) / total)) : null }),
        })
        .then(
          () => logger.info(`${volume}: fetched state ${best.state.epoch} from ${best.node} (${best.state.snapshot})`),
          (err: Error) => {
            logger.warning(`${volume}: fetching state ${best.state.epoch} from ${best.node} failed: ${err.message}`);
            throw err;
          },
        )
        .finally(() => {
          flags.fetching = null;
          this.#fetches.delete(volume);
        });
      this.#fetches.set(volume, fetch);
      fetch.catch(() => undefined);
      await this.#within(volume, fetch);
      local = (await store.listSnapshots(volume)).find((s) => s.readonly && identity(s) === best.state.identity)?.name;
      if (!local) throw new ClusterError('ERR_FETCHING', `${volume}: state ${best.state.epoch} from ${best.node} did not arrive`);
    }
    await this.#use(volume, { epoch: best.state.epoch, snapshot: local, identity: best.state.identity }, backup);
  }

  /** Makes state `state` (a snapshot here) the live volume; the content it replaces is kept as a snapshot when `backup`. */
  async #use(volume: string, state: ClusterState, backup: boolean): Promise<void> {
    const { store } = this.#o;
    const r = await store.restore(state.snapshot, volume, { backup });
    const ctransid = await store.liveCtransid(volume);
    await store.updateClusterRecord(volume, (rec) => ({ ...(rec ?? emptyRecord()), state, live: { epoch: state.epoch, ctransid, snapshot: state.snapshot } }));
    this.#o.logger.info(`${volume}: now state ${state.epoch} (${state.snapshot})${r.backup ? `; what it held before is kept as ${r.backup}` : ''}`);
  }

  /** The volume changed here and a replica made a newer state: both are kept, the Mount refused. */
  async #diverged(volume: string, record: ClusterRecord, theirs: { spec: string; node: string; state: NonNullable<ClusterStatus['state']> }): Promise<never> {
    const { store, replicator, logger } = this.#o;
    // Swarm retries a refused task every few seconds: the same divergence, nothing written since, is refused again with the same two snapshots.
    const before = record.diverged;
    const snapshots = await store.listSnapshots(volume);
    const live = await store.liveCtransid(volume);
    const again = before && before.theirs.identity === theirs.state.identity && before.mine.ctransid === live && snapshots.some((s) => s.name === before.mine.snapshot);
    const mine = again ? before.mine.snapshot : await store.snapshot(volume);
    const mineCtransid = again ? live : await store.liveCtransid(volume);
    let have = snapshots.find((s) => s.readonly && identity(s) === theirs.state.identity);
    if (!have && theirs.spec !== '') {
      await replicator.pull(theirs.spec, volume, { snapshot: theirs.state.snapshot }).catch((err: Error) => logger.warning(`${volume}: cannot fetch ${theirs.state.snapshot} from ${theirs.node}: ${err.message}`));
      have = (await store.listSnapshots(volume)).find((s) => s.readonly && identity(s) === theirs.state.identity);
    }
    const theirsHere = have?.name ?? theirs.state.snapshot;
    await store.updateClusterRecord(volume, (r) => ({
      ...(r ?? record),
      diverged: { mine: { snapshot: mine, ctransid: mineCtransid }, theirs: { node: theirs.node, epoch: theirs.state.epoch, snapshot: theirsHere, identity: theirs.state.identity } },
    }));
    this.#reports.set(volume, { ...(this.#reports.get(volume) ?? (await this.#report(volume, false))), state: 'diverged' });
    throw new ClusterError(
      'ERR_VOLUME_DIVERGED',
      `${volume} diverged: it changed on ${this.#me} since state ${record.live.epoch}, and ${theirs.node} made state ${theirs.state.epoch}${theirs.state.at ? ` (${theirs.state.at})` : ''} meanwhile. Both are kept here: ${mine} (this node's) and ${theirsHere} (${theirs.node}'s). Choose with "buttervolume restore <one of them> ${volume}" on ${this.#me}, then start the task again`,
    );
  }

  /** This node holds the volume now: the next term, recorded here and told to the replicas reachable. */
  async #claim(volume: string, answers: ReadonlyArray<Extract<Asked, { status: ClusterStatus }>>, owners: Ownership[], superseding: string[]): Promise<void> {
    const term = owners.reduce((max, o) => Math.max(max, o.term), 0) + 1;
    const owner: Ownership = { node: this.#me, term, since: new Date().toISOString() };
    const record = await this.#o.store.updateClusterRecord(volume, (r) => {
      const base = r ?? emptyRecord();
      const superseded = [...base.superseded, ...superseding.map((node) => ({ node, epoch: epochOf(base), at: owner.since }))].slice(-16);
      return { ...base, owner, superseded };
    });
    await Promise.all(answers.map((a) => this.#o.replicator.claim(a.spec, volume, owner, undefined, { timeoutMs: ASK_TIMEOUT_MS }).catch(() => undefined)));
    this.#reports.set(volume, localReport(this.#me, volume, record!, answers));
  }

  // ---- Unmount, rpo --------------------------------------------------------------

  /** Snapshots the volume if it changed since its newest state, and pushes that state to every replica (answered within ANSWER_WITHIN_MS). */
  async #release(volume: string, peers: string[]): Promise<void> {
    const flags = this.#o.local.flags(volume);
    flags.releasing = true;
    const push = this.#push(volume, peers).finally(() => {
      flags.releasing = false;
      this.#pushes.delete(volume);
    });
    this.#pushes.set(volume, push);
    await Promise.race([push.catch(() => undefined), sleep(ANSWER_WITHIN_MS)]);
  }

  /**
   * The newest state of `volume` (a new one when it changed since), pushed
   * to `peers`. Not when a failover elsewhere superseded this node: its
   * state would pass for the volume's; the next Mount here fetches instead.
   */
  async #push(volume: string, peers: string[]): Promise<void> {
    const { store, replicator, logger } = this.#o;
    const record = await store.clusterRecord(volume);
    if (!record) return;
    const answers = (await this.#askAll(volume, peers)).filter(reachable);
    const over = supersededBy(this.#me, record, answers);
    if (over) {
      logger.warning(`${volume}: not pushed: ${over.status.node} took it over without this node (failover); what was written here since stays here (the next Mount fetches ${over.status.node}'s state and keeps it aside)`);
      return;
    }
    const state = await nextState(this.#o.store, volume);
    if (!state) return;
    const owner = (await store.clusterRecord(volume))?.owner ?? { node: this.#me, term: 0, since: new Date().toISOString() };
    // A replica fetching the volume itself gets the state that way: a push of the same state meanwhile would race its receive.
    const fetching = new Set(answers.filter((a) => a.status.fetching).map((a) => a.spec));
    await Promise.all(
      peers.map(async (spec) => {
        if (fetching.has(spec)) {
          this.#unpushed.get(volume)?.add(spec);
          return;
        }
        try {
          const r = await replicator.send(state.snapshot, spec, { connectTimeoutMs: ASK_TIMEOUT_MS });
          await replicator.claim(spec, volume, owner, { epoch: state.epoch, identity: state.identity }, { timeoutMs: ASK_TIMEOUT_MS });
          this.#unpushed.get(volume)?.delete(spec);
          logger.info(`${volume}: state ${state.epoch} is on ${spec}${r.transferred ? ` (${r.bytes} bytes${r.parent ? `, from ${r.parent}` : ''})` : ''}`);
        } catch (err) {
          let set = this.#unpushed.get(volume);
          if (!set) this.#unpushed.set(volume, (set = new Set()));
          set.add(spec);
          logger.warning(`${volume}: state ${state.epoch} could not be pushed to ${spec} (${(err as Error).message}); pushed when it is back`);
        }
      }),
    );
  }

  async #startRpo(volume: string): Promise<void> {
    const rpo = (await this.#o.store.clusterRecord(volume))?.options.rpo;
    if (!rpo) return;
    this.#rpo.start(volume, rpo, (v) =>
      this.#serial(v, async () => {
        const replicated = await this.#replicated(v);
        if (replicated) await this.#push(v, replicated.peers);
      }).catch((err: Error) => this.#o.logger.warning(`${v}: rpo push failed: ${err.message}`)),
    );
  }

  async #retryPushes(): Promise<void> {
    for (const [volume, specs] of this.#unpushed) {
      if (specs.size === 0 || this.#pushes.has(volume)) continue;
      await this.#serial(volume, () => this.#push(volume, [...specs])).catch(() => undefined);
    }
  }

  // ---- what is shown -------------------------------------------------------------

  /** The report of `volume`: asking the replicas now (`live`), or the last one (Get). */
  async #report(volume: string, live: boolean): Promise<ReplicaReport> {
    const replicated = await this.#replicated(volume);
    if (!replicated) throw new ClusterError('ERR_NOT_REPLICATED', `${volume} does not follow a service (no replicas)`);
    if (!live) return this.#reports.get(volume) ?? localReport(this.#me, volume, replicated.record, []);
    const asked = await this.#askAll(volume, replicated.peers);
    const report = localReport(this.#me, volume, replicated.record, asked);
    this.#reports.set(volume, report);
    return report;
  }

  /** `buttervolume replicas <volume>`: each replica asked now. */
  replicas(volume: string): Promise<ReplicaReport> {
    return this.#report(volume, true);
  }

  /** What Get shows of a replicated volume (the last known; no peer asked); null for another volume. */
  async lastReport(volume: string): Promise<ReplicaReport | null> {
    const replicated = await this.#replicated(volume).catch(() => null);
    if (!replicated) return null;
    return this.#reports.get(volume) ?? localReport(this.#me, volume, replicated.record, []);
  }
}

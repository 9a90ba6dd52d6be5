// The doctor's checks of the peers this host replicates with: every host of
// a replicate: or synchronize: line of the schedule (paused ones too) and
// every other replica of a volume that follows its service. Per peer: its
// host key recorded in known_hosts (else the first contact trusts whatever
// key it is shown), and, for a recorded one, its clock against ours, asked
// with a bounded `list` request (protocol.ts: `now`). A peer without a
// recorded key is not contacted: the doctor records no host key.
import { access } from 'node:fs/promises';
import { join } from 'node:path';

import type { Config } from '../../config.js';
import { isSelf } from '../../replication/cluster-peers.js';
import { HOST_KEY_FILE, KNOWN_HOSTS_FILE, knownHostsName, recordedHostKeys } from '../../replication/keys.js';
import { readPeerClock } from '../../replication/peer-clock.js';
import { parsePeer, type Peer } from '../../replication/peer.js';
import { ScheduleFile } from '../../scheduler/schedule-file.js';
import { parseAction } from '../../scheduler/schedule-rules.js';
import type { VolumeStore } from '../../store/volume-store.js';
import { errCode } from '../../util/err-code.js';
import { forEachLimited } from '../../util/limiter.js';
import { fail, ok, warn, why, type Finding } from './report.js';

const CONNECT_MS = 5000;
/** Clocks further apart than this are worth setting right even below SYNC_CLOCK_SKEW. */
const WARN_SKEW_MS = 2000;

/** A peer and what names it. */
export interface PeerUse {
  spec: string;
  /** A volume the peer is used for (asked in the clock's `list`). */
  volume: string;
  /** Where it is named: `schedule line 3`, `replicas of app`. */
  from: string;
}

/** The schedule's state and its peers. */
export async function scheduledPeers(config: Config): Promise<{ finding: Finding; peers: PeerUse[] }> {
  const file = new ScheduleFile(config.schedulePath);
  let paused: boolean;
  let lines: Awaited<ReturnType<ScheduleFile['readLines']>>;
  try {
    paused = await file.isPaused();
    lines = await new ScheduleFile(paused ? file.disabledPath : file.path).readLines();
  } catch (err) {
    return { finding: warn('schedule', `${config.schedulePath} cannot be read: ${why(err)}`, 'run buttervolume doctor as root'), peers: [] };
  }
  const peers: PeerUse[] = [];
  const invalid: string[] = [];
  for (const line of lines) {
    if (line.kind === 'invalid') {
      invalid.push(`line ${line.line}: ${line.error}`);
      continue;
    }
    const action = parseAction(line.entry.action);
    const hosts = action.kind === 'replicate' ? [action.host] : action.kind === 'synchronize' ? action.hosts : [];
    for (const spec of hosts) peers.push({ spec, volume: line.entry.name, from: `schedule line ${line.line}${line.entry.active ? '' : ' (paused)'}` });
  }
  const jobs = lines.length - invalid.length;
  const said = `${config.schedulePath}${paused ? ' (paused as a whole: buttervolume scheduled resume)' : ''}: ${jobs} job${jobs === 1 ? '' : 's'}`;
  const finding =
    invalid.length > 0
      ? warn('schedule', `${said}, ${invalid.length} line${invalid.length === 1 ? '' : 's'} ignored (${invalid.join('; ')})`, 'correct those lines, or remove them (buttervolume schedule <action> 0 <volume>)')
      : ok('schedule', lines.length === 0 ? `${config.schedulePath}: no job` : said);
  return { finding, peers };
}

/** The other replicas of the volumes that follow their service here. */
export async function replicaPeers(config: Config, store: VolumeStore, names: readonly string[]): Promise<PeerUse[]> {
  const peers: PeerUse[] = [];
  for (const name of names) {
    const record = await store.clusterRecord(name).catch(() => null);
    for (const spec of record?.options.replicas ?? []) {
      if (!isSelf(spec, config.nodeName, config.sshPort)) peers.push({ spec, volume: name, from: `replicas of ${name}` });
    }
  }
  return peers;
}

interface Target {
  peer: Peer;
  uses: PeerUse[];
}

/** known_hosts and the clock of each peer, one finding each. */
export async function peerChecks(config: Config, uses: readonly PeerUse[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  const targets = new Map<string, Target>();
  for (const use of uses) {
    let peer: Peer;
    try {
      peer = parsePeer(use.spec, config.sshPort);
    } catch (err) {
      findings.push(fail('peer', `${why(err)} (${use.from})`, 'correct the host in the schedule or the replicas', use.spec));
      continue;
    }
    const key = `${peer.user}@${knownHostsName(peer)}`;
    const target = targets.get(key) ?? { peer, uses: [] };
    target.uses.push(use);
    targets.set(key, target);
  }
  const hasClientKey = (await Promise.all(['id_ed25519', 'id_rsa'].map((n) => access(join(config.sshPath, n)).then(() => true, () => false)))).some(Boolean);
  const perTarget = new Map<Target, Finding[]>();
  await forEachLimited([...targets.values()], 8, async (target) => {
    perTarget.set(target, await checkPeer(config, target, hasClientKey));
  });
  for (const target of targets.values()) findings.push(...perTarget.get(target)!);
  return findings;
}

async function checkPeer(config: Config, { peer, uses }: Target, hasClientKey: boolean): Promise<Finding[]> {
  const name = knownHostsName(peer);
  const label = peer.label;
  const named = [...new Set(uses.map((u) => u.from))].join(', ');
  const known = join(config.sshPath, KNOWN_HOSTS_FILE);
  let recorded: Awaited<ReturnType<typeof recordedHostKeys>>;
  try {
    recorded = await recordedHostKeys(config.sshPath, peer);
  } catch (err) {
    return [warn('known-host', `${known} cannot be read: ${why(err)}`, 'run buttervolume doctor as root', label)];
  }
  if (recorded.length === 0) {
    return [
      warn(
        'known-host',
        `${known} records no host key of ${name} (${named}): the first connection trusts whatever key it is shown (and the doctor does not contact it: clock not compared)`,
        `on ${peer.host}, print its key (cat <its SSH_PATH>/${HOST_KEY_FILE}.pub), check it, then here: echo '${name} <type> <key>' >> ${known}`,
        label,
      ),
    ];
  }
  const findings = [ok('known-host', `${name}: ${known} line ${recorded.map((r) => r.line).join(', ')} (${named})`, label)];
  if (!hasClientKey) {
    findings.push(warn('clock', 'not compared: this host has no client key yet to connect with', 'start the daemon, or run buttervolume ssh-key (either makes it)', label));
    return findings;
  }
  findings.push(await clockCheck(config, peer, uses[0]!.volume));
  return findings;
}

async function clockCheck(config: Config, peer: Peer, volume: string): Promise<Finding> {
  const label = peer.label;
  const logger = { info: () => undefined, warning: () => undefined, debug: () => undefined };
  let clock: Awaited<ReturnType<typeof readPeerClock>>;
  try {
    clock = await readPeerClock(peer, volume, { sshPath: config.sshPath, logger, timeoutMs: CONNECT_MS, idleMs: CONNECT_MS });
  } catch (err) {
    const code = errCode(err);
    const fixes: Record<string, string> = {
      ERR_PEER_AUTH: `run buttervolume ssh-key here and add the line it prints to ${peer.host}'s SSH_PATH/authorized_keys`,
      ERR_HOST_KEY_CHANGED: `if ${peer.host} was reinstalled, check its new key and replace the line of ${config.sshPath}/${KNOWN_HOSTS_FILE}`,
      ERR_PEER_UNREACHABLE: `check that buttervolume runs on ${peer.host} with SSH_PORT ${peer.port} and that the port is open from here`,
      ERR_PEER_TIMEOUT: `see the daemon log on ${peer.host}`,
    };
    if (code === 'ERR_NOT_PERMITTED') return warn('clock', `not compared: ${why(err)}`, `let the key of this host list ${volume} on ${peer.host} (authorized_keys volumes=)`, label);
    return fail('clock', `cannot ask ${label}: ${why(err)}`, fixes[code ?? ''] ?? `see the daemon log on ${peer.host}`, label);
  }
  if (clock === null) return warn('clock', `not compared: ${label} runs a buttervolume that does not tell its time`, `upgrade buttervolume on ${peer.host}`, label);
  const offset = Math.round(clock.offsetMs);
  const margin = Math.ceil(clock.roundTripMs / 2);
  const apart = Math.abs(offset) - margin;
  const said = `${label}'s clock is ${Math.abs(offset) < 1000 ? `${Math.abs(offset)} ms` : `${(Math.abs(offset) / 1000).toFixed(1)} s`} ${offset >= 0 ? 'ahead of' : 'behind'} this host's (±${margin} ms)`;
  const ntp = 'keep both clocks set by NTP (systemd-timesyncd, chrony)';
  if (apart > config.syncClockSkewSeconds * 1000) {
    return fail('clock', `${said}, more than SYNC_CLOCK_SKEW (${config.syncClockSkewSeconds} s): sync skips files dated in the future, and snapshot dates of the two hosts disagree`, ntp, label);
  }
  if (apart > WARN_SKEW_MS) return warn('clock', `${said}: snapshot dates of the two hosts disagree by as much`, ntp, label);
  return ok('clock', said, label);
}

// `buttervolume doctor [--json]`: checks what users get wrong, one finding
// per check, OK, WARN or FAIL with how to fix it (src/cli/doctor/); exit
// status 1 when any FAIL. Reads only: nothing is created, no host key is
// recorded, Docker is asked read-only questions; peers get one `list`
// request each, bounded in time.
import type { Config } from '../../config.js';
import type { VolumeStore } from '../../store/volume-store.js';
import type { CommandContext } from '../context.js';
import { dockerChecks } from '../doctor/docker.js';
import { openat2Check, quotaCheck, storeChecks } from '../doctor/filesystem.js';
import { peerChecks, replicaPeers, scheduledPeers } from '../doctor/peers.js';
import { fail, formatFinding, ok, warn, why, type Finding } from '../doctor/report.js';
import { socketCheck } from '../doctor/socket.js';
import { sshChecks } from '../doctor/ssh.js';
import { CliError } from '../errors.js';

/** Runs every check; the findings in the order printed. */
async function diagnose(ctx: CommandContext): Promise<Finding[]> {
  let config: Config;
  try {
    config = await ctx.config();
  } catch (err) {
    return [fail('config', why(err), 'correct that value (in the environment or config.ini); the other checks need a valid configuration')];
  }
  const findings: Finding[] = [
    ok('config', `${config.configFile.path} ${config.configFile.found ? 'read' : 'not found: defaults and BUTTERVOLUME_* variables'}`),
    ...config.warnings.map((w) => warn('config', w, 'remove or correct that key')),
  ];
  const store = await storeChecks(config);
  findings.push(...store.findings, await openat2Check(), await quotaCheck(config, store.volumes));

  let volumes: VolumeStore | null = null;
  let names: string[] | null = null;
  if (store.volumes?.exists && store.volumes.onBtrfs && store.snapshots?.exists && store.snapshots.onBtrfs) {
    try {
      volumes = await ctx.store();
      names = (await volumes.list()).map((v) => v.name);
    } catch (err) {
      findings.push(warn('volumes', `the volumes cannot be listed: ${why(err)}`, 'run buttervolume doctor as root'));
    }
  }
  const schedule = await scheduledPeers(config);
  findings.push(schedule.finding);
  const docker = await dockerChecks(config, names);
  const managed = docker.facts.managedSocket;
  findings.push(await socketCheck(managed ?? config.socketPath, managed ? 'the managed plugin socket' : 'SOCKET'), ...docker.findings);

  const peers = [...schedule.peers, ...(volumes && names ? await replicaPeers(config, volumes, names) : [])];
  findings.push(...(await sshChecks(config, peers.length > 0)), ...(await peerChecks(config, peers)));
  return findings;
}

export async function run(ctx: CommandContext): Promise<void> {
  const findings = await diagnose(ctx);
  const failed = findings.filter((f) => f.status === 'FAIL').length;
  ctx.out.result(findings.map(formatFinding), { ok: failed === 0, checks: findings });
  if (failed > 0) throw new CliError(`${failed} check${failed === 1 ? '' : 's'} failed (FAIL above)`);
}

// Who made a temporary name, precisely enough to tell later whether that
// process still runs. A PID alone is not enough: PIDs are reused, and a
// managed plugin's node is PID 1 at every start. So a stamp adds the
// process's start time (clock ticks since boot, field 22 of
// /proc/<pid>/stat) and the boot (a prefix of the kernel's boot_id): a
// process is the stamp's only if the boot, the PID and the start time match.
import { readFileSync } from 'node:fs';
import { errCode } from './err-code.js';

export interface ProcessStamp {
  pid: number;
  /** Start time in clock ticks since boot, as /proc writes it ("0" when unknown). */
  start: string;
  /** The first 8 hex digits of /proc/sys/kernel/random/boot_id ("00000000" when unknown). */
  boot: string;
}

/** Fields 1 (pid) and 22 (starttime) of a /proc/<pid>/stat text; the name (field 2) may hold spaces and ")". */
function parseStat(text: string): { pid: number; start: string } | null {
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' '); // from field 3 (state) on
  const start = fields[22 - 3];
  const pid = Number.parseInt(text, 10);
  return close > 0 && start !== undefined && /^\d+$/.test(start) && Number.isSafeInteger(pid) ? { pid, start } : null;
}

function readStat(pid: number | 'self'): { pid: number; start: string } | null {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
}

let own: (ProcessStamp & { procIsOurs: boolean }) | undefined;

function ownStamp(): ProcessStamp & { procIsOurs: boolean } {
  if (own) return own;
  let stat: { pid: number; start: string } | null = null;
  let boot = '00000000';
  try {
    stat = readStat('self');
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').replace(/-/g, '').slice(0, 8).toLowerCase();
  } catch {
    // No /proc: stamps hold what is known; isRunning() then keeps what it cannot judge.
  }
  // A /proc of another PID namespace (not remounted in a container) numbers processes differently.
  own = { pid: process.pid, start: stat?.start ?? '0', boot: /^[0-9a-f]{8}$/.test(boot) ? boot : '00000000', procIsOurs: stat?.pid === process.pid };
  return own;
}

/** This process's stamp (read once). */
export function processStamp(): ProcessStamp {
  const { pid, start, boot } = ownStamp();
  return { pid, start, boot };
}

/** Whether process `pid` exists (EPERM: it does, not ours). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}

/**
 * Whether the process of `stamp` still runs. Another boot's never does;
 * ours is this process exactly when the start time is ours too; another PID
 * runs when /proc/<pid>/stat has the same start time. What cannot be judged
 * (no /proc, or a /proc of another PID namespace) counts as running when
 * the PID exists: a live receive is never taken for a leftover.
 */
export function isRunning(stamp: ProcessStamp): boolean {
  const me = ownStamp();
  if (stamp.boot !== me.boot) return me.boot === '00000000' && pidExists(stamp.pid);
  if (stamp.start === '0' || me.start === '0') return pidExists(stamp.pid);
  if (stamp.pid === me.pid) return stamp.start === me.start;
  if (!me.procIsOurs) return pidExists(stamp.pid);
  try {
    return readStat(stamp.pid)?.start === stamp.start;
  } catch (err) {
    const code = errCode(err);
    return !(code === 'ENOENT' || code === 'ESRCH'); // gone; anything else: cannot tell
  }
}

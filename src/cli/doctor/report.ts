// What `buttervolume doctor` finds: one finding per check (per peer for the
// peer checks), OK, WARN or FAIL, and for the last two how to fix it.

export type Status = 'OK' | 'WARN' | 'FAIL';

export interface Finding {
  /** The check's name, stable for scripts: `socket`, `same-filesystem`, `clock`... */
  check: string;
  /** What it is about when the check runs once per thing (a peer: `node2:1122`). */
  subject?: string;
  status: Status;
  /** What was found, one line. */
  message: string;
  /** How to fix it (WARN, FAIL). */
  fix?: string;
}

export const ok = (check: string, message: string, subject?: string): Finding => ({ check, ...(subject ? { subject } : {}), status: 'OK', message });
export const warn = (check: string, message: string, fix: string, subject?: string): Finding => ({ check, ...(subject ? { subject } : {}), status: 'WARN', message, fix });
export const fail = (check: string, message: string, fix: string, subject?: string): Finding => ({ check, ...(subject ? { subject } : {}), status: 'FAIL', message, fix });

/** `FAIL  socket: <message>; fix: <fix>` */
export function formatFinding(f: Finding): string {
  return `${f.status.padEnd(4)}  ${f.check}${f.subject ? ` ${f.subject}` : ''}: ${f.message}${f.fix ? `; fix: ${f.fix}` : ''}`;
}

/** The message of an error, for a finding. */
export const why = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Bytes as people read them: 1.5 GiB. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

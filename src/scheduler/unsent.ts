// The fix of the original's issue #22. Its `replicate:` job took a snapshot,
// then sent it; when the host was down the snapshot stayed, and the next
// period took another: one more local snapshot per period for as long as the
// host was down. Here a `replicate:<host>` job first looks for a snapshot it
// can send instead of taking a new one (VolumeStore.unsentSnapshot), and a
// snapshot it took and could not send is deleted once a newer one
// supersedes it (`superseded`, below), so at most one unsent snapshot per
// job stays.
/**
 * Whether `previous`, a snapshot this job took and has not sent, may be
 * deleted now that `current` is the one to send: it is another name, still
 * there, and sent to no host at all (no marker `previous@*`), so nothing
 * depends on it. A user who wants local history schedules `snapshot`.
 */
export function superseded(previous: string | undefined, current: string, names: readonly string[]): previous is string {
  if (previous === undefined || previous === current || !names.includes(previous)) return false;
  return !names.some((n) => n.startsWith(`${previous}@`));
}

// The one reader of an error's `code`: errors reach us from Node (errno
// names), the addon (BtrfsError: errno names) and our own layers (ERR_*),
// and anything may be thrown, so the code is read defensively, once.

/** The string `code` of `err` (an errno name or an `ERR_*`), if it has one. */
export function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether `err` says that what was asked for does not exist (ENOENT). */
export function isMissing(err: unknown): boolean {
  return errCode(err) === 'ENOENT';
}

/** Rethrows `err` unless it says ENOENT: for a `.catch()` where what is gone is what was wanted. */
export function ignoreMissing(err: unknown): void {
  if (!isMissing(err)) throw err;
}

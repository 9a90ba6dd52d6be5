// The serving side of sync: the files of a live volume, read without ever
// following a symlink out of it (the volume's content is a container's).
import type { Writable } from 'node:stream';

import { ReplicationError } from './protocol.js';

/** Writes the tree of the volume at `root`: one JSON line per entry, then {"end":true}. */
export async function serveTree(out: Writable, root: string): Promise<void> {
  void out;
  throw new ReplicationError('ERR_NOT_AVAILABLE', `sync is not available yet (${root})`);
}

/** Writes the files `paths` of the volume at `root` (see protocol.ts). */
export async function serveFiles(out: Writable, root: string, paths: readonly string[]): Promise<void> {
  void out;
  void paths;
  throw new ReplicationError('ERR_NOT_AVAILABLE', `sync is not available yet (${root})`);
}

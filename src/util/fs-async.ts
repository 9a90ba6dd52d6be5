// The promise-returning fs calls the store needs, through node:fs's callback
// API: importing node:fs/promises loads some 25 more internal modules
// (streams, readline, file watchers), ~3 ms of CPU at each start of the CLI
// (test/cli/startup.test.ts checks the short commands never load it).
// Named imports, not `import * as fs`: the bundle would copy every export of
// node:fs into a namespace object at each start (esbuild's interop, ~1 ms).
import {
  close as closeCallback,
  fsync as fsyncCallback,
  mkdir as mkdirCallback,
  open as openCallback,
  readdir as readdirCallback,
  readFile as readFileCallback,
  realpath as realpathCallback,
  rm as rmCallback,
  stat as statCallback,
  statfs as statfsCallback,
} from 'node:fs';
import { promisify } from 'node:util';

import { isMissing } from './err-code.js';

export const close = promisify(closeCallback);
export const fsync = promisify(fsyncCallback);
export const mkdir = promisify(mkdirCallback);
export const open = promisify(openCallback);
export const readdir = promisify(readdirCallback);
export const readFile = promisify(readFileCallback);
export const realpath = promisify(realpathCallback);
export const rm = promisify(rmCallback);
export const stat = promisify(statCallback);
export const statfs = promisify(statfsCallback);

/** The text of `file`, or null when there is none (ENOENT, ENOTDIR); other errors are thrown. */
export async function readTextIfAny(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

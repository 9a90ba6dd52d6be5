// ssh2, loaded when first needed: it costs the daemon ~14 MB of RSS, and an
// idle daemon whose keys exist needs none of it until a peer connects.
// require, not import(): the CLI's bundle runs from a vm.Script (its code
// cache, see bin/buttervolume.cjs), where import() has no loader.
import { createRequire } from 'node:module';

import type ssh2 from 'ssh2';

let loaded: typeof ssh2 | undefined;

export function loadSsh2(): typeof ssh2 {
  return (loaded ??= createRequire(import.meta.url)('ssh2') as typeof ssh2);
}

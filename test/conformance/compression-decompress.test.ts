// Conformance: the compressed streams (v2 --compressed-data) received with the
// encoded writes decompressed in-process (zlib, zstd, lzo), the fallback for
// a kernel that refuses BTRFS_IOC_ENCODED_WRITE. A file of its own: the
// harness receives a chain once per process.
import t from 'tap';

import { ourDecompressingReceiver } from '../fixtures/conformance/receivers.js';
import { runGroup } from '../fixtures/conformance/suite.js';

await runGroup(t, 'compression', {
  receiver: { name: 'ours, decompressing in-process', receive: ourDecompressingReceiver },
  variants: ['v2-compressed'],
});

// Size limits and usage (docs/quotas.md): beside the original's extension
// endpoints, in their style. What Get shows (Used, Size) is in docker.ts.
import { parseResizeSize } from '../../store/quota.js';
import type { Endpoint } from '../endpoint.js';
import { optionalBoolean, optionalString, requiredString, stringOrInteger } from '../fields.js';

const post = ['POST'] as const;
const getOrPost = ['GET', 'POST'] as const;

/** Volume.Resize, Snapshot.Sizes. */
export const quotaEndpoints: readonly Endpoint[] = [
  {
    // Size: `10G`, `512M`, a number of bytes, or `none`; Force: below what the volume uses.
    path: '/VolumeDriver.Volume.Resize',
    methods: post,
    fields: ['Name', 'Size', 'Force'],
    async handle({ body }, { store }) {
      const name = requiredString(body, 'Name');
      const given = stringOrInteger(body, 'Size');
      const size = parseResizeSize(String(given));
      const result = await store.quotas.resize(name, size, { force: optionalBoolean(body, 'Force') });
      return { Volume: name, Size: result.size, Used: result.used };
    },
  },
  {
    // What deleting each snapshot of Name (of every volume without it) would free.
    path: '/VolumeDriver.Snapshot.Sizes',
    methods: getOrPost,
    fields: ['Name'],
    async handle({ body }, { store, gate }) {
      const volume = optionalString(body, 'Name') || undefined;
      const sizes = await gate.run(volume ?? '', () => store.quotas.snapshotSizes(volume));
      return { Snapshots: sizes.map((s) => ({ Name: s.name, Exclusive: s.exclusive, Source: s.source })) };
    },
  },
];

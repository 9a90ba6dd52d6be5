// Docker's volume plugin protocol (Plugin.Activate and VolumeDriver.*): what
// dockerd and Podman call. Unknown fields are ignored here, as engines may add
// some; names and options are checked by the store.
import { parseCreateOptions } from '../../store/create-options.js';
import type { VolumeStatus } from '../../store/volume-store.js';
import type { JsonObject } from '../body.js';
import type { Endpoint } from '../endpoint.js';
import { optionalString, requiredString } from '../fields.js';

/**
 * The caller ID of Mount/Unmount. Engines before Docker 1.13 (and the
 * original's own tests) send none: such a mount is answered but not counted,
 * since no Unmount could ever match it and the volume would stay "in use".
 */
function mountId(body: JsonObject): string | undefined {
  const id = optionalString(body, 'ID');
  return id === '' ? undefined : id;
}

/** VolumeStatus as Docker's flat `Status` map: `{Snapshots, LastSnapshot, Mounts, CopyOnWrite, Compression}`. */
function statusMap(status: VolumeStatus): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(status)) out[key.charAt(0).toUpperCase() + key.slice(1)] = value;
  return out;
}

const post = ['POST'] as const;

/** The endpoints of Docker's protocol, in the order of its documentation. */
export const dockerEndpoints: readonly Endpoint[] = [
  {
    path: '/Plugin.Activate',
    methods: post,
    handle: async () => ({ Implements: ['VolumeDriver'] }),
  },
  {
    path: '/VolumeDriver.Create',
    methods: post,
    async handle({ body }, { store, gate }) {
      const name = requiredString(body, 'Name');
      const options = parseCreateOptions(Object.hasOwn(body, 'Opts') ? body.Opts : undefined);
      await gate.run(name, () => store.create(name, options));
      return {};
    },
  },
  {
    path: '/VolumeDriver.Remove',
    methods: post,
    async handle({ body }, { store, gate }) {
      const name = requiredString(body, 'Name');
      await gate.run(name, () => store.remove(name));
      return {};
    },
  },
  {
    path: '/VolumeDriver.Mount',
    methods: post,
    async handle({ body }, { store }) {
      const name = requiredString(body, 'Name');
      const id = mountId(body);
      return { Mountpoint: id === undefined ? await store.path(name) : await store.mount(name, id) };
    },
  },
  {
    path: '/VolumeDriver.Unmount',
    methods: post,
    async handle({ body }, { store }) {
      const name = requiredString(body, 'Name');
      const id = mountId(body);
      if (id !== undefined) await store.unmount(name, id);
      return {};
    },
  },
  {
    path: '/VolumeDriver.Path',
    methods: post,
    async handle({ body }, { store }) {
      return { Mountpoint: await store.path(requiredString(body, 'Name')) };
    },
  },
  {
    path: '/VolumeDriver.Get',
    methods: post,
    async handle({ body }, { store }) {
      const volume = await store.get(requiredString(body, 'Name'));
      return {
        Volume: {
          Name: volume.name,
          Mountpoint: volume.mountpoint,
          CreatedAt: volume.createdAt.toISOString(),
          Status: statusMap(volume.status),
        },
      };
    },
  },
  {
    path: '/VolumeDriver.List',
    methods: post,
    async handle(_, { store }) {
      const volumes = await store.list();
      return { Volumes: volumes.map((v) => ({ Name: v.name, Mountpoint: v.mountpoint })) };
    },
  },
  {
    path: '/VolumeDriver.Capabilities',
    methods: post,
    handle: async () => ({ Capabilities: { Scope: 'local' } }),
  },
];

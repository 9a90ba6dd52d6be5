// What a route of the plugin is: a path, its methods, and a handler from the
// request's JSON body to the answer's fields. The app adds `"Err": ""` on
// success and maps every thrown error to `{"Err": ...}` in one place.
import type { Logger } from '../log.js';
import type { ClusterCoordinator } from '../replication/cluster.js';
import type { Replicator } from '../replication/replicator.js';
import type { ScheduleFile } from '../scheduler/schedule-file.js';
import type { VolumeStore } from '../store/volume-store.js';
import type { JsonObject } from './body.js';
import type { WorkGate } from './gate.js';

/** What every handler may use. */
export interface PluginContext {
  store: VolumeStore;
  schedule: ScheduleFile;
  logger: Logger;
  /** Admission of heavy (ioctl-bound) requests: see gate.ts. */
  gate: WorkGate;
  /** Send, receive and sync with peers. */
  replicator: Replicator;
  /** Volumes that follow their service between nodes (Mount takes over, Unmount lets go); absent: Mount and Unmount only count. */
  cluster?: ClusterCoordinator;
}

/** One request, as a handler sees it. */
export interface EndpointRequest {
  /** The JSON body (`{}` when empty). */
  body: JsonObject;
  /** Path parameters (`/VolumeDriver.Snapshot.List/:name`), decoded. */
  params: Record<string, string>;
}

/** A route of the plugin. */
export interface Endpoint {
  /** Path, with `:param`s as @koa/router reads them. */
  path: string;
  methods: ReadonlyArray<'GET' | 'POST'>;
  /**
   * The fields a request may carry: any other is refused (naming it), so a
   * misspelt option never goes unnoticed. Undefined for Docker's own
   * endpoints: engines may add fields, and they must keep working.
   */
  fields?: readonly string[];
  /** Returns the answer's fields (without `Err`). */
  handle(request: EndpointRequest, context: PluginContext): Promise<JsonObject>;
}

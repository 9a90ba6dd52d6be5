// What the embedded SSH server does for a peer, one request per channel (see
// protocol.ts): list the snapshots it holds of a volume, receive one, send
// one back (pull), and serve a live volume's files (sync). Every name is
// checked with the store's rules; a test request works in TEST_REMOTE_PATH
// (the original's tests replicated a host to itself there).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import * as btrfs from '../btrfs/index.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { receiveSnapshot, snapshotsIn } from '../store/replicas.js';
import { isSendMarker, validateSnapshotName, validateVolumeName } from '../store/names.js';
import type { VolumeStore } from '../store/volume-store.js';
import { PROTOCOL_VERSION, ReplicationError, parseRequest, readLine, writeLine, type RemoteSnapshot, type Request } from './protocol.js';
import { serveFiles, serveTree } from './sync-source.js';

/** A server channel: data both ways, and stderr for the last word of a send. */
export interface ServiceChannel extends Duplex {
  stderr: Writable;
}

export class ReplicationService {
  constructor(
    readonly store: VolumeStore,
    readonly config: Config,
    readonly logger: Logger,
  ) {}

  /** Where received snapshots go: SNAPSHOTS_PATH, or TEST_REMOTE_PATH for a test request. */
  async snapshotsDir(test: boolean): Promise<string> {
    if (!test) return this.config.snapshotsPath;
    await mkdir(this.config.testRemotePath, { recursive: true });
    return this.config.testRemotePath;
  }

  /** Where a live volume is: VOLUMES_PATH/<volume>, or TEST_REMOTE_PATH/<volume> for a test request. */
  volumePath(volume: string, test: boolean): string {
    return join(test ? this.config.testRemotePath : this.config.volumesPath, validateVolumeName(volume));
  }

  /** Serves one channel: a request, its answer, then what it calls for. Never throws. */
  async handle(channel: ServiceChannel, who: string): Promise<void> {
    let request: Request | undefined;
    try {
      request = parseRequest(await readLine(channel));
      validateVolumeName(request.volume);
      this.logger.debug(`ssh ${who}: ${request.op} ${request.volume}${request.test ? ' (test)' : ''}`);
      await this.dispatch(channel, request);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const message = (err as Error).message ?? String(err);
      if (request) this.logger.warning(`ssh ${who}: ${request.op} ${request.volume} failed: ${message}`);
      else this.logger.warning(`ssh ${who}: bad request: ${message}`);
      if (channel.writable) writeLine(channel, { ok: false, error: message, code: typeof code === 'string' ? code : 'ERR_PEER_FAILED', v: PROTOCOL_VERSION });
    } finally {
      if (!channel.destroyed) channel.end();
    }
  }

  private async dispatch(channel: ServiceChannel, request: Request): Promise<void> {
    switch (request.op) {
      case 'list': {
        const snapshots: RemoteSnapshot[] = (await snapshotsIn(await this.snapshotsDir(request.test), request.volume))
          .filter((s) => s.readonly)
          .map(({ name, uuid, receivedUuid, parentUuid, ctransid, stransid, rtransid, readonly }) => ({ name, uuid, receivedUuid, parentUuid, ctransid, stransid, rtransid, readonly }));
        writeLine(channel, { ok: true, snapshots });
        return;
      }
      case 'receive': {
        const dir = await this.snapshotsDir(request.test);
        writeLine(channel, { ok: true, ready: true });
        const result = await receiveSnapshot(this.store, dir, request.volume, request.snapshot, channel);
        this.logger.info(`received ${result.name} into ${dir}`);
        writeLine(channel, { ok: true, received: { name: result.name, uuid: result.uuid, receivedUuid: result.receivedUuid, parentUuid: result.parentUuid } });
        return;
      }
      case 'send': {
        const dir = await this.snapshotsDir(request.test);
        const snapshot = this.snapshotOf(request.volume, request.snapshot);
        const parent = request.parent === null ? undefined : join(dir, this.snapshotOf(request.volume, request.parent));
        for (const path of [join(dir, snapshot), ...(parent ? [parent] : [])]) {
          if (!(await btrfs.isSubvolume(path))) throw new ReplicationError('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${path}`);
        }
        const stream = btrfs.send(join(dir, snapshot), parent ? { parent } : {});
        writeLine(channel, { ok: true });
        try {
          await pipeline(stream, channel, { end: false });
          writeLine(channel.stderr, { ok: true });
        } catch (err) {
          writeLine(channel.stderr, { ok: false, error: (err as Error).message, code: (err as { code?: string }).code ?? 'ERR_PEER_FAILED' });
          throw err;
        }
        return;
      }
      // Each writes {"ok":true} itself once the volume is open: a missing volume is a refusal.
      case 'tree':
        await serveTree(channel, this.volumePath(request.volume, request.test));
        return;
      case 'files':
        await serveFiles(channel, this.volumePath(request.volume, request.test), request.paths);
        return;
    }
  }

  private snapshotOf(volume: string, name: string): string {
    validateSnapshotName(name);
    if (!name.startsWith(`${volume}@`) || isSendMarker(name)) throw new ReplicationError('ERR_BAD_REQUEST', `${name} is not a snapshot of ${volume}`);
    return name;
  }
}

// receive <host> <volume> against a peer that talks without end on the
// channel's stderr during a send (where an honest one writes its one-line
// last word): the puller keeps only the last few KiB, so its memory does not
// grow with what the peer says, and the peer's last word still becomes the
// error. The peer is a real ssh2 server on loopback, playing the hostile
// side; our real client, pull and store on a real btrfs.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import t from 'tap';

import { createLogger } from '../../src/log.js';
import { withPeer } from '../../src/replication/client.js';
import { parsePeer } from '../../src/replication/peer.js';
import { readLine } from '../../src/replication/frames.js';
import { SUBSYSTEM, type RemoteSnapshot } from '../../src/replication/protocol.js';
import { pullVolume } from '../../src/replication/pull.js';
import { requireRoot } from '../fixtures/btrfs.js';
import { daemonConfig } from '../fixtures/daemon.js';
import { openStore } from '../fixtures/store.js';

requireRoot();

interface TeardownHost {
  teardown(fn: () => void | Promise<void>): void;
}

const MiB = 1024 * 1024;
const SPOKEN = 256 * MiB;
const SNAPSHOT: RemoteSnapshot = { name: 'db@2024-01-01T00:00:00.000000', uuid: '11111111-2222-3333-4444-555555555555', receivedUuid: null, parentUuid: null, ctransid: 7, stransid: 0, rtransid: 0, readonly: true };
const LAST_WORD = { ok: false, code: 'ERR_TALKATIVE', error: 'its last word, after 256 MiB of talk' };

/** Writes `data` to `out`, waiting when it is full. */
async function write(out: NodeJS.WritableStream, data: Buffer | string): Promise<void> {
  if (!out.write(data)) await new Promise((resolve) => out.once('drain', resolve));
}

/**
 * A peer that lists one snapshot of db and, asked for it, says {"ok":true},
 * then SPOKEN bytes on stderr; then (having measured the heap, `heldAfterTalk`)
 * its last word, and ends the channel without a stream.
 */
async function talkativePeer(t: TeardownHost): Promise<{ port: number; heldAfterTalk: Promise<number> }> {
  let measured!: (n: number) => void;
  const heldAfterTalk = new Promise<number>((resolve) => (measured = resolve));
  const hostKey = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }).private;
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    client.on('authentication', (ctx) => ctx.accept());
    client.on('error', () => undefined);
    client.on('session', (accept) => {
      accept().on('subsystem', (acceptSub, _reject, info) => {
        if (info.name !== SUBSYSTEM) return;
        const channel = acceptSub();
        void (async () => {
          const request = (await readLine(channel)) as { op: string };
          if (request.op === 'list') {
            channel.end(`${JSON.stringify({ ok: true, snapshots: [SNAPSHOT] })}\n`);
            return;
          }
          await write(channel, `${JSON.stringify({ ok: true })}\n`);
          const base = process.memoryUsage().heapUsed;
          const talk = Buffer.alloc(64 * 1024, 'blah ');
          for (let sent = 0; sent < SPOKEN; sent += talk.length) await write(channel.stderr, talk);
          measured(process.memoryUsage().heapUsed - base);
          // Sent before the end (ssh2 would send the EOF ahead of a write still waiting for window).
          await new Promise((resolve) => channel.stderr.write(`\n${JSON.stringify(LAST_WORD)}\n`, resolve));
          channel.end();
        })().catch(() => channel.destroy());
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, heldAfterTalk };
}

t.test("a peer's stderr is not held whole: its memory is bounded, its last word still the error", async (t) => {
  const { mnt, store } = await openStore(t);
  const ctx = { config: daemonConfig(mnt), store, logger: createLogger('ERROR', () => undefined) };
  const sshPath = mkdtempSync(join(tmpdir(), 'bv-pull-stderr-'));
  t.teardown(() => rmSync(sshPath, { recursive: true, force: true }));
  const { port, heldAfterTalk } = await talkativePeer(t);
  const pulled = withPeer(parsePeer(`127.0.0.1:${port}`, 1122), { sshPath, logger: ctx.logger }, (conn) => pullVolume(ctx, conn, 'db'));
  await t.rejects(pulled, { code: 'ERR_TALKATIVE', message: `127.0.0.1:${port}: ${LAST_WORD.error}` }, "the peer's last word is the error");
  const held = await heldAfterTalk;
  t.ok(held < 64 * MiB, `${Math.round(held / MiB)} MiB more heap after ${SPOKEN / MiB} MiB of talk`);
});

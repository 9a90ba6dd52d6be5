// VolumeStore.receiveSnapshot(): the stream may hold the one snapshot asked for and
// nothing else, even when it fails afterwards (a complete subvolume under
// another name, a send marker say, then garbage, must leave nothing), and
// the store's RECEIVE_RESERVE is kept free.
import { readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import t, { type Test } from 'tap';

import { VolumeStore } from '../../src/store/volume-store.js';
import { Attr, Cmd, SendStreamWriter, tlv } from '../fixtures/send-stream-writer.js';
import { openStore } from '../fixtures/store.js';

const { options, store } = await openStore(t);
const dir = options.snapshotsPath;
const name = 'vol@2024-01-01T00:00:00.000000';

/** A complete subvolume `as` with one file. */
const snapshotStream = (as: string) => new SendStreamWriter(2).subvol(as).mkfile('f', 257).write('f', 0, 'planted?').end();

async function refused(t: Test, stream: Buffer, into = store): Promise<Record<string, unknown>> {
  const err = await into.receiveSnapshot('vol', name, Readable.from([stream])).then(
    () => null,
    (e: Record<string, unknown>) => e,
  );
  t.ok(err, 'refused');
  t.same(readdirSync(dir), [], 'nothing left: no subvolume, no temporary');
  return err ?? {};
}

t.test('a complete subvolume under another name, then garbage: refused, nothing planted', async (t) => {
  const err = await refused(t, Buffer.concat([snapshotStream(`${name}@evilhost`).toBuffer(), Buffer.from('garbage')]));
  t.match(err, { code: 'ERR_RECEIVE_UNEXPECTED', command: 1, commandName: 'SUBVOL', message: new RegExp(`'${name}'.*'${name}@evilhost'`) });
});

t.test('another name, well-formed to the end: refused the same', async (t) => {
  const err = await refused(t, snapshotStream('vol@2023-01-01T00:00:00.000000').toBuffer());
  t.match(err, { code: 'ERR_RECEIVE_UNEXPECTED' });
});

t.test('the right one, then a second subvolume (another stream, or in the same one): nothing of either stays', async (t) => {
  const twoStreams = Buffer.concat([snapshotStream(name).toBuffer(), snapshotStream(`${name}@evilhost`).toBuffer()]);
  t.match(await refused(t, twoStreams), { code: 'ERR_RECEIVE_UNEXPECTED', message: /a second subvolume/ });
  const sameStream = new SendStreamWriter(2).subvol(name).mkfile('f', 257).subvol('vol@2023-01-01T00:00:00.000000').end();
  t.match(await refused(t, sameStream.toBuffer()), { code: 'ERR_RECEIVE_UNEXPECTED', message: /a second subvolume/ });
  const thenGarbage = Buffer.concat([snapshotStream(name).toBuffer(), Buffer.from('garbage')]);
  t.match(await refused(t, thenGarbage), { code: /^ERR_SEND_STREAM_/ }, 'the right one is in place only once the input ends well');
});

t.test('the right one alone is received', async (t) => {
  const r = await store.receiveSnapshot('vol', name, Readable.from([snapshotStream(name).toBuffer()]));
  t.equal(r.name, name);
  t.same(readdirSync(dir), [name]);
  const { deleteSubvolume } = await import('../../src/btrfs/index.js');
  await deleteSubvolume(r.path);
});

t.test("the store's RECEIVE_RESERVE applies", async (t) => {
  const fallocate = new SendStreamWriter(2).subvol(name).mkfile('f', 257)
    .command(Cmd.FALLOCATE, [tlv.str(Attr.PATH, 'f'), tlv.u32(Attr.FALLOCATE_MODE, 0), tlv.u64(Attr.FILE_OFFSET, 0), tlv.u64(Attr.SIZE, 64 * 1024 * 1024)])
    .end().toBuffer();
  // 1 GiB filesystem: 95% kept free leaves no room for 64 MiB.
  const strict = await VolumeStore.open({ ...options, receiveReserve: { percent: 95 } });
  t.match(await refused(t, fallocate, strict), { code: 'ERR_RECEIVE_NO_SPACE', commandName: 'FALLOCATE', message: /RECEIVE_RESERVE/ });
  const bytes = await VolumeStore.open({ ...options, receiveReserve: { bytes: 2 * 1024 ** 3 } });
  t.match(await refused(t, fallocate, bytes), { code: 'ERR_RECEIVE_NO_SPACE' });
  const r = await store.receiveSnapshot('vol', name, Readable.from([fallocate]));
  t.equal(r.name, name, 'without a reserve it fits');
});

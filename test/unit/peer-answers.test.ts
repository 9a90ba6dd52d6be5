// A peer's answers checked before use: snapshot lists (send, pull), tree
// entries and file headers (sync), failures and last words.
import t from 'tap';

import { answerError, checkFileHeader, checkSnapshotList, checkTreeEntry, lastWordError } from '../../src/replication/peer-answers.js';

const U = '0a1b2c3d-0000-4000-8000-00000000abcd';
const good = { name: 'v@2024-01-01T00:00:00.000000', uuid: U, receivedUuid: null, parentUuid: U, ctransid: 7, stransid: 0, rtransid: 0, readonly: true };

t.test('snapshot lists: every field checked, only snapshots of the volume asked about', async (t) => {
  t.same(checkSnapshotList({ ok: true, snapshots: [good] }, 'v', 'peer'), [good]);
  t.same(checkSnapshotList({ ok: true, snapshots: [{ ...good, extra: 'dropped' }] }, 'v', 'peer'), [good], 'unknown fields are dropped');
  const bad: Array<[string, unknown]> = [
    ['no list', undefined],
    ['not a list', { a: 1 }],
    ['another volume', [{ ...good, name: 'w@2024-01-01T00:00:00.000000' }]],
    ['a path', [{ ...good, name: 'v@../../etc' }]],
    ['no name', [{ ...good, name: 7 }]],
    ['a bad uuid', [{ ...good, uuid: 'x' }]],
    ['a negative transid', [{ ...good, ctransid: -1 }]],
    ['a fractional transid', [{ ...good, stransid: 1.5 }]],
    ['a transid as text', [{ ...good, rtransid: '7' }]],
    ['no readonly', [{ ...good, readonly: 'yes' }]],
    ['null', [null]],
  ];
  for (const [what, snapshots] of bad) {
    t.throws(() => checkSnapshotList({ ok: true, snapshots }, 'v', 'peer'), { code: 'ERR_PROTOCOL', message: /^peer: / }, what);
  }
  t.throws(() => checkSnapshotList({ snapshots: Array(5).fill(good) }, 'v', 'peer', 4), { code: 'ERR_PROTOCOL', message: /at most 4/ }, 'bounded');
});

t.test('tree entries and file headers', async (t) => {
  const e = { path: 'a/b', type: 'file', mode: 0o100644, uid: 0, gid: 0, size: 3, mtime: '1700000000000000000', dev: 1, ino: 2, nlink: 1 };
  t.same(checkTreeEntry(e, 'p'), e);
  for (const bad of [{ ...e, path: '../x' }, { ...e, path: '/x' }, { ...e, type: 'socket' }, { ...e, mtime: 'soon' }, { ...e, type: 'symlink' }, { ...e, path: '', type: 'file' }, { ...e, uid: -1 }]) {
    t.throws(() => checkTreeEntry(bad, 'p'), { code: 'ERR_PROTOCOL' }, JSON.stringify(bad));
  }
  const h = { path: 'f', ok: true, mode: 0o100600, uid: 1, gid: 1, mtime: '5' };
  t.same(checkFileHeader(h, 'f', 'p'), h);
  t.same(checkFileHeader({ path: 'f', ok: false, error: 'gone', code: 'ENOENT' }, 'f', 'p'), { path: 'f', ok: false, error: 'gone', code: 'ENOENT' });
  t.throws(() => checkFileHeader(h, 'g', 'p'), { code: 'ERR_PROTOCOL', message: /expected the header of "g"/ }, 'another file than the one asked for');
  t.throws(() => checkFileHeader({ ...h, mode: 'rwx' }, 'f', 'p'), { code: 'ERR_PROTOCOL' });
});

t.test("a failure's code is the peer's only in our ERR_* form; its words made printable", async (t) => {
  t.equal(answerError({ ok: true }, 'p'), null);
  t.match(answerError({ ok: false, error: 'no', code: 'ERR_NOT_PERMITTED' }, 'p'), { code: 'ERR_NOT_PERMITTED', message: 'p: no' });
  t.match(answerError({ ok: false, error: 'no', code: 'EPERM; rm -rf /' }, 'p'), { code: 'ERR_PEER_FAILED' });
  t.match(answerError({ ok: false, error: 'a\u001b[31mred\nline', code: 'ERR_X' }, 'p')?.message, /^p: a.*red.*line$/);
  t.notMatch(answerError({ ok: false, error: 'a\u001b[31mred', code: 'ERR_X' }, 'p')?.message, /\u001b/, 'no terminal escapes');
  t.match(answerError('garbage', 'p'), { code: 'ERR_PEER_FAILED', message: 'p: an answer that is not one' });
  t.match(lastWordError('noise\n{"ok":false,"error":"send failed","code":"ERR_X"}\n', 'p'), { code: 'ERR_X', message: 'p: send failed' });
  t.match(lastWordError('{"ok":false,"error":"x","code":"not-a-code"}', 'p'), { code: 'ERR_PEER_FAILED' }, "the peer's trailer code is checked too (it was passed on unchecked)");
  t.equal(lastWordError('{"ok":true}', 'p'), null);
  t.equal(lastWordError('not json', 'p'), null);
  t.equal(lastWordError('', 'p'), null);
});

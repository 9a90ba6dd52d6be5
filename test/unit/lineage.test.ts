// The replication lineage rules (store/lineage.ts), one by one, on
// identities as btrfs gives them: what a copy is, which states two hosts
// share, the parent of an incremental either way, the newest state, what
// purge must keep.
import t from 'tap';

import { chooseParent, identity, isCopyOf, newestSendable, newestState, replicationKeep, sameSnapshot, sameState, type SnapshotIdentity } from '../../src/store/lineage.js';

const F = '%Y-%m-%dT%H:%M:%S.%f';
const U = (n: number): string => `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`;

/** A snapshot taken here: its own UUID, never received. */
function taken(name: string, uuid: number, ctransid: number, extra: Partial<SnapshotIdentity> = {}): SnapshotIdentity {
  return { name, uuid: U(uuid), receivedUuid: null, parentUuid: U(999), ctransid, stransid: 0, rtransid: 0, readonly: true, ...extra };
}

/** What receiving a stream of `source` makes: received UUID ID(source), stransid source.ctransid, ctransid = rtransid here. */
function received(source: SnapshotIdentity, uuid: number, transid: number, extra: Partial<SnapshotIdentity> = {}): SnapshotIdentity {
  return { name: source.name, uuid: U(uuid), receivedUuid: identity(source), parentUuid: null, ctransid: transid, stransid: source.ctransid, rtransid: transid, readonly: true, ...extra };
}

t.test('identity: the received UUID when there is one, else the UUID', async (t) => {
  const s = taken('v@1', 1, 10);
  t.equal(identity(s), U(1));
  t.equal(identity(received(s, 2, 50)), U(1), 'a copy keeps the original identity');
  t.equal(identity(received(received(s, 2, 50), 3, 70)), U(1), 'and so does a copy of a copy');
});

t.test('isCopyOf / sameState: received from that very state, read-only, unchanged since', async (t) => {
  const s = taken('v@1', 1, 10);
  const copy = received(s, 2, 50);
  t.ok(isCopyOf(copy, s));
  t.notOk(isCopyOf(s, copy), 'not the other way round');
  t.ok(sameState(copy, s) && sameState(s, copy), 'sameState is symmetric');
  t.notOk(isCopyOf(copy, { ...s, ctransid: 11 }), 'the source changed since it was sent (made writable and back)');
  t.notOk(isCopyOf({ ...copy, ctransid: 60 }, s), 'the copy changed after it was received (ctransid > rtransid)');
  t.notOk(isCopyOf({ ...copy, readonly: false }, s), 'a writable copy');
  t.notOk(isCopyOf(copy, { ...s, readonly: false }), 'a writable source');
  t.notOk(isCopyOf(copy, taken('v@2', 3, 10)), 'another snapshot');
  // A copy sent on (failover): the stream of the copy names its identity and ITS ctransid.
  const back = received(copy, 4, 80);
  t.ok(isCopyOf(back, copy), 'a copy of the copy, made from the copy as it is');
  t.notOk(isCopyOf(back, s), 'is not a faithful copy of the original state (another ctransid)');
  t.notOk(sameState(received(s, 5, 40), copy), 'two copies of one source do not share a state btrfs can use (the copy sends its own ctransid)');
});

t.test('sameSnapshot: the same snapshot by identity, however it travelled', async (t) => {
  const s = taken('v@1', 1, 10);
  const a = received(s, 2, 50);
  const b = received(s, 3, 60);
  t.ok(sameSnapshot(a, s) && sameSnapshot(s, a), 'a copy and its source');
  t.ok(sameSnapshot(a, b), 'two copies of one source');
  t.ok(sameSnapshot(received(a, 4, 90), s), 'a copy of a copy');
  t.notOk(sameSnapshot(s, taken('v@2', 5, 10)), 'another snapshot, even at the same ctransid');
  t.notOk(sameSnapshot({ ...a, readonly: false }, s), 'a writable one is not a snapshot any more');
  t.notOk(sameSnapshot({ ...s, uuid: null }, { ...s, uuid: null }), 'no identity at all');
});

t.test('chooseParent: the newest common state, not newer than what is sent, never a marker or itself', async (t) => {
  const s1 = taken('v@1', 1, 10);
  const s2 = taken('v@2', 2, 20);
  const s3 = taken('v@3', 3, 30);
  const marker = taken('v@2@host', 4, 20);
  const mine = [s1, s2, s3, marker];
  t.equal(chooseParent(s3, mine, []), null, 'the peer holds nothing: full');
  t.equal(chooseParent(s3, mine, [received(s1, 11, 100)]), s1);
  t.equal(chooseParent(s3, mine, [received(s1, 11, 100), received(s2, 12, 110)]), s2, 'the newest one the peer holds');
  t.equal(chooseParent(s2, mine, [received(s3, 13, 120)]), null, 'never one newer than the snapshot sent');
  t.equal(chooseParent(s3, mine, [received(s3, 13, 120)]), null, 'never itself');
  t.equal(chooseParent(s3, mine, [received(marker, 14, 130)]), null, 'never a marker');
  t.equal(chooseParent(s3, mine, [received(s2, 12, 110, { ctransid: 115 })]), null, "the peer's copy changed since: not a parent");
  t.equal(chooseParent(s3, [s1, { ...s2, readonly: false }, s3], [received(s1, 11, 100), received(s2, 12, 110)]), s1, 'a writable one is not a parent');
  // The pull: the peer sends its newest, from the newest of its snapshots we hold the state of.
  const theirs = [received(s1, 21, 200), received(s2, 22, 210), taken('v@4', 23, 220)];
  t.equal(chooseParent(theirs[2]!, theirs, [s1, s2]), theirs[1], 'seen from the puller: the peer has copies of ours');
  t.equal(chooseParent(theirs[2]!, theirs, [received(theirs[0]!, 31, 300)]), theirs[0], 'or we have copies of theirs');
});

t.test('newestState: by ctransid, then creation time, then name', async (t) => {
  const a = { ...taken('v@a', 1, 10), otime: new Date(1000) };
  const b = { ...taken('v@b', 2, 20), otime: new Date(500) };
  const c = { ...taken('v@c', 3, 20), otime: new Date(900) };
  t.equal(newestState([a, b, c]), c, 'same ctransid (the volume did not change): the later one');
  t.equal(newestState([a, b]), b, 'the ctransid first, whatever the clock said');
  t.equal(newestState([taken('v@x', 1, 5), taken('v@y', 2, 5)])!.name, 'v@y', 'then the name');
  t.equal(newestState([]), null);
  t.equal(newestSendable([a, { ...b, readonly: false }, taken('v@c@host', 9, 99)]), a, 'newestSendable: no writable, no marker');
});

t.test('replicationKeep: the newest marker of each host and what it marks, the newest received', async (t) => {
  const s = (d: string, ctransid: number, extra: Partial<SnapshotIdentity> = {}) => taken(`v@2024-01-0${d}T00:00:00.000000`, ctransid, ctransid, extra);
  const snaps = [
    s('1', 10),
    s('2', 20),
    s('3', 30),
    { ...s('1', 10), name: 'v@2024-01-01T00:00:00.000000@node2' },
    { ...s('2', 20), name: 'v@2024-01-02T00:00:00.000000@node2' },
    { ...s('1', 10), name: 'v@2024-01-01T00:00:00.000000@node3:2222' },
    received(taken('v@2024-01-04T00:00:00.000000', 90, 5), 40, 40),
    received(taken('v@2024-01-05T00:00:00.000000', 91, 6), 41, 41),
  ];
  t.same(
    [...replicationKeep(snaps, F)].sort(),
    [
      'v@2024-01-01T00:00:00.000000',
      'v@2024-01-01T00:00:00.000000@node3:2222',
      'v@2024-01-02T00:00:00.000000',
      'v@2024-01-02T00:00:00.000000@node2',
      'v@2024-01-05T00:00:00.000000',
    ],
  );
  t.same([...replicationKeep([s('1', 10), s('2', 20)], F)], [], 'nothing sent, nothing received: nothing kept for replication');
});

// authorized_keys options and OpenSSH pattern-lists, read as OpenSSH does;
// the per-source key of the stranger gate.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import t from 'tap';

import { authorizedKeys, grantAllowsAddress, grantRefusal, PatternList, plainAddress } from '../../src/replication/authorized-keys.js';
import { sourceOf } from '../../src/replication/stranger-gate.js';

t.test('address pattern-lists: CIDR, wildcards, negation; IPv4 clients of a dual-stack socket', async (t) => {
  const list = PatternList.addresses('10.0.0.0/8,!10.0.0.9,192.168.1.*,fd00::/64,2001:db8::1');
  for (const [address, allowed] of [
    ['10.1.2.3', true],
    ['10.0.0.9', false],
    ['11.0.0.1', false],
    ['192.168.1.77', true],
    ['192.168.2.1', false],
    ['fd00::1234', true],
    ['fd00:0:0:1::1', false],
    ['2001:db8::1', true],
    ['2001:DB8::1', true],
  ] as const) {
    t.equal(list.allows(plainAddress(address)), allowed, `${address}: ${allowed ? 'allowed' : 'refused'}`);
  }
  t.equal(plainAddress('::ffff:10.0.0.9'), '10.0.0.9');
  t.notOk(list.allows(plainAddress('::ffff:10.0.0.9')), 'a mapped address is matched as IPv4 (negation included)');
  t.notOk(PatternList.addresses('!10.0.0.1').allows('10.0.0.2'), 'only negations: nothing is allowed');
  t.notOk(PatternList.addresses('node1').allows('10.0.0.1'), 'a host name never matches (no reverse DNS)');
  for (const bad of ['10.0.0.0/33', '10.0.0/8', 'fd00::/129', 'x/8', '', 'a,,b', '!']) {
    t.throws(() => PatternList.addresses(bad), `${JSON.stringify(bad)} refused`);
  }
});

t.test('name pattern-lists', async (t) => {
  const list = PatternList.names('db*,!db-secret,web?');
  t.ok(list.allows('db'));
  t.ok(list.allows('db.prod'));
  t.notOk(list.allows('db-secret'));
  t.ok(list.allows('web1'));
  t.notOk(list.allows('web12'));
  t.notOk(list.allows('xdb'));
  t.ok(PatternList.names('a.b').allows('a.b'));
  t.notOk(PatternList.names('a.b').allows('axb'), 'a dot is a dot');
});

t.test('grants', async (t) => {
  const grant = { from: PatternList.addresses('10.0.0.0/24'), volumes: PatternList.names('db*'), access: 'push' as const };
  t.ok(grantAllowsAddress(grant, '::ffff:10.0.0.5'));
  t.notOk(grantAllowsAddress(grant, '10.0.1.5'));
  t.equal(grantRefusal(grant, 'receive', 'db1'), null);
  t.equal(grantRefusal(grant, 'list', 'db1'), null);
  t.equal(grantRefusal(grant, 'send', 'db1'), 'it is push-only');
  t.equal(grantRefusal(grant, 'receive', 'web'), 'its volumes="db*" does not name web');
  const pull = { from: null, volumes: null, access: 'pull' as const };
  for (const op of ['list', 'send', 'tree', 'files']) t.equal(grantRefusal(pull, op, 'v'), null, `pull-only: ${op}`);
  t.equal(grantRefusal(pull, 'receive', 'v'), 'it is pull-only');
});

t.test('authorized_keys lines: options read as OpenSSH writes them; anything else refuses the line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bv-authkeys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pub = () => {
    const key = ssh2.utils.parseKey(ssh2.utils.generateKeyPairSync('ed25519').public) as ssh2.ParsedKey;
    return `${key.type} ${key.getPublicSSH().toString('base64')}`;
  };
  const lines = [
    `${pub()} plain key`,
    `from="10.0.0.1,10.0.0.2",volumes="a,b",push-only ${pub()} with options`,
    `no-pty,FROM="10.0.0.0/8" ${pub()}`,
    `command="echo \\"hi, there\\"" ${pub()}`,
    `from="10.0.0.0/99" ${pub()}`,
    `from="10.0.0.1",from="10.0.0.2" ${pub()}`,
    `volumes=db ${pub()}`,
    `pull-only`,
    `# a comment`,
    ``,
    `ssh-ed25519 notbase64`,
  ];
  writeFileSync(join(dir, 'authorized_keys'), lines.join('\n'));
  const { keys, problems } = await authorizedKeys(dir);
  t.same(
    keys.map((k) => k.line),
    [1, 2, 3],
  );
  t.equal(keys[0]!.comment, 'plain key');
  t.same([keys[0]!.grant.from, keys[0]!.grant.volumes, keys[0]!.grant.access], [null, null, null]);
  t.equal(keys[1]!.grant.from!.text, '10.0.0.1,10.0.0.2');
  t.equal(keys[1]!.grant.volumes!.text, 'a,b');
  t.equal(keys[1]!.grant.access, 'push');
  t.equal(keys[1]!.comment, 'with options');
  t.equal(keys[2]!.grant.from!.text, '10.0.0.0/8', 'option names are case-insensitive');
  t.match(problems, [/line 4: option command= is not supported/, /line 5: "10\.0\.0\.0\/99" is not an address block/, /line 6: from= given twice/, /line 7: cannot read the options/, /line 8: not a key/, /line 11: not a key/]);
  t.equal(problems.length, 6);
});

t.test('the source a per-address cap counts: an IPv4 address, an IPv6 /64', async (t) => {
  t.equal(sourceOf('10.0.0.1'), '10.0.0.1');
  t.equal(sourceOf('::ffff:10.0.0.1'), '10.0.0.1');
  t.equal(sourceOf('fd00:1:2:3:4:5:6:7'), 'fd00:1:2:3::/64');
  t.equal(sourceOf('fd00:1:2:3::9'), 'fd00:1:2:3::/64');
  t.equal(sourceOf('fd00::9'), 'fd00:0:0:0::/64');
  t.equal(sourceOf('::1'), '0:0:0:0::/64');
});

// Bad input over the socket: malicious names, non-JSON bodies, wrong types,
// unknown endpoints and fields. Each gets a clear error, and nothing changes
// on disk (the whole test directory is listed before and after).
import { request } from 'node:http';
import { dirname } from 'node:path';
import t, { type Test } from 'tap';

import { listTree, startTestDaemon, type TestDaemon } from '../fixtures/daemon.js';

const BAD_VOLUME_NAMES = ['../x', 'a/b', 'x@y', '', 'n'.repeat(300), 'a\0b', 'é', 'ü/../../x', '.', '..', '-rf', ' x', 'x\n', '/abs'];
const BAD_SNAPSHOT_NAMES = ['../x@1', 'a/b@1', '@1', 'v@', 'v', 'a\0b@1', 'é@1', `${'n'.repeat(300)}@1`, 'v@../../x', 'v@a/b'];

/** Runs `body`, then checks that nothing under the test's directory changed. */
async function unchanged(t: Test, d: TestDaemon, body: () => Promise<void>): Promise<void> {
  const root = dirname(d.mnt);
  const before = listTree(root);
  await body();
  t.same(listTree(root), before, 'nothing changed on disk');
}

t.test('malicious volume names: refused by every endpoint, nothing touched', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'v' });
  await d.call('/VolumeDriver.Snapshot', { Name: 'v' });
  await unchanged(t, d, async () => {
    for (const name of BAD_VOLUME_NAMES) {
      const label = JSON.stringify(name).slice(0, 40);
      const requests: Array<[string, Record<string, unknown>]> = [
        ['/VolumeDriver.Create', { Name: name }],
        ['/VolumeDriver.Create', { Name: name, Opts: { copyonwrite: 'false' } }],
        ['/VolumeDriver.Remove', { Name: name }],
        ['/VolumeDriver.Mount', { Name: name, ID: 'c1' }],
        ['/VolumeDriver.Mount', { Name: name }],
        ['/VolumeDriver.Path', { Name: name }],
        ['/VolumeDriver.Get', { Name: name }],
        ['/VolumeDriver.Snapshot', { Name: name }],
        ['/VolumeDriver.Clone', { Name: name, Target: 'new' }],
        ['/VolumeDriver.Clone', { Name: 'v', Target: name }],
        ['/VolumeDriver.Snapshots.Purge', { Name: name, Pattern: '1h:1d' }],
      ];
      // An empty Name or Target means "none" for these two, as in the original.
      if (name !== '') requests.push(['/VolumeDriver.Snapshot.List', { Name: name }], ['/VolumeDriver.Snapshot.Restore', { Name: 'v@x', Target: name }]);
      for (const [path, body] of requests) {
        const r = await d.call(path, body);
        t.equal(r.status, 500, `${path} ${label}: HTTP 500`);
        t.match(r.body?.Err, /^volume name .*(is empty|contains|is \d+ bytes long|is reserved|must start with)/, `${path} ${label}: says what is wrong`);
      }
      const list = await d.call(`/VolumeDriver.Snapshot.List/${encodeURIComponent(name)}`, undefined, 'GET');
      if (name !== '') t.match([list.status, list.body?.Err], [500, /^volume name /], `Snapshot.List/${label}`);
      const unmount = await d.call('/VolumeDriver.Unmount', { Name: name, ID: 'c1' });
      t.same([unmount.status, unmount.body], [200, { Err: '' }], `Unmount ${label} succeeds, as in the original`);
    }
  });
  t.same((await d.call('/VolumeDriver.List')).body.Volumes.map((v: { Name: string }) => v.Name), ['v']);
});

t.test('malicious snapshot names', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'v' });
  await unchanged(t, d, async () => {
    for (const name of BAD_SNAPSHOT_NAMES) {
      for (const [path, extra] of [['/VolumeDriver.Snapshot.Remove', {}], ['/VolumeDriver.Snapshot.Send', { Host: 'h' }]] as const) {
        const r = await d.call(path, { Name: name, ...extra });
        t.equal(r.status, 500);
        t.match(r.body.Err, /^snapshot name /, `${path} ${JSON.stringify(name).slice(0, 40)}`);
      }
      if (!name.includes('@')) continue; // without "@" Restore reads a volume name
      const r = await d.call('/VolumeDriver.Snapshot.Restore', { Name: name });
      t.match([r.status, r.body.Err], [500, /^snapshot name /], `Restore ${JSON.stringify(name).slice(0, 40)}`);
    }
  });
});

t.test('bodies that are not a JSON object', async (t) => {
  const d = await startTestDaemon(t);
  await unchanged(t, d, async () => {
    const cases: Array<[string | Buffer, string | RegExp]> = [
      ['not json', /^request body is not JSON: /],
      ['{"Name": "v"', /^request body is not JSON: /],
      ["{'Name': 'v'}", /^request body is not JSON: /],
      [Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'request body is not valid UTF-8'],
      ['"v"', 'request body must be a JSON object, got a string'],
      ['42', 'request body must be a JSON object, got a number'],
      ['null', 'request body must be a JSON object, got null'],
      ['true', 'request body must be a JSON object, got a boolean'],
      ['[{"Name": "v"}]', 'request body must be a JSON object, got an array'],
    ];
    for (const path of ['/VolumeDriver.Create', '/Plugin.Activate', '/VolumeDriver.List', '/VolumeDriver.Snapshot']) {
      for (const [body, err] of cases) {
        const r = await d.call(path, body);
        t.equal(r.status, 500);
        t.match(r.body.Err, err, `${path} ${String(body)}`);
      }
    }
  });
});

t.test('fields of the wrong type', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'v' });
  await unchanged(t, d, async () => {
    const cases: Array<[string, unknown, string | RegExp]> = [
      ['/VolumeDriver.Create', {}, 'Name is required'],
      ['/VolumeDriver.Create', { Name: null }, 'Name is required'],
      ['/VolumeDriver.Create', { Name: 42 }, 'Name must be a string, got a number'],
      ['/VolumeDriver.Create', { Name: ['v'] }, 'Name must be a string, got an array'],
      ['/VolumeDriver.Create', { Name: { v: 1 } }, 'Name must be a string, got an object'],
      ['/VolumeDriver.Create', { Name: 'w', Opts: ['copyonwrite=false'] }, 'Opts must be an object of strings'],
      ['/VolumeDriver.Create', { Name: 'w', Opts: { copyonwrite: 0 } }, 'Invalid option for copyonwrite: must be a string'],
      ['/VolumeDriver.Mount', { Name: 'v', ID: 5 }, 'ID must be a string, got a number'],
      ['/VolumeDriver.Unmount', { Name: 'v', ID: true }, 'ID must be a string, got a boolean'],
      ['/VolumeDriver.Unmount', {}, 'Name is required'],
      ['/VolumeDriver.Remove', { Name: false }, 'Name must be a string, got a boolean'],
      ['/VolumeDriver.Get', { name: 'v' }, 'Name is required'],
      ['/VolumeDriver.Snapshot', { Name: 1 }, 'Name must be a string, got a number'],
      ['/VolumeDriver.Snapshot', { Name: 'v', Label: 'x' }, 'unknown field "Label" (expected Name)'],
      ['/VolumeDriver.Snapshot', { name: 'v' }, 'unknown field "name"; did you mean "Name"?'],
      ['/VolumeDriver.Snapshot.Restore', { Name: 'v', Target: 3 }, 'Target must be a string, got a number'],
      ['/VolumeDriver.Snapshots.Purge', { Name: 'v' }, 'Pattern is required'],
      ['/VolumeDriver.Snapshots.Purge', { Name: 'v', Pattern: '1h:1d', Now: 1700000000000 }, 'Now must be a string, got a number'],
      ['/VolumeDriver.Snapshots.Purge', { Name: 'v', Pattern: '1h:1d', Now: '2024-01-10T12:00:00' }, /^Now must be an RFC 3339 date-time with a zone/],
      ['/VolumeDriver.Schedule.Pause', { Now: 'x' }, 'unknown field "Now" (expected none)'],
    ];
    for (const [path, body, err] of cases) {
      const r = await d.call(path, body);
      t.equal(r.status, 500);
      t.match(r.body.Err, typeof err === 'string' ? new RegExp(`^${err.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : err, `${path} ${JSON.stringify(body)}`);
    }
  });
  const r = await d.call('/VolumeDriver.Get', { Name: 'v', Future: 'field' });
  t.equal(r.body.Err, '', "unknown fields in Docker's own endpoints are ignored (engines may add some)");
});

t.test('unknown endpoints and methods', async (t) => {
  const d = await startTestDaemon(t);
  await unchanged(t, d, async () => {
    const cases: Array<[string, string, number, string]> = [
      ['POST', '/VolumeDriver.Nope', 404, 'unknown endpoint: POST /VolumeDriver.Nope'],
      ['POST', '/', 404, 'unknown endpoint: POST /'],
      ['GET', '/VolumeDriver.Snapshot.List/v/extra', 404, 'unknown endpoint: GET /VolumeDriver.Snapshot.List/v/extra'],
      ['POST', '/volumedriver.create', 404, 'unknown endpoint: POST /volumedriver.create'],
      ['POST', '/VolumeDriver.Create/../Remove', 404, 'unknown endpoint: POST /VolumeDriver.Create/../Remove'],
      ['GET', '/VolumeDriver.Create', 405, 'GET /VolumeDriver.Create: method not allowed, use POST'],
      ['DELETE', '/VolumeDriver.Remove', 405, 'DELETE /VolumeDriver.Remove: method not allowed, use POST'],
      ['PUT', '/VolumeDriver.Schedule.List', 405, 'PUT /VolumeDriver.Schedule.List: method not allowed, use HEAD, GET, POST'],
    ];
    for (const [method, path, status, err] of cases) {
      const r = await d.call(path, {}, method);
      t.same([r.status, r.body], [status, { Err: err }], `${method} ${path}`);
    }
  });
});

/** Sends `size` bytes in chunks without Content-Length (chunked encoding). */
function chunked(socketPath: string, size: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/VolumeDriver.Create', method: 'POST' }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

t.test('bodies over the size limit', async (t) => {
  const d = await startTestDaemon(t, { daemon: { bodyLimit: 64 * 1024 } });
  await unchanged(t, d, async () => {
    const big = JSON.stringify({ Name: 'v', Opts: { pad: 'x'.repeat(100_000) } });
    const r = await d.call('/VolumeDriver.Create', big);
    t.same([r.status, r.body], [413, { Err: 'request body too large: the limit is 65536 bytes' }], 'refused from Content-Length');
    const s = await chunked(d.config.socketPath, 1024 * 1024).catch((err: NodeJS.ErrnoException) => ({ status: 0, text: err.code ?? '' }));
    // The server answers as soon as the limit is passed and closes the
    // connection; the client may see the answer or a reset while writing.
    t.ok(s.status === 413 || s.text === 'EPIPE' || s.text === 'ECONNRESET', `refused while reading: ${s.status} ${s.text}`);
    if (s.status === 413) t.match(s.text, /request body too large/);
    t.same((await d.call('/VolumeDriver.Capabilities', {})).body.Capabilities, { Scope: 'local' }, 'the server still answers');
  });
});

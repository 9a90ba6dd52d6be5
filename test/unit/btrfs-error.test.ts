// The error class every native failure becomes.
import { getSystemErrorName } from 'node:util';
import t from 'tap';

import { BtrfsError, isBtrfsError } from '../../src/btrfs/index.js';

t.test('shape and message follow Node fs errors', async (t) => {
  const e = new BtrfsError({ errno: -17, code: 'EEXIST', syscall: 'BTRFS_IOC_SNAP_CREATE_V2', path: '/v/a', dest: '/v/b' });
  t.ok(e instanceof Error);
  t.equal(e.name, 'BtrfsError');
  t.notOk(Object.keys(e).includes('name'), 'name is not an own enumerable field');
  t.equal(e.message, "EEXIST: file already exists, BTRFS_IOC_SNAP_CREATE_V2 '/v/a' -> '/v/b'");
  t.equal(getSystemErrorName(e.errno), 'EEXIST', 'errno is negative, as util expects');
  t.same({ code: e.code, syscall: e.syscall, path: e.path, dest: e.dest }, {
    code: 'EEXIST',
    syscall: 'BTRFS_IOC_SNAP_CREATE_V2',
    path: '/v/a',
    dest: '/v/b',
  });
  t.notOk('dest' in new BtrfsError({ errno: -2, code: 'ENOENT', syscall: 'open', path: '/x' }));
  t.match(e.stack, /BtrfsError: EEXIST/);
});

t.test('clearer words where strerror would mislead', async (t) => {
  const msg = (code: string, errno: number, syscall: string) => new BtrfsError({ errno, code, syscall, path: '/p' }).message;
  t.equal(msg('ENOTTY', -25, 'BTRFS_IOC_SUBVOL_CREATE_V2'), "ENOTTY: not a btrfs filesystem, BTRFS_IOC_SUBVOL_CREATE_V2 '/p'");
  t.match(msg('EINVAL', -22, 'BTRFS_IOC_SNAP_CREATE_V2'), /source is not a btrfs subvolume/);
  t.match(msg('EINVAL', -22, 'BTRFS_IOC_SNAP_DESTROY'), /not a btrfs subvolume/);
  t.match(msg('ENOTEMPTY', -39, 'BTRFS_IOC_SNAP_DESTROY'), /delete with recursive/);
  t.match(msg('EPERM', -1, 'BTRFS_IOC_SNAP_DESTROY'), /CAP_SYS_ADMIN/);
  t.match(msg('EINVAL', -22, 'open'), /^EINVAL: invalid argument, open/);
  t.match(msg('EXDEV', -18, 'BTRFS_IOC_SNAP_CREATE_V2'), /cross-device link/);
});

t.test('isBtrfsError and fromCode', async (t) => {
  const e = BtrfsError.fromCode('EAGAIN', 'flock', '/l');
  t.equal(e.errno, -11);
  t.equal(e.message, "EAGAIN: locked by another operation, flock '/l'");
  t.equal(isBtrfsError(e), true);
  t.equal(isBtrfsError(new Error('x')), false);
  t.equal(isBtrfsError(null), false);
  t.equal(isBtrfsError({ code: 'EEXIST' }), false, 'duck typing is not enough');
  const foreign = Object.create({ [Symbol.for('buttervolume.BtrfsError')]: true });
  t.equal(isBtrfsError(foreign), true, 'recognised across copies of the module');
});

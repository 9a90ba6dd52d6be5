// Files that are never seen half-written: a crash leaves the old content or
// the new one, never a mix or nothing.
import { basename, dirname, join } from 'node:path';

import { close, fchmod, fsync, mkdir, open, realpath, rename, rm, stat, writeFile } from './fs-async.js';
import { randomHex } from './random-hex.js';
import { errCode, isMissing } from './err-code.js';


// Some filesystems refuse fsync on a directory (EINVAL): the rename is then as durable as it gets.
export async function syncDirectory(dir: string): Promise<void> {
  const fd = await open(dir, 'r');
  try {
    await fsync(fd);
  } catch (err) {
    if (errCode(err) !== 'EINVAL') throw err;
  } finally {
    await close(fd);
  }
}

/**
 * Replace `path` with `text` atomically: write a temporary file in the same
 * directory, fsync it, rename it over `path`, fsync the directory. A symbolic
 * link at `path` is followed (its target is replaced, the link kept), and the
 * mode of an existing file is kept (new files: `mode`, default 0644). The
 * parent directory is created if missing.
 */
export async function writeFileAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  let target = path;
  try {
    target = await realpath(path);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  const dir = dirname(target);
  await mkdir(dir, { recursive: true });
  let keepMode: number | undefined;
  try {
    keepMode = (await stat(target)).mode & 0o7777;
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomHex(12)}.tmp`);
  try {
    const fd = await open(tmp, 'wx', mode);
    try {
      await writeFile(fd, text, 'utf8');
      if (keepMode !== undefined) await fchmod(fd, keepMode);
      await fsync(fd);
    } finally {
      await close(fd);
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dir);
}

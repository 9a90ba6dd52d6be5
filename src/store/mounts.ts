// Mount reference counts per (volume, caller ID), as Docker expects: the
// volume is in use while any count is positive. Persisted atomically so a
// daemon restart keeps them; tagged with the boot id so a reboot (which
// stops every container) starts from zero instead of leaving volumes
// "in use" forever.
import { readFile } from 'node:fs/promises';

import { isMissing, writeFileAtomic } from '../util/atomic-file.js';
import { enqueue } from '../util/serial-queue.js';

type Counts = Record<string, Record<string, number>>;

interface MountFile {
  bootId: string;
  mounts: Counts;
}

let bootIdOnce: Promise<string> | undefined;

function bootId(): Promise<string> {
  bootIdOnce ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (id) => id.trim(),
    () => 'unknown',
  );
  return bootIdOnce;
}

export class MountTable {
  private counts: Counts | undefined;

  constructor(readonly file: string) {}

  /** Reads the table from disk (every call: another process may have changed it). */
  async load(): Promise<Counts> {
    let parsed: MountFile | undefined;
    try {
      parsed = JSON.parse(await readFile(this.file, 'utf8')) as MountFile;
    } catch (err) {
      if (!isMissing(err) && !(err instanceof SyntaxError)) throw err;
    }
    const fresh = parsed && parsed.bootId === (await bootId()) && typeof parsed.mounts === 'object' ? parsed.mounts : {};
    this.counts = fresh ?? {};
    return this.counts;
  }

  /** Total active mounts of `volume`, read from disk. */
  async activeCount(volume: string): Promise<number> {
    const counts = await this.load();
    return Object.values(counts[volume] ?? {}).reduce((a, b) => a + b, 0);
  }

  /** Records one more mount of `volume` by `id`. */
  mount(volume: string, id: string): Promise<void> {
    return this.change(volume, id, +1);
  }

  /** Records one unmount; unknown volumes and ids are fine (the original answered success). */
  unmount(volume: string, id: string): Promise<void> {
    return this.change(volume, id, -1);
  }

  /** Forgets every mount of `volume` (after it was removed). */
  forget(volume: string): Promise<void> {
    return enqueue(this.file, async () => {
      const counts = this.counts ?? (await this.load());
      if (!(volume in counts)) return;
      delete counts[volume];
      await this.save(counts);
    });
  }

  private change(volume: string, id: string, delta: number): Promise<void> {
    return enqueue(this.file, async () => {
      const counts = this.counts ?? (await this.load());
      const ids = (counts[volume] ??= {});
      const next = (ids[id] ?? 0) + delta;
      if (next > 0) ids[id] = next;
      else delete ids[id];
      if (Object.keys(ids).length === 0) delete counts[volume];
      if (delta < 0 && next < 0) return; // unknown (volume, id): nothing to write
      await this.save(counts);
    });
  }

  private async save(counts: Counts): Promise<void> {
    const data: MountFile = { bootId: await bootId(), mounts: counts };
    await writeFileAtomic(this.file, `${JSON.stringify(data)}\n`, 0o600);
  }
}

// One receive of bench/receive (and bench/send's check), in a process of its
// own: loads buttervolume/btrfs, says "ready", waits for a line on stdin, then
// receives stream file @file into @dest and prints one JSON line: the seconds
// from the call of receive() to its promise resolving (the subvolume complete,
// durable, read-only and in place), the peak RSS of the process and the RSS
// it had before the receive started.
// BENCH_BTRFS: another build's dist/btrfs/index.js to load instead of ours
// (bench/receive --alt: two builds of the addon side by side).
// usage: node bench/receive-child.mjs <dest> <file> [allowedDir...]
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const btrfs = await import(process.env.BENCH_BTRFS ? pathToFileURL(process.env.BENCH_BTRFS).href : '../dist/btrfs/index.js');

const [dest, file, ...allowedDirs] = process.argv.slice(2);
const highWaterMark = Number(process.env.BENCH_HWM ?? 1 << 20);
const lines = createInterface({ input: process.stdin });
const it = lines[Symbol.asyncIterator]();
process.stdout.write('ready\n');
await it.next();
const rssBefore = process.memoryUsage.rss();
const t0 = process.hrtime.bigint();
const result = await btrfs.receive(dest, createReadStream(file, { highWaterMark }), { allowedDirs });
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(`${JSON.stringify({ seconds, maxRssKiB: process.resourceUsage().maxRSS, rssBeforeKiB: Math.round(rssBefore / 1024), name: result.name })}\n`);
lines.close();

// The promise-returning fs calls the store needs, through node:fs's callback
// API: importing node:fs/promises loads some 25 more internal modules
// (streams, readline, file watchers), ~3 ms of CPU at each start of the CLI
// (test/cli/startup.test.ts checks the short commands never load it).
import * as fs from 'node:fs';
import { promisify } from 'node:util';

export const close = promisify(fs.close);
export const fchmod = promisify(fs.fchmod);
export const fsync = promisify(fs.fsync);
export const mkdir = promisify(fs.mkdir);
export const open = promisify(fs.open);
export const readdir = promisify(fs.readdir);
export const readFile = promisify(fs.readFile);
export const realpath = promisify(fs.realpath);
export const rename = promisify(fs.rename);
export const rm = promisify(fs.rm);
export const stat = promisify(fs.stat);
export const writeFile = promisify(fs.writeFile);

#!/usr/bin/env node
// Helpers of buttervolume.service (scripts/systemd), on the plugin socket of
// the configuration the daemon reads (BUTTERVOLUME_SOCKET, config.ini...):
//   wait         (ExecStartPost) returns once the socket answers, so that the
//                service is started only when dockerd can use it; fails when
//                the daemon ($MAINPID) exits first, or after 80 s
//   clear-stale  (ExecStopPost) removes the socket when it is a socket nobody
//                answers (left by a daemon that was killed: dockerd would
//                retry on it for ~45 s at each use); a socket another server
//                answers on is left alone
// Uses dist/ (npm run build).
import { lstatSync, unlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const [what] = process.argv.slice(2);
const dist = new URL('../../dist/', import.meta.url);
const { loadConfig } = await import(new URL('config.js', dist).href);
const { socketAnswers } = await import(new URL('server/socket.js', dist).href);
const socket = loadConfig().socketPath;

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

if (what === 'wait') {
  const pid = Number(process.env.MAINPID);
  const deadline = Date.now() + 80_000;
  while (!(await socketAnswers(socket, 1000).catch(() => false))) {
    if (pid > 0 && !alive(pid)) {
      console.error(`the daemon (pid ${pid}) exited before listening on ${socket}`);
      process.exit(1);
    }
    if (Date.now() > deadline) {
      console.error(`nothing answers on ${socket} after 80 s`);
      process.exit(1);
    }
    await sleep(100);
  }
} else if (what === 'clear-stale') {
  let isSocket = false;
  try {
    isSocket = lstatSync(socket).isSocket();
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  if (isSocket && !(await socketAnswers(socket).catch(() => true))) {
    unlinkSync(socket);
    console.log(`removed the stale socket ${socket}`);
  }
} else {
  console.error('usage: plugin-socket.mjs wait|clear-stale');
  process.exit(2);
}

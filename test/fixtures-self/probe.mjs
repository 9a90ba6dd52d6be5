// Network probe for the hosts fixture's self-test, run inside a host.
//   node probe.mjs lookup NAME...            -> {"hostname": os.hostname(), "NAME": address or error code}
//   node probe.mjs echo TIMEOUT_MS HOST:PORT... -> {"HOST:PORT": echoed line, or an error code, or "timeout"}
//   node probe.mjs session HOST:PORT         -> one connection; sends "one", then each stdin line, printing every echo
import { lookup } from 'node:dns/promises';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';

/** Calls `onLine` for each line `socket` receives (not readline: it rethrows the socket's errors). */
function lines(socket, onLine) {
  let buf = '';
  socket.setEncoding('utf8').on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) onLine(buf.slice(0, i));
  });
}

const [mode, ...rest] = process.argv.slice(2);

function echo(target, timeoutMs) {
  const [host, port] = target.split(':');
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(port) });
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    const done = (result) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    socket.on('error', (err) => done(err.code ?? err.message));
    socket.on('connect', () => socket.write('ping\n'));
    lines(socket, done);
  });
}

if (mode === 'lookup') {
  const out = { hostname: hostname() };
  for (const name of rest) out[name] = await lookup(name, { family: 4 }).then((a) => a.address, (e) => e.code);
  console.log(JSON.stringify(out));
} else if (mode === 'echo') {
  const [timeoutMs, ...targets] = rest;
  const results = await Promise.all(targets.map((t) => echo(t, Number(timeoutMs))));
  console.log(JSON.stringify(Object.fromEntries(targets.map((t, i) => [t, results[i]]))));
} else if (mode === 'session') {
  const [host, port] = rest[0].split(':');
  const socket = connect({ host, port: Number(port) }, () => socket.write('one\n'));
  socket.on('error', (err) => {
    console.log(`error ${err.code}`);
    process.exit(1);
  });
  lines(socket, (line) => console.log(`echo ${line}`));
  createInterface({ input: process.stdin }).on('line', (line) => socket.write(`${line}\n`));
} else {
  console.error(`usage: probe.mjs lookup|echo|session ...`);
  process.exit(2);
}

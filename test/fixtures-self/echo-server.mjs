// A TCP echo server for the hosts fixture's self-test: `node echo-server.mjs PORT`.
// Answers each line with "<its hostname>: <line>"; writes "listening" once bound.
import { createServer } from 'node:net';
import { hostname } from 'node:os';

const server = createServer((socket) => {
  let buf = '';
  socket.on('error', () => {}); // a client cut off: nothing to do
  socket.setEncoding('utf8').on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) socket.write(`${hostname()}: ${buf.slice(0, i)}\n`);
  });
});
server.listen(Number(process.argv[2]), '0.0.0.0', () => console.log('listening'));
process.on('SIGTERM', () => process.exit(0));

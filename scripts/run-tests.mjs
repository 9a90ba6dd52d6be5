#!/usr/bin/env node
// The README's test command. Runs tap (raw TAP), prints it, and ends with the
// line CI reads: "N passed, N failed, N skipped", counting leaf assertions
// across every test file. A subtest that failed without any failing
// assertion of its own (a crash, a timeout) counts as one failure.
import { spawn } from 'node:child_process';
import { Parser } from 'tap-parser';

const args = ['tap', '-R', 'tap', ...process.argv.slice(2)];
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'inherit'] });

const totals = { pass: 0, fail: 0, skip: 0 };

/** Counts one parser's leaf assertions; returns its own failing-leaf counter. */
function watch(parser) {
  const own = { fail: 0 };
  let pendingChild = null;
  parser.on('child', (childParser) => {
    pendingChild = watch(childParser);
  });
  parser.on('assert', (res) => {
    if (pendingChild) {
      // The summary line of a subtest, not an assertion of its own.
      if (!res.ok && !res.todo && pendingChild.fail === 0) {
        totals.fail++;
        own.fail++;
      } else {
        own.fail += pendingChild.fail;
      }
      pendingChild = null;
      return;
    }
    if (res.skip || res.todo) totals.skip++;
    else if (res.ok) totals.pass++;
    else {
      totals.fail++;
      own.fail++;
    }
  });
  return own;
}

const parser = new Parser();
watch(parser);
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  parser.write(chunk);
});

child.on('close', (code, signal) => {
  parser.end();
  if ((code !== 0 || signal) && totals.fail === 0) totals.fail++; // tap itself failed
  process.stdout.write(`\n${totals.pass} passed, ${totals.fail} failed, ${totals.skip} skipped\n`);
  process.exitCode = totals.fail > 0 ? 1 : 0;
});

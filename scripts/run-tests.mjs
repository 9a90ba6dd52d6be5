#!/usr/bin/env node
// The README's test command. Runs tap (raw TAP), prints it, and ends with the
// line CI reads: "N passed, N failed, N skipped", counting leaf assertions
// across every test file. A subtest that failed without any failing
// assertion of its own (a crash, a timeout) counts as one failure. Before
// that line it lists every failure by its path (file > subtest > assertion),
// so the tail of a long CI log says what failed.
import { spawn } from 'node:child_process';
import { Parser } from 'tap-parser';

const args = ['tap', '-R', 'tap', ...process.argv.slice(2)];
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'inherit'] });

const totals = { pass: 0, fail: 0, skip: 0 };
const failures = [];

function recordFailure(path, res) {
  const where = [...path, res.name || `#${res.id}`].join(' > ');
  const { source: _source, ...diag } = res.diag ?? {}; // source repeats the file
  const text = Object.keys(diag).length > 0 ? JSON.stringify(diag).slice(0, 800) : '';
  failures.push(text ? `${where}\n#     ${text}` : where);
}

/** Counts one parser's leaf assertions; returns its own failing-leaf counter. */
function watch(parser, path) {
  const own = { fail: 0 };
  let pendingChild = null;
  parser.on('child', (childParser) => {
    pendingChild = watch(childParser, [...path, childParser.name]);
  });
  parser.on('assert', (res) => {
    if (pendingChild) {
      // The summary line of a subtest, not an assertion of its own.
      if (!res.ok && !res.todo && pendingChild.fail === 0) {
        totals.fail++;
        own.fail++;
        recordFailure(path, res);
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
      recordFailure(path, res);
    }
  });
  return own;
}

const parser = new Parser();
watch(parser, []);
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  parser.write(chunk);
});

child.on('close', (code, signal) => {
  parser.end();
  if ((code !== 0 || signal) && totals.fail === 0) {
    totals.fail++; // tap itself failed
    failures.push(`tap exited with ${signal ?? code}`);
  }
  if (failures.length > 0) {
    process.stdout.write(`\n# failed:\n${failures.map((f) => `#   ${f}`).join('\n')}\n`);
  }
  process.stdout.write(`\n${totals.pass} passed, ${totals.fail} failed, ${totals.skip} skipped\n`);
  process.exitCode = totals.fail > 0 ? 1 : 0;
});

// scripts/check-structure.mjs on small src/ trees written to a temporary
// directory: what it reads as an import, the layer order, cycles (each once),
// the length limit, and its output and exit status (what CI reads).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';

const SCRIPT = new URL('../../scripts/check-structure.mjs', import.meta.url);

interface Report {
  code: number | null;
  lines: string[];
}

// Plain JavaScript without declarations: its shape, as the tests use it. Most
// cases call report() here (one TypeScript load); a few run the script itself.
const { report } = (await import(SCRIPT.href)) as { report(root: string): Report };

interface Run extends Report {
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [fileURLToPath(SCRIPT), ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr, lines: stdout.split('\n').filter((l) => l !== '') });
    });
  });
}

/** Writes files (paths relative to the root, e.g. "src/util/a.ts") to a fresh directory; returns it. */
function tree(t: Test, files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'bv-structure-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'src'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, dirname(path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const check = (t: Test, files: Record<string, string>): Report => report(tree(t, files));

const lines = (n: number) => 'export const x = 1;\n'.repeat(n);

t.test('a tree that respects the layers: exit 0, one summary line (the script itself)', async (t) => {
  const r = await run(['--root', tree(t, {
    'src/util/a.ts': "import { join } from 'node:path';\nexport const a = join('x');\n",
    'src/util/b.ts': "import { a } from './a.js';\nexport const b = a;\n",
    'src/btrfs/index.ts': "export * from '../util/a.js';\nexport type { b } from '../util/b.js';\n",
    'src/config.ts': "import { a } from './util/a.js';\nimport { l } from './log.js';\nexport const c = a + l;\n",
    'src/log.ts': "import type { b } from './util/b.js';\nexport const l = '';\nexport type B = typeof b;\n",
    'src/config-ini.ts': "import './log.js';\n",
    'src/store/s.ts': "import * as b from '../btrfs/index.js';\nimport pkg from '../../package.json' with { type: 'json' };\nexport { b, pkg };\n",
    'src/store/deep/t.ts': "import { b } from '../s.js';\nexport const t = b;\n",
    'src/replication/r.ts': "export const r = () => import('../store/s.js');\n",
    'src/scheduler/s.ts': "import type { r } from '../replication/r.js';\nexport type R = typeof r;\n",
    'src/server/v.ts': "export type S = typeof import('../scheduler/s.js');\n",
    'src/cli/main.ts': "import '../server/v.js';\nimport koa from 'koa';\nexport default koa;\n",
    'src/cli/long.ts': lines(450),
  })]);
  t.equal(r.code, 0, r.stderr);
  t.same(r.lines, ['check-structure: 13 files, 13 imports in src/: layers respected, no cycle, none over 450 lines']);
  t.equal(r.stderr, '');
});

t.test('every form of import that goes up is reported, with both layers, once per imported file', async (t) => {
  const r = check(t, {
    // Twice, the first a type import: one finding, at the first, for a value import.
    'src/util/value.ts': "import type { S } from '../store/s.js';\nimport { s } from '../store/s.js';\nexport const v: S = s;\n",
    'src/util/type.ts': "import type { S } from '../store/s.js';\nexport type T = S;\n",
    'src/util/type-specifiers.ts': "import { type S, type s } from '../store/s.js';\nexport type T = S | typeof s;\n",
    'src/util/mixed.ts': "import { type S, s } from '../store/s.js';\nexport const m: S = s;\n",
    'src/util/reexport.ts': "export * from '../cli/c.js';\n",
    'src/util/reexport-type.ts': "export type { C } from '../cli/c.js';\n",
    'src/util/dynamic.ts': 'export const d = () => import(`../server/v.js`);\n',
    'src/util/import-type.ts': "export type V = typeof import('../server/v.js');\n",
    'src/util/side-effect.ts': "\n\nimport '../btrfs/b.js';\n",
    'src/util/require.ts': "import v = require('../server/v.js');\nexport const w = v;\n",
    'src/util/not-imports.ts': "// import { s } from '../store/s.js';\nexport const text = \"import('../cli/c.js')\";\n",
    'src/btrfs/b.ts': "import { c } from '../config.js';\nexport const b = c;\n",
    'src/config.ts': "import { t } from './store/deep/t.js';\nexport const c = t;\n",
    'src/store/s.ts': "export const s = '';\nexport type S = string;\n",
    'src/store/deep/t.ts': "import { r } from '../../replication/r.js';\nexport const t = r;\n",
    'src/replication/r.ts': "import { q } from '../scheduler/q.js';\nexport const r = q;\n",
    'src/scheduler/q.ts': "import { v } from '../server/v.js';\nexport const q = v;\n",
    'src/server/v.ts': "import { c } from '../cli/c.js';\nexport const v = c;\n",
    'src/cli/c.ts': "export const c = '';\nexport type C = string;\n",
  });
  t.equal(r.code, 1);
  t.same(r.lines, [
    'upward import: src/btrfs/b.ts:1 (btrfs) imports src/config.ts (config/log)',
    'upward import: src/config.ts:1 (config/log) imports src/store/deep/t.ts (store)',
    'upward import: src/replication/r.ts:1 (replication) imports src/scheduler/q.ts (scheduler)',
    'upward import: src/scheduler/q.ts:1 (scheduler) imports src/server/v.ts (server)',
    'upward import: src/server/v.ts:1 (server) imports src/cli/c.ts (cli)',
    'upward import: src/store/deep/t.ts:1 (store) imports src/replication/r.ts (replication)',
    'upward import: src/util/dynamic.ts:1 (util) imports src/server/v.ts (server) [dynamic]',
    'upward import: src/util/import-type.ts:1 (util) imports src/server/v.ts (server) [type]',
    'upward import: src/util/mixed.ts:1 (util) imports src/store/s.ts (store)',
    'upward import: src/util/reexport-type.ts:1 (util) imports src/cli/c.ts (cli) [type]',
    'upward import: src/util/reexport.ts:1 (util) imports src/cli/c.ts (cli)',
    'upward import: src/util/require.ts:1 (util) imports src/server/v.ts (server)',
    'upward import: src/util/side-effect.ts:3 (util) imports src/btrfs/b.ts (btrfs)',
    'upward import: src/util/type-specifiers.ts:1 (util) imports src/store/s.ts (store) [type]',
    'upward import: src/util/type.ts:1 (util) imports src/store/s.ts (store) [type]',
    'upward import: src/util/value.ts:1 (util) imports src/store/s.ts (store)',
    'check-structure: 16 upward imports, 0 cycles, 0 files over 450 lines (19 files, 17 imports in src/)',
  ]);
});

t.test('cycles: each listed once, shortest first, type-only and dynamic steps marked', async (t) => {
  const r = check(t, {
    // The review's cycle: a type import one way, a value import back.
    'src/btrfs/binding.ts': "import type { D } from './send-stream.js';\nexport const native = {} as { dump(): D };\n",
    'src/btrfs/send-stream.ts': "import { native } from './binding.js';\nexport type D = string;\nexport const dump = () => native.dump();\n",
    // A triangle with a chord: two cycles through a and b.
    'src/store/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
    'src/store/b.ts': "import { a } from './a.js';\nimport { c } from './c.js';\nexport const b = () => [a, c];\n",
    // imported twice, once as a value: the step is a value step
    'src/store/c.ts': "import type { A } from './d.js';\nimport { a } from './a.js';\nexport const c = () => a;\nexport type C = A;\n",
    'src/store/d.ts': 'export type A = string;\n',
    // Through a dynamic import() and across a directory.
    'src/server/x.ts': "export const x = () => import('./routes/y.js');\n",
    'src/server/routes/y.ts': "import { x } from '../x.js';\nexport const y = x;\n",
    // A module importing itself.
    'src/util/self.ts': "import * as me from './self.js';\nexport const self = me;\n",
  });
  t.equal(r.code, 1);
  t.same(r.lines, [
    'cycle: src/util/self.ts -> src/util/self.ts',
    'cycle: src/btrfs/binding.ts -(type)-> src/btrfs/send-stream.ts -> src/btrfs/binding.ts',
    'cycle: src/server/routes/y.ts -> src/server/x.ts -(dynamic)-> src/server/routes/y.ts',
    'cycle: src/store/a.ts -> src/store/b.ts -> src/store/a.ts',
    'cycle: src/store/a.ts -> src/store/b.ts -> src/store/c.ts -> src/store/a.ts',
    'check-structure: 0 upward imports, 5 cycles, 0 files over 450 lines (9 files, 10 imports in src/)',
  ]);
});

t.test('every elementary cycle of a dense tangle, and a cap on how many are listed', async (t) => {
  const all = (names: string[]) =>
    Object.fromEntries(
      names.map((n) => [`src/util/${n}.ts`, names.filter((m) => m !== n).map((m) => `import './${m}.js';\n`).join('')]),
    );
  // Four modules all importing each other: 6 cycles of 2, 8 of 3, 6 of 4.
  const four = check(t, all(['a', 'b', 'c', 'd']));
  const cycles = four.lines.filter((l) => l.startsWith('cycle: '));
  t.equal(cycles.length, 20);
  t.equal(new Set(cycles).size, 20, 'no cycle twice');
  const sizes = cycles.map((l) => l.split(' -> ').length - 1);
  t.same([2, 3, 4].map((k) => sizes.filter((s) => s === k).length), [6, 8, 6]);
  t.ok(cycles.every((l) => l.startsWith('cycle: src/util/a.ts') || !l.includes('src/util/a.ts')), 'each starts at its smallest file');
  t.equal(four.lines.at(-1), 'check-structure: 0 upward imports, 20 cycles, 0 files over 450 lines (4 files, 12 imports in src/)');

  // Seven: 2,365 cycles. The first 200 are listed, then the files caught in them.
  const seven = check(t, all(['a', 'b', 'c', 'd', 'e', 'f', 'g']));
  t.equal(seven.code, 1);
  t.equal(seven.lines.filter((l) => l.startsWith('cycle: ')).length, 200);
  t.equal(
    seven.lines.at(-2),
    'cycles: more than 200, not all listed, among src/util/a.ts, src/util/b.ts, src/util/c.ts, src/util/d.ts, src/util/e.ts, src/util/f.ts, src/util/g.ts',
  );
  t.equal(seven.lines.at(-1), 'check-structure: 0 upward imports, more than 200 cycles, 0 files over 450 lines (7 files, 42 imports in src/)');
});

t.test('files longer than 450 lines; files in no layer; imports of nothing in src/', async (t) => {
  const r = check(t, {
    'src/util/at-limit.ts': lines(450),
    'src/util/no-final-newline.ts': lines(450) + 'export const y = 2;',
    'src/store/long.ts': lines(451),
    'src/index.ts': "export * from './cli/main.js';\n",
    'src/utilities.ts': '',
    'src/cli/main.ts': "import { x } from './missing.js';\nimport { y } from '../util/at-limit';\nexport { x, y };\n",
  });
  t.equal(r.code, 1);
  t.same(r.lines, [
    'no layer: src/index.ts is in none of the layers (util -> btrfs -> config/log -> store -> replication -> scheduler -> server -> cli)',
    'no layer: src/utilities.ts is in none of the layers (util -> btrfs -> config/log -> store -> replication -> scheduler -> server -> cli)',
    "unresolved: src/cli/main.ts:1 imports './missing.js', which is no source file in src/",
    'too long: src/store/long.ts has 451 lines (at most 450)',
    'too long: src/util/no-final-newline.ts has 451 lines (at most 450)',
    'check-structure: 0 upward imports, 0 cycles, 2 files over 450 lines, 2 files in no layer, 1 unresolved import (6 files, 2 imports in src/)',
  ]);
});

t.test('the script prints the findings and exits 1', async (t) => {
  const r = await run(['--root', tree(t, { 'src/util/a.ts': "import '../cli/b.js';\n", 'src/cli/b.ts': "import '../util/a.js';\n" })]);
  t.equal(r.code, 1);
  t.equal(
    r.stdout,
    [
      'upward import: src/util/a.ts:1 (util) imports src/cli/b.ts (cli)',
      'cycle: src/cli/b.ts -> src/util/a.ts -> src/cli/b.ts',
      'check-structure: 1 upward import, 1 cycle, 0 files over 450 lines (2 files, 2 imports in src/)',
      '',
    ].join('\n'),
  );
  t.equal(r.stderr, '');
});

t.test('usage errors exit 2', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bv-structure-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const none = await run(['--root', root]);
  t.equal(none.code, 2);
  t.equal(none.stderr, `check-structure: no src/ directory in ${root}\n`);
  const bad = await run(['--fix']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^check-structure: unknown argument --fix\nusage: /);
});

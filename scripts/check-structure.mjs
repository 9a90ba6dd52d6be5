#!/usr/bin/env node
// Checks the structure of src/ (npm run check:structure; CI runs it):
//
//  (a) layers: a module imports only modules of its own layer or of an
//      earlier one in LAYERS below, never a later one;
//  (b) cycles: no module reaches itself through its imports;
//  (c) length: no file is longer than MAX_LINES lines.
//
// Plus two housekeeping findings: a file that is in no layer (add it to
// LAYERS, or move it), and a relative import that names no file in src/.
//
// What counts as an import: `import ... from`, `import type ... from`,
// `import './x.js'`, `export ... from` (type-only too), `import x =
// require('./x.js')`, `import('./x.js')` with a string literal, and type
// positions `typeof import('./x.js')`. Only relative specifiers are followed
// ("./x.js" is src/.../x.ts, as NodeNext resolves it; ".mjs" is ".mts",
// ".cjs" is ".cts"); packages and files outside src/ are not modules here.
//
// Type-only imports count for both checks. For layers, because a type is part
// of the lower layer's contract: if a lower layer needs a higher one's type,
// the type belongs lower. For cycles, because two modules that name each
// other's types cannot be understood, tested or moved apart either, even if
// the compiler erases the import (the review that asked for this check found
// btrfs/binding.ts -> btrfs/send-stream.ts, a type import, and the value
// import back). A cycle's line marks each step that is only a type import
// "-(type)->" and each that is only a dynamic import() "-(dynamic)->", so
// the steps that matter at run time (initialisation order) are plain "->".
//
// Output: one line per finding, then a summary line; exit 1 if any finding,
// 0 otherwise (a one-line summary), 2 on a usage error.
// Usage: node scripts/check-structure.mjs [--root DIR]   (DIR holds src/; default: this repository)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layers, lowest first. A path relative to src/ belongs to the first
 * layer with an entry equal to it (a file) or a prefix of it ending in "/" (a
 * directory).
 */
export const LAYERS = [
  { name: 'util', paths: ['util/'] },
  { name: 'btrfs', paths: ['btrfs/'] },
  { name: 'config/log', paths: ['config.ts', 'config-ini.ts', 'log.ts'] },
  { name: 'store', paths: ['store/'] },
  { name: 'replication', paths: ['replication/'] },
  { name: 'scheduler', paths: ['scheduler/'] },
  { name: 'server', paths: ['server/'] },
  { name: 'cli', paths: ['cli/'] },
];

export const MAX_LINES = 450;

/** Cycles listed at most; past that, the files caught in cycles are listed instead. */
export const MAX_CYCLES = 200;

const SOURCE = /\.(?:ts|mts|cts)$/;

/** The layer index of a path relative to src/ ("a/b.ts"), or -1. */
export function layerOf(rel) {
  return LAYERS.findIndex((layer) => layer.paths.some((p) => (p.endsWith('/') ? rel.startsWith(p) : rel === p)));
}

/** Every TypeScript file under dir, as paths relative to it with "/", sorted. */
function listSources(dir, prefix = '') {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix + entry.name;
    if (entry.isDirectory()) out.push(...listSources(join(dir, entry.name), `${rel}/`));
    else if (entry.isFile() && SOURCE.test(entry.name)) out.push(rel);
  }
  return out.sort();
}

function isTypeOnlyImport(node) {
  const clause = node.importClause;
  if (!clause) return false; // import './x.js': run for its effects
  // TypeScript 5.9+: phaseModifier (type/defer); isTypeOnly before it.
  if ('phaseModifier' in clause ? clause.phaseModifier === ts.SyntaxKind.TypeKeyword : clause.isTypeOnly) return true;
  if (clause.name) return false;
  const bindings = clause.namedBindings;
  return !!bindings && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly);
}

function isTypeOnlyExport(node) {
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return !!clause && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((e) => e.isTypeOnly);
}

/**
 * The module specifiers a file names: { spec, line, kind }, kind 'value'
 * (a static import or re-export), 'type' (type-only) or 'dynamic' (import()).
 */
export function importsOf(fileName, text) {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out = [];
  const add = (literal, node, kind) => {
    out.push({ spec: literal.text, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, kind });
  };
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      if (ts.isStringLiteral(node.moduleSpecifier)) add(node.moduleSpecifier, node, isTypeOnlyImport(node) ? 'type' : 'value');
    } else if (ts.isExportDeclaration(node)) {
      if (node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) add(node.moduleSpecifier, node, isTypeOnlyExport(node) ? 'type' : 'value');
    } else if (ts.isImportEqualsDeclaration(node)) {
      const ref = node.moduleReference;
      if (ts.isExternalModuleReference(ref) && ts.isStringLiteral(ref.expression)) add(ref.expression, node, node.isTypeOnly ? 'type' : 'value');
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && ts.isStringLiteralLike(arg)) add(arg, node, 'dynamic');
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg) && ts.isStringLiteral(arg.literal)) add(arg.literal, node, 'type');
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** What a relative specifier may name, as NodeNext maps output names to sources. */
function candidates(target) {
  const swap = [
    ['.js', '.ts'],
    ['.mjs', '.mts'],
    ['.cjs', '.cts'],
  ];
  for (const [from, to] of swap) if (target.endsWith(from)) return [target.slice(0, -from.length) + to];
  if (SOURCE.test(target)) return [target];
  return [`${target}.ts`, `${target}/index.ts`];
}

/** 'value' beats 'dynamic' beats 'type' when one file imports another more than once. */
const STRENGTH = { type: 0, dynamic: 1, value: 2 };

/** Tarjan's strongly connected components of the graph (Map<node, Map<node, kind>>). */
function components(nodes, graph) {
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const out = [];
  const connect = (v) => {
    index.set(v, counter);
    low.set(v, counter);
    counter += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v).keys()) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      out.push(component.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) connect(v);
  return out;
}

/**
 * Every elementary cycle of the graph, once, starting at its smallest node
 * (Johnson's algorithm), at most `limit` of them. Each cycle is the list of
 * its nodes, without repeating the first at the end.
 */
export function elementaryCycles(graph, limit = Infinity) {
  const nodes = [...graph.keys()].sort();
  const order = new Map(nodes.map((n, i) => [n, i]));
  const cycles = [];
  for (let s = 0; s < nodes.length && cycles.length < limit; s++) {
    const start = nodes[s];
    // The subgraph of the nodes from start on, restricted to start's component in it.
    const sub = new Map(nodes.slice(s).map((n) => [n, new Map([...graph.get(n)].filter(([m]) => order.get(m) >= s))]));
    const own = components([start], sub).find((c) => c.includes(start));
    const members = new Set(own);
    if (own.length === 1 && !sub.get(start).has(start)) continue;
    const next = (v) => [...sub.get(v).keys()].filter((w) => members.has(w));
    const blocked = new Set();
    const blockers = new Map();
    const path = [];
    const unblock = (u) => {
      blocked.delete(u);
      const waiting = blockers.get(u);
      blockers.delete(u);
      for (const w of waiting ?? []) if (blocked.has(w)) unblock(w);
    };
    const circuit = (v) => {
      let found = false;
      path.push(v);
      blocked.add(v);
      for (const w of next(v)) {
        if (cycles.length >= limit) break;
        if (w === start) {
          cycles.push([...path]);
          found = true;
        } else if (!blocked.has(w) && circuit(w)) found = true;
      }
      if (found) unblock(v);
      else
        for (const w of next(v)) {
          if (!blockers.has(w)) blockers.set(w, new Set());
          blockers.get(w).add(v);
        }
      path.pop();
      return found;
    };
    circuit(start);
  }
  return cycles;
}

/**
 * Checks root/src. Returns { files, imports, findings: { layers, cycles,
 * cyclesTruncated, tooLong, unlayered, unresolved } (counts), lines }: lines
 * are what is printed, one per finding.
 */
export function checkStructure(root, { maxLines = MAX_LINES, maxCycles = MAX_CYCLES } = {}) {
  const src = join(root, 'src');
  const files = listSources(src);
  const known = new Set(files);
  const graph = new Map(files.map((f) => [f, new Map()]));
  const out = { unlayered: [], unresolved: [], layers: [], cycles: [], tooLong: [] }; // printed in this order
  const findings = { layers: 0, cycles: 0, cyclesTruncated: false, tooLong: 0, unlayered: 0, unresolved: 0 };
  const show = (rel) => `src/${rel}`;
  const layerName = (rel) => LAYERS[layerOf(rel)]?.name ?? 'no layer';
  let imports = 0;

  for (const file of files) {
    if (layerOf(file) < 0) {
      findings.unlayered++;
      out.unlayered.push(`no layer: ${show(file)} is in none of the layers (${LAYERS.map((l) => l.name).join(' -> ')})`);
    }
    const text = readFileSync(join(src, file), 'utf8');
    const count = text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (count > maxLines) {
      findings.tooLong++;
      out.tooLong.push(`too long: ${show(file)} has ${count} lines (at most ${maxLines})`);
    }
    const upward = new Map(); // imported file -> { line, kind }: one finding per imported file
    for (const { spec, line, kind } of importsOf(file, text)) {
      if (!spec.startsWith('./') && !spec.startsWith('../')) continue;
      const target = resolve(join(src, dirname(file)), spec);
      if (relative(src, target).startsWith('..')) continue; // outside src/: not a module here
      const to = candidates(target)
        .map((c) => relative(src, c).split(sep).join('/'))
        .find((c) => known.has(c));
      if (to === undefined) {
        findings.unresolved++;
        out.unresolved.push(`unresolved: ${show(file)}:${line} imports '${spec}', which is no source file in src/`);
        continue;
      }
      imports++;
      const edges = graph.get(file);
      if (!edges.has(to) || STRENGTH[kind] > STRENGTH[edges.get(to)]) edges.set(to, kind);
      const from = layerOf(file);
      if (from >= 0 && layerOf(to) > from) {
        const first = upward.get(to);
        if (!first) upward.set(to, { line, kind });
        else if (STRENGTH[kind] > STRENGTH[first.kind]) first.kind = kind;
      }
    }
    for (const [to, { line, kind }] of upward) {
      findings.layers++;
      const marks = kind === 'value' ? '' : ` [${kind}]`;
      out.layers.push(`upward import: ${show(file)}:${line} (${layerName(file)}) imports ${show(to)} (${layerName(to)})${marks}`);
    }
  }

  const cycles = elementaryCycles(graph, maxCycles + 1);
  const step = (a, b) => {
    const kind = graph.get(a).get(b);
    return kind === 'value' ? ' -> ' : ` -(${kind})-> `;
  };
  const listed = cycles
    .slice(0, maxCycles)
    .map((c) => ({ length: c.length, text: c.map((n, i) => show(n) + step(n, c[(i + 1) % c.length])).join('') + show(c[0]) }))
    .sort((a, b) => a.length - b.length || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0)); // shortest first
  for (const { text } of listed) out.cycles.push(`cycle: ${text}`);
  findings.cycles = listed.length;
  findings.cyclesTruncated = cycles.length > maxCycles;
  if (findings.cyclesTruncated) {
    for (const component of components(files, graph)) {
      if (component.length > 1) out.cycles.push(`cycles: more than ${maxCycles}, not all listed, among ${component.map(show).join(', ')}`);
    }
  }
  return { files: files.length, imports, findings, lines: Object.values(out).flat() };
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** The lines to print for root/src, findings then the summary, and the exit status (0 or 1). */
export function report(root) {
  const { files, imports, findings: f, lines } = checkStructure(root);
  const scope = `${plural(files, 'file')}, ${plural(imports, 'import')} in src/`;
  if (lines.length === 0) return { code: 0, lines: [`check-structure: ${scope}: layers respected, no cycle, none over ${MAX_LINES} lines`] };
  const parts = [
    plural(f.layers, 'upward import'),
    f.cyclesTruncated ? `more than ${f.cycles} cycles` : plural(f.cycles, 'cycle'),
    `${plural(f.tooLong, 'file')} over ${MAX_LINES} lines`,
  ];
  if (f.unlayered) parts.push(`${plural(f.unlayered, 'file')} in no layer`);
  if (f.unresolved) parts.push(plural(f.unresolved, 'unresolved import'));
  return { code: 1, lines: [...lines, `check-structure: ${parts.join(', ')} (${scope})`] };
}

function main(argv) {
  let root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--root' && argv[i + 1] !== undefined) root = resolve(argv[++i]);
    else {
      process.stderr.write(`check-structure: unknown argument ${argv[i]}\nusage: node scripts/check-structure.mjs [--root DIR]\n`);
      return 2;
    }
  }
  if (!statSync(join(root, 'src'), { throwIfNoEntry: false })?.isDirectory()) {
    process.stderr.write(`check-structure: no src/ directory in ${root}\n`);
    return 2;
  }
  const { code, lines } = report(root);
  process.stdout.write(lines.map((l) => `${l}\n`).join(''));
  return code;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}

#!/usr/bin/env node
// Finds import cycles among a tree's modules through relative imports (import/export ... from,
// import(), require()). Usage: node scripts/check-import-cycles.mjs [dir=src] [--runtime]
// Scans .ts/.cts/.mts (specifiers written .js/.cjs/.mjs, as NodeNext wants) or compiled .js/.cjs/.mjs.
// --runtime leaves out `import type` / `export type` (erased at compile time). Exits 1 on a cycle.
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const runtimeOnly = args.includes('--runtime');
const root = path.resolve(args.find((a) => !a.startsWith('--')) ?? 'src');
const SOURCE = /\.(ts|cts|mts|js|cjs|mjs)$/;

function files(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : files(p);
    return SOURCE.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The file a relative specifier names: itself, or its .ts twin for a .js specifier. */
function resolve(from, spec) {
  const base = path.resolve(path.dirname(from), spec);
  const twins = [base, base.replace(/\.js$/, '.ts'), base.replace(/\.cjs$/, '.cts'), base.replace(/\.mjs$/, '.mts'), `${base}.ts`, `${base}.js`, path.join(base, 'index.ts'), path.join(base, 'index.js')];
  return twins.find((t) => fs.existsSync(t) && fs.statSync(t).isFile());
}

function imports(file) {
  const text = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found = [];
  const statement = /\b(import|export)\s+(type\s+)?([^;'"]*?)\bfrom\s*['"]([^'"]+)['"]|\bimport\s*['"]([^'"]+)['"]/g;
  for (const m of text.matchAll(statement)) {
    const spec = m[4] ?? m[5];
    // `import { type A, type B }` is erased too when every name is a type.
    const names = m[3] ?? '';
    const allTypes = /^\{[^}]*\}\s*$/.test(names.trim()) && names.replace(/[{}\s]/g, '').split(',').filter(Boolean).every((n) => n.startsWith('type'));
    if (runtimeOnly && (m[2] || allTypes)) continue;
    found.push(spec);
  }
  for (const m of text.matchAll(/\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]);
  return found.filter((s) => s.startsWith('.')).map((s) => resolve(file, s)).filter(Boolean);
}

const graph = new Map(files(root).map((f) => [f, imports(f)]));
// Tarjan's strongly connected components: each component of more than one module (or a self-import) is a cycle.
let counter = 0;
const index = new Map(), low = new Map(), stack = [], onStack = new Set(), cycles = [];
function visit(v) {
  index.set(v, counter); low.set(v, counter++); stack.push(v); onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!graph.has(w)) continue;
    if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
    else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
  }
  if (low.get(v) !== index.get(v)) return;
  const component = [];
  let w;
  do { w = stack.pop(); onStack.delete(w); component.push(w); } while (w !== v);
  if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component);
}
for (const v of graph.keys()) if (!index.has(v)) visit(v);

const rel = (f) => path.relative(process.cwd(), f);
for (const c of cycles) {
  console.log(`cycle (${c.length} modules${runtimeOnly ? ', run time' : ''}):`);
  for (const f of c.sort()) console.log(`  ${rel(f)} -> ${(graph.get(f) ?? []).filter((t) => c.includes(t)).map(rel).join(', ')}`);
}
console.log(`${graph.size} modules under ${rel(root) || '.'}: ${cycles.length === 0 ? 'no import cycles' : `${cycles.length} cycle(s)`}${runtimeOnly ? ' at run time' : ''}`);
process.exitCode = cycles.length === 0 ? 0 : 1;

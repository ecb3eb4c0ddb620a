/**
 * The shape of the house, checked from the import statements of engine/ and src/:
 * - no import cycles (a type-only import counts: it is still a dependency of meaning);
 * - engine/ imports nothing from src/; engine/codec/ nothing but itself and engine/errors.ts;
 * - the fronts (gateway, replay, kafka) never import each other, nor the cluster log;
 * - the SDK (src/client/) imports only engine/codec/ and engine/errors.ts beside itself;
 * - only src/server.ts picks a log implementation (engine/log-manager.ts, src/cluster/).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(rel));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|(?:^|\n)\s*import\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    out.push(path.normalize(path.join(path.dirname(file), spec)));
  }
  return out;
}

const files = [...walk('engine'), ...walk('src')];
const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => t.endsWith('.ts'))]));

const FRONTS = ['src/gateway/', 'src/replay/', 'src/kafka/'];
const frontOf = (f: string): string | undefined => FRONTS.find((p) => f.startsWith(p));

test('every relative import names a file that exists', () => {
  for (const [f, targets] of graph) for (const t of targets) assert.ok(fs.existsSync(path.join(root, t)), `${f} imports ${t}, which does not exist`);
});

test('no import cycles in engine/ and src/', () => {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of graph.get(f) ?? []) {
      if (state.get(t) === 'open') cycles.push([...stack.slice(stack.indexOf(t)), t].join(' -> '));
      else if (!state.has(t) && graph.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('layers: engine below src, codec self-contained, fronts apart, the SDK on the codec only', () => {
  const problems: string[] = [];
  for (const [f, targets] of graph) {
    for (const t of targets) {
      if (f.startsWith('engine/') && t.startsWith('src/')) problems.push(`${f} (engine) imports ${t} (src)`);
      if (f.startsWith('engine/codec/') && !t.startsWith('engine/codec/') && t !== 'engine/errors.ts') problems.push(`${f} (codec) imports ${t}`);
      const a = frontOf(f);
      const b = frontOf(t);
      if (a && b && a !== b) problems.push(`front ${f} imports front ${t}`);
      if (a && t.startsWith('src/cluster/')) problems.push(`front ${f} imports the cluster log ${t}`);
      if (f.startsWith('src/client/') && !(t.startsWith('src/client/') || t.startsWith('engine/codec/') || t === 'engine/errors.ts')) {
        problems.push(`SDK ${f} imports ${t}`);
      }
      const pickers = t === 'engine/log-manager.ts' || t.startsWith('src/cluster/');
      if (pickers && f.startsWith('src/') && f !== 'src/server.ts' && !f.startsWith('src/cluster/') && !f.startsWith('src/cli/')) {
        problems.push(`${f} picks a log implementation (${t}); only src/server.ts does`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

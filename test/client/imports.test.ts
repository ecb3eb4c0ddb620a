/**
 * The SDK's import graph: no cycle among the files of src/client/ (each part owns its state
 * and is handed callbacks, so nothing needs to import back), and nothing imported from
 * outside the SDK but engine/codec/ and engine/errors.ts (pure TypeScript, no Node API);
 * the Node-only replay client may also use node: modules.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { root } from './server-process.ts';

const dir = path.join(root, 'src/client');

/** Every relative import and re-export of a file (type-only ones too: a cycle of types is still a cycle to read). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gm)) out.push(m[1]);
  return out;
}

const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));
const graph = new Map(files.map((f) => [f, importsOf(f).filter((s) => s.startsWith('.')).map((s) => path.resolve(path.dirname(f), s))]));

test('src/client has no import cycle', () => {
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, trail: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') {
      cycles.push([...trail.slice(trail.indexOf(f)), f].map((p) => path.relative(root, p)).join(' → '));
      return;
    }
    state.set(f, 'visiting');
    for (const g of graph.get(f) ?? []) if (graph.has(g)) visit(g, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(cycles, []);
  assert.ok(files.length >= 10, `read ${files.length} files`);
});

test('the SDK imports only engine/codec/ and engine/errors.ts from outside src/client', () => {
  for (const f of files) {
    for (const s of importsOf(f)) {
      if (s.startsWith('./')) continue;
      if (path.basename(f) === 'replay.ts' && s.startsWith('node:')) continue;
      const target = path.relative(root, path.resolve(path.dirname(f), s));
      assert.ok(target.startsWith('engine/codec/') || target === 'engine/errors.ts', `${path.relative(root, f)} imports ${s}`);
    }
  }
});

/**
 * One error vocabulary: docs/errors.md lists exactly ERROR_CODES and, under each code,
 * exactly the reasons of ERROR_REASONS; every reason is used somewhere in src/ or engine/
 * (no dead entries), and every code a front sends is documented.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, ERROR_REASONS, type ErrorCode } from '../../engine/errors.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const md = fs.readFileSync(path.join(root, 'docs/errors.md'), 'utf8');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

/** The code of src/ and engine/, without the table itself (its defaults, like CORRUPT_BATCH, count). */
const code = [...sources('src'), ...sources('engine')]
  .map((f) => fs.readFileSync(path.join(root, f), 'utf8'))
  .map((text) => text.replace(/export const ERROR_REASONS = \{[\s\S]*?\} as const/, ''))
  .join('\n');

test('docs/errors.md lists every code of ERROR_CODES, and only those', () => {
  const documented = [...md.matchAll(/^\| `([A-Z_]+)` \| \d/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), [...ERROR_CODES].sort());
});

test('docs/errors.md lists the reasons of each code, and only those', () => {
  const sections = md.split(/^### /m).slice(1);
  const documented = new Map<string, string[]>();
  for (const s of sections) {
    const name = s.slice(0, s.indexOf('\n')).trim();
    documented.set(name, [...s.matchAll(/^\| `([A-Z_0-9]+)` \|/gm)].map((m) => m[1]));
  }
  assert.deepEqual([...documented.keys()].sort(), [...ERROR_CODES].sort());
  for (const c of ERROR_CODES) {
    const table = (ERROR_REASONS[c] as readonly string[]).filter((r) => r !== c);
    assert.deepEqual([...(documented.get(c) ?? [])].sort(), [...table].sort(), `reasons of ${c}`);
  }
});

test('every reason is used in src/ or engine/ (the table has no dead entries)', () => {
  for (const c of ERROR_CODES) {
    for (const r of ERROR_REASONS[c] as readonly string[]) {
      if (r === c) continue;
      assert.ok(code.includes(`'${r}'`), `reason ${r} of ${c} is used nowhere`);
    }
  }
});

test('every error code the fronts send is a known code', () => {
  const used = new Set<string>();
  for (const m of code.matchAll(/(?:SluiceError(?:<'[A-Z_]+'>)?\(|sendError\(|end\(|code: )'([A-Z_]+)'/g)) used.add(m[1]);
  assert.ok(used.size >= 5, `found only ${[...used]}`);
  for (const c of used) assert.ok((ERROR_CODES as readonly string[]).includes(c as ErrorCode), `${c} is sent but is not in ERROR_CODES`);
});

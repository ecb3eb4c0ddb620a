/** docs/errors.md lists exactly engine/errors.ts's ERROR_CODES, and every code the gateway sends. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../../engine/errors.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function documented(): string[] {
  const md = fs.readFileSync(path.join(root, 'docs/errors.md'), 'utf8');
  return [...md.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
}

test('docs/errors.md lists every code of ERROR_CODES, and only those', () => {
  assert.deepEqual([...documented()].sort(), [...ERROR_CODES].sort());
});

test('every error code the gateway sends is documented', () => {
  const dir = path.join(root, 'src/gateway');
  const used = new Set<string>();
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/(?:SluiceError\(|sendError\(|code: )'([A-Z_]+)'/g)) used.add(m[1]);
  }
  assert.ok(used.size >= 5, `found only ${[...used]}`);
  const docs = new Set(documented());
  for (const code of used) assert.ok(docs.has(code), `${code} is sent by the gateway but not in docs/errors.md`);
});

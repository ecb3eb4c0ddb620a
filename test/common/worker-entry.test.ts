/**
 * A worker thread's entry resolves and runs both ways sluice runs (src/common/worker-entry.ts):
 * from the TypeScript sources under tsx (this test process runs with `--import tsx`, which a
 * Worker inherits), and from the compiled build under plain Node, with no loader at all.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { startWorker, workerEntry } from '../../src/common/worker-entry.ts';

const root = path.resolve(import.meta.dirname, '../..');

function firstMessage(w: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    w.once('message', (m) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`worker exited with ${code}`))));
  });
}

test('from the sources: the entry is the .ts beside the caller, and the worker runs it through tsx', async () => {
  const url = workerEntry(import.meta.url, './fixtures/echo-worker');
  assert.ok(url.pathname.endsWith('/test/common/fixtures/echo-worker.ts'));
  const w = startWorker(import.meta.url, './fixtures/echo-worker', { workerData: { n: 21 } });
  assert.deepEqual(await firstMessage(w), { doubled: 42, url: url.href });
});

test('an entry named with an extension is refused: the helper picks it', () => {
  assert.throws(() => workerEntry(import.meta.url, './fixtures/echo-worker.ts'), /without an extension/);
});

test('compiled: the entry is the .js beside the caller under dist/, and plain node (no tsx) runs it in a worker', () => {
  const compiled = path.join(root, 'dist/src/common/worker-entry.js');
  assert.ok(fs.existsSync(compiled), 'the build ran (scripts/test.mjs builds first)');
  // A child without any loader starts a worker on the compiled module the helper names, the
  // way a front starts its worker entry; a `.ts` specifier left in dist/ would fail to load.
  const script = `
    import { startWorker, workerEntry } from ${JSON.stringify(pathToFileURL(compiled).href)};
    const url = workerEntry(${JSON.stringify(pathToFileURL(compiled).href)}, './build-info');
    const w = startWorker(${JSON.stringify(pathToFileURL(compiled).href)}, './build-info');
    w.once('error', (e) => { console.error(e); process.exit(1); });
    w.once('exit', (code) => { console.log(JSON.stringify({ url: url.href, code, execArgv: process.execArgv })); process.exit(code); });
  `;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-worker-'));
  const file = path.join(dir, 'start.mjs');
  fs.writeFileSync(file, script);
  const r = spawnSync(process.execPath, [file], { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { url: string; code: number; execArgv: string[] };
  assert.equal(fileURLToPath(out.url), path.join(root, 'dist/src/common/build-info.js'));
  assert.deepEqual(out.execArgv, [], 'no loader in the compiled run');
  assert.equal(out.code, 0);
});

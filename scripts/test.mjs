#!/usr/bin/env node
// `npm test`: builds (scripts/build.mjs, ~1-2 s), type-checks everything (tests and
// benchmarks included), then runs every test file under test/ (Node 20's --test does not
// expand globs itself). Extra arguments filter the files by substring:
// `npm test -- engine/recovery`.
//
// Test files are TypeScript run through tsx, but every server a test spawns runs the
// compiled build through bin/sluice.js, the code users run; building first means that code
// is never older than the sources under test.
//
// Suites that exercise the WebSocket front run twice, with it on one thread and on two (below).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from './build.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const filters = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.name.endsWith('.test.ts')) out.push(path.relative(root, p));
  }
  return out;
}

const files = walk(path.join(root, 'test'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ') || 'test/**/*.test.ts'}`);
  process.exit(1);
}
await build();
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', root], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

// The WebSocket front runs on --threads N threads (default: one per core). Every server a
// test starts reads SLUICE_THREADS (unless the test sets --threads itself), so the suite runs
// first with the front on one thread, then, for the suites that exercise the front — every
// one that talks to a server's WebSocket or HTTP port — again on two, the first count where
// publishes, subscribers, limits and metrics span threads; and the Kafka suite, whose front
// uses the log through the thread host as soon as there are two (topic admin then waits for
// every thread); and the cluster suites, whose nodes run the cluster log behind the thread
// host at two (the default on this machine). The engine, codec, replay and packaging suites
// do not change with the count and run once. SLUICE_TEST_THREADS=2 (or 1) runs everything at that count only.
// A suite counts when it starts a server (its text says so) in one of these directories.
const THREADED = ['test/gateway/', 'test/client/', 'test/hostile/', 'test/cli/', 'test/examples/', 'test/kafka/', 'test/cluster/'];
// Run once only, to keep the whole under ~10 minutes on 2 cores: the Kafka port fuzz (two
// minutes alone) exercises the Kafka codec, which the thread count does not change; topic
// admin through the thread host is covered by the other Kafka suites at 2.
const ONCE = ['test/kafka/hostile.test.ts'];
const startsServer = (f) => /startServer\(|startSluiceCluster\(|server-process|bin\/sluice/.test(fs.readFileSync(path.join(root, f), 'utf8'));
const counts = process.env.SLUICE_TEST_THREADS ? [process.env.SLUICE_TEST_THREADS] : ['1', '2'];
let status = 0;
for (const [i, threads] of counts.entries()) {
  const run = i === 0 || counts.length === 1 ? files : files.filter((f) => THREADED.some((d) => f.startsWith(d)) && !ONCE.includes(f) && startsServer(f));
  if (run.length === 0) continue;
  console.log(`# --- ${run.length} test files with the WebSocket front on ${threads} thread${threads === '1' ? '' : 's'} (SLUICE_THREADS=${threads})`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...run], { cwd: root, stdio: 'inherit', env: { ...process.env, SLUICE_THREADS: threads } });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);

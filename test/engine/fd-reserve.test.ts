/**
 * The file descriptor reserve (engine/fd-reserve.ts): the limit read from /proc, open
 * descriptors counted, and the engine refusing a new topic or a new segment below the
 * reserve — with UNAVAILABLE (TOO_MANY_OPEN_FILES), leaving nothing half-made on disk —
 * while a roll that can wait (by age) waits. The last tests run a real process under a low
 * `ulimit -n`, where the engine meets the limit for real.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FdReserve, countOpenFds, fdReserveFor, readFdLimit } from '../../engine/fd-reserve.ts';
import { fdCountMaxAgeMs, fdReserveMin, segmentFds } from '../../engine/limits.ts';
import { assertRejectsCode, matrix, readAll } from './helpers.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('RLIMIT_NOFILE is read from /proc/self/limits; open descriptors are counted', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-fd-'));
  try {
    const sample = path.join(dir, 'limits');
    fs.writeFileSync(sample, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n');
    assert.deepEqual(readFdLimit(sample), { soft: 1024, hard: 524288 });
    fs.writeFileSync(sample, 'Max open files            unlimited            unlimited            files\n');
    assert.deepEqual(readFdLimit(sample), { soft: Infinity, hard: Infinity });
    assert.equal(readFdLimit(path.join(dir, 'absent')), null);
    const own = readFdLimit();
    assert.ok(own && own.soft > 0, 'this Linux process has a limit');
    const before = countOpenFds()!.count;
    const fds = Array.from({ length: 10 }, () => fs.openSync('/dev/null', 'r'));
    assert.equal(countOpenFds()!.count, before + 10);
    for (const fd of fds) fs.closeSync(fd);
    assert.equal(countOpenFds()!.count, before);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the reserve: a share of the limit, at least fdReserveMin; room counted against it', () => {
  assert.equal(fdReserveFor(100), fdReserveMin);
  assert.equal(fdReserveFor(20_000), 5000);
  let used = 900;
  const r = new FdReserve(1000, 64, () => ({ count: used, exact: true }));
  assert.ok(r.hasRoomFor(36));
  assert.ok(!r.hasRoomFor(37));
  assert.throws(() => r.assertRoomFor(37, 'open things'), (e: { code?: string; reason?: string; message: string }) => e.code === 'UNAVAILABLE' && e.reason === 'TOO_MANY_OPEN_FILES' && /900 of 1000/.test(e.message));
  used = 0;
  assert.ok(r.hasRoomFor(936));
  assert.ok(new FdReserve(null, 0, () => null).hasRoomFor(1e9), 'no known limit: nothing refused');
});

test('where only a readdir counts (old kernels), a count is reused for fdCountMaxAgeMs with what was asked for since', () => {
  let now = 0;
  let counts = 0;
  const r = new FdReserve(1000, 100, () => (counts++, { count: 800, exact: false }), () => now);
  r.assertRoomFor(50, 'a');
  r.assertRoomFor(50, 'b');
  assert.equal(counts, 1);
  assert.equal(r.inUse(), 900, 'the asks since the count are added');
  assert.ok(!r.hasRoomFor(1));
  now += fdCountMaxAgeMs;
  assert.equal(r.inUse(), 800, 'counted again once the count is old');
  assert.equal(counts, 2);
});

/** A reserve over a fake count: `free` descriptors left above the reserve. */
function tightReserve(free: () => number): FdReserve {
  return new FdReserve(10_000, 100, () => ({ count: 10_000 - 100 - free(), exact: true }));
}

matrix('regression: below the reserve a topic create is UNAVAILABLE (TOO_MANY_OPEN_FILES) and leaves nothing behind; --max-topics is BAD_REQUEST', async (ctx) => {
  let free = 10 * segmentFds;
  const mgr = await ctx.openManager({ fds: tightReserve(() => free), topicsMax: 3 });
  await mgr.createTopic('a', { partitions: 1 });
  await assertRejectsCode(mgr.createTopic('b', { partitions: 12 }), 'UNAVAILABLE', 'TOO_MANY_OPEN_FILES');
  assert.deepEqual(fs.readdirSync(path.join(ctx.dir, 'meta')), ['a.json'], 'no metadata left by the refused create');
  assert.ok(!fs.existsSync(path.join(ctx.dir, 'b-0')));
  await mgr.createTopic('b', { partitions: 1 });
  await mgr.createTopic('c', { partitions: 1 });
  await assertRejectsCode(mgr.createTopic('d', { partitions: 1 }), 'BAD_REQUEST', 'TOO_MANY_TOPICS');
  await mgr.deleteTopic('c');
  await mgr.createTopic('d', { partitions: 1 });
  await mgr.deleteTopic('d');
  free = 0;
  await assertRejectsCode(mgr.createTopic('e', { partitions: 1 }), 'UNAVAILABLE', 'TOO_MANY_OPEN_FILES');
  assert.deepEqual(mgr.listTopics(), ['a', 'b']);
});

matrix('below the reserve a size roll refuses the append (nothing stored); an age roll waits and the segment grows on', async (ctx) => {
  let free = 100;
  let now = 1_700_000_000_000;
  const log = ctx.openLog(ctx.dir, { segmentBytes: 64 * 1024, segmentMs: 1000, clock: () => now, fds: tightReserve(() => free) });
  const big = () => ctx.batch([{ value: crypto.randomBytes(40 * 1024) }], now);
  await log.append(big());
  free = segmentFds - 1;
  const hw = log.hw;
  await assertRejectsCode(log.append(big()), 'UNAVAILABLE', 'TOO_MANY_OPEN_FILES');
  assert.equal(log.hw, hw);
  assert.equal(log.nextOffset, hw, 'no offset taken');
  assert.equal(log.segmentCount, 1);
  now += 5000;
  await log.append(ctx.batch([{ value: new TextEncoder().encode('small') }], now));
  assert.equal(log.segmentCount, 1, 'the age roll was put off');
  free = 100;
  await log.append(big());
  assert.equal(log.segmentCount, 2, 'with room again, the log rolls');
  assert.equal(readAll(log).length, 3);
});

/** Runs a script under `ulimit -n <n>` in a fresh process; returns its exit status and output. */
function underUlimit(n: number, script: string): { status: number | null; stdout: string; stderr: string } {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ulimit-')), 'script.mts');
  fs.writeFileSync(file, script);
  try {
    const r = spawnSync('bash', ['-c', `ulimit -n ${n} && exec "${process.execPath}" --import tsx "${file}"`], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

test('regression: under a real RLIMIT_NOFILE, topic creation stops at the reserve with TOO_MANY_OPEN_FILES, no INTERNAL, no stray files, and the directory opens again', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-fdreal-'));
  try {
    const manager = path.join(root, 'engine/log-manager.ts');
    const r = underUlimit(
      256,
      `
      import fs from 'node:fs';
      import { LogManager } from ${JSON.stringify(manager)};
      const mgr = await LogManager.open({ dataDir: ${JSON.stringify(dataDir)}, retentionCheckMs: 0, flush: 'never' });
      const outcome = { created: 0, refused: {} as Record<string, number> };
      for (let i = 0; i < 300; i++) {
        try {
          await mgr.createTopic('t' + i, { partitions: 1 });
          outcome.created++;
        } catch (e: any) {
          const k = e.code + '/' + e.reason;
          outcome.refused[k] = (outcome.refused[k] ?? 0) + 1;
        }
      }
      // The reserve is still free: the process can open files.
      const fds = Array.from({ length: 40 }, () => fs.openSync('/dev/null', 'r'));
      for (const fd of fds) fs.closeSync(fd);
      await mgr.close();
      const again = await LogManager.open({ dataDir: ${JSON.stringify(dataDir)}, retentionCheckMs: 0 });
      console.log(JSON.stringify({ ...outcome, reopened: again.listTopics().length }));
      await again.close();
      `,
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.ok(out.created > 10 && out.created < 80, `created ${out.created}`);
    assert.deepEqual(Object.keys(out.refused), ['UNAVAILABLE/TOO_MANY_OPEN_FILES']);
    assert.equal(out.reopened, out.created);
    const metas = fs.readdirSync(path.join(dataDir, 'meta'));
    assert.equal(metas.length, out.created, 'one metadata file per topic, none left by a refusal');
    const dirs = fs.readdirSync(dataDir).filter((d) => /^t\d+-0$/.test(d));
    assert.equal(dirs.length, out.created);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a data directory holding more segments than the limit allows refuses to open, naming the numbers', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-fdopen-'));
  try {
    const manager = path.join(root, 'engine/log-manager.ts');
    const make = underUlimit(
      4096,
      `
      import { LogManager } from ${JSON.stringify(manager)};
      const mgr = await LogManager.open({ dataDir: ${JSON.stringify(dataDir)}, retentionCheckMs: 0, flush: 'never' });
      for (let i = 0; i < 100; i++) await mgr.createTopic('t' + i, { partitions: 1 });
      await mgr.close();
      `,
    );
    assert.equal(make.status, 0, make.stderr);
    const open = underUlimit(
      256,
      `
      import { LogManager } from ${JSON.stringify(manager)};
      try {
        await LogManager.open({ dataDir: ${JSON.stringify(dataDir)}, retentionCheckMs: 0 });
        console.log('opened');
      } catch (e: any) {
        console.log(JSON.stringify({ code: e.code, reason: e.reason, message: e.message }));
      }
      `,
    );
    assert.equal(open.status, 0, open.stderr);
    const e = JSON.parse(open.stdout.trim());
    assert.equal(e.reason, 'TOO_MANY_OPEN_FILES');
    assert.match(e.message, /100 segments \(300 file descriptors\).*RLIMIT_NOFILE 256.*ulimit -n/);
    assert.ok(!fs.existsSync(path.join(dataDir, '.lock')), 'the failed open released the lock');
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

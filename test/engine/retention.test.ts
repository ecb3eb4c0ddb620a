/**
 * Retention deletes whole old segments by size or age. The start offset moves; offsets go
 * on where they were and are never reused, also when everything old is gone and the
 * process starts again (wire contract §1: "never reused, also across restarts and retention").
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { appendRandom, assertCode, flat, matrix, readAll, segmentBases } from './helpers.ts';

const HOUR = 3600_000;

matrix('retention by bytes deletes whole oldest segments and moves the start', async (ctx) => {
  const r = ctx.rng();
  const segmentBytes = 8 * 1024;
  const retentionBytes = 30 * 1024;
  const log = ctx.openLog(ctx.dir, { segmentBytes, retentionBytes });
  const batches = await appendRandom(ctx, log, r, 200);
  const hw = log.hw;
  const before = segmentBases(ctx.dir);
  const total = log.bytes;
  assert.ok(total > 2 * retentionBytes);
  const deleted = log.enforceRetention();
  assert.ok(deleted > 0);
  const after = segmentBases(ctx.dir);
  assert.deepEqual(after, before.slice(deleted), 'the oldest segments went, whole');
  assert.ok(log.bytes >= retentionBytes, 'no more than needed was deleted');
  assert.ok(log.bytes - fs.statSync(path.join(ctx.dir, `${String(after[0]).padStart(20, '0')}.log`)).size < retentionBytes, 'and no less');
  for (const b of before.slice(0, deleted)) {
    for (const ext of ['log', 'index', 'timeindex']) assert.ok(!fs.existsSync(path.join(ctx.dir, `${String(b).padStart(20, '0')}.${ext}`)));
  }
  assert.equal(log.startOffset, after[0]);
  assert.equal(log.hw, hw, 'the hw does not move');
  assertCode(() => log.read(log.startOffset - 1, 1000), 'OFFSET_OUT_OF_RANGE');
  assertCode(() => log.read(0, 1000), 'OFFSET_OUT_OF_RANGE');
  assert.deepEqual(
    readAll(log),
    flat(batches).filter((x) => x.offset >= log.startOffset),
  );
  assert.equal(log.enforceRetention(), 0, 'a second pass finds nothing more');
  const more = await appendRandom(ctx, log, r, 3, { ts0: 1_800_000_000_000 });
  assert.equal(more[0].baseOffset, hw, 'offsets go on');
});

matrix('retention by time deletes segments whose newest record is older than retentionMs', async (ctx) => {
  const r = ctx.rng();
  const now = 1_700_000_000_000;
  const log = ctx.openLog(ctx.dir, { segmentBytes: 8 * 1024, retentionMs: HOUR });
  const old = await appendRandom(ctx, log, r, 60, { ts0: now - 3 * HOUR, stepMs: 1000 });
  const fresh = await appendRandom(ctx, log, r, 60, { ts0: now - HOUR / 2, stepMs: 1000 });
  const hw = log.hw;
  const deleted = log.enforceRetention(now);
  assert.ok(deleted > 0);
  // Every old record whose segment also holds a fresh one stays; no fresh record goes.
  const kept = readAll(log);
  assert.equal(kept.at(-1)!.offset, hw - 1);
  assert.ok(log.startOffset <= fresh[0].baseOffset, 'no fresh record was deleted');
  assert.ok(log.startOffset > old[0].baseOffset, 'old segments were deleted');
  assert.deepEqual(kept, flat([...old, ...fresh]).filter((x) => x.offset >= log.startOffset));
  // The first surviving segment holds something young enough.
  const first = log.read(log.startOffset, 8 * 1024)!;
  assert.ok(first.segment.maxTimestamp > now - HOUR);
  assertCode(() => log.read(log.startOffset - 1, 1), 'OFFSET_OUT_OF_RANGE');
  assert.equal(log.hw, hw);
});

matrix('when retention deletes everything, offsets go on from the hw, also after a restart', async (ctx) => {
  const r = ctx.rng();
  const now = 1_700_000_000_000;
  const opts = { segmentBytes: 8 * 1024, retentionMs: HOUR };
  let log = ctx.openLog(ctx.dir, opts);
  await appendRandom(ctx, log, r, 80, { ts0: now - 5 * HOUR, stepMs: 1000 });
  const hw = log.hw;
  assert.ok(log.segmentCount > 1);
  log.enforceRetention(now);
  assert.equal(log.segmentCount, 1, 'only the (new, empty) active segment is left');
  assert.equal(log.startOffset, hw);
  assert.equal(log.hw, hw);
  assert.equal(log.bytes, 0);
  assert.deepEqual(segmentBases(ctx.dir), [hw]);
  assert.equal(log.read(hw, 1000), null);
  assertCode(() => log.read(hw - 1, 1000), 'OFFSET_OUT_OF_RANGE');
  assert.equal(log.offsetForTime(0), hw);
  await log.close();

  log = ctx.openLog(ctx.dir, opts);
  assert.equal(log.startOffset, hw, 'the start survives the restart');
  assert.equal(log.hw, hw, 'so does the hw: offsets are never reset');
  assertCode(() => log.read(0, 1000), 'OFFSET_OUT_OF_RANGE');
  const more = await appendRandom(ctx, log, r, 5, { ts0: now, stepMs: 1000 });
  assert.equal(more[0].baseOffset, hw);
  assert.deepEqual(readAll(log), flat(more));
  // Once more, with the fresh records aged out too.
  log.enforceRetention(now + 10 * HOUR);
  const hw2 = log.hw;
  assert.equal(log.startOffset, hw2);
  await log.close();
  log = ctx.openLog(ctx.dir, opts);
  assert.equal(log.startOffset, hw2);
  assert.equal((await log.append(ctx.batch([{ value: null }], now + 10 * HOUR))).baseOffset, hw2);
});

matrix('retention keeps everything when the limits are -1, and never deletes the active segment', async (ctx) => {
  const r = ctx.rng();
  const log = ctx.openLog(ctx.dir, { segmentBytes: 8 * 1024 });
  const batches = await appendRandom(ctx, log, r, 60, { ts0: 1000 });
  assert.equal(log.enforceRetention(Number.MAX_SAFE_INTEGER), 0);
  assert.deepEqual(readAll(log), flat(batches));
  log.retentionBytes = 0;
  log.enforceRetention();
  assert.equal(log.segmentCount, 1, 'retentionBytes 0 leaves the active segment');
  assert.deepEqual(
    readAll(log),
    flat(batches).filter((x) => x.offset >= log.startOffset),
  );
  assert.ok(log.startOffset > 0);
});

matrix('retention set on a topic is applied by the manager and kept across reopen', async (ctx) => {
  const r = ctx.rng();
  const now = Date.now();
  let mgr = await ctx.openManager({ segmentBytes: 8 * 1024 });
  await mgr.createTopic('events', { partitions: 2, retentionMs: HOUR });
  for (const p of [0, 1]) await appendRandom(ctx, mgr.partition('events', p), r, 60, { ts0: now - 5 * HOUR, stepMs: 1000 });
  const hws = mgr.describe('events').partitions.map((p) => p.hw);
  await mgr.close();
  mgr = await ctx.openManager({ segmentBytes: 8 * 1024 });
  assert.equal(mgr.describe('events').retentionMs, HOUR);
  assert.ok(mgr.enforceRetention(now) >= 2);
  const d = mgr.describe('events');
  assert.deepEqual(
    d.partitions.map((p) => [p.start, p.hw, p.bytes, p.segments]),
    hws.map((hw) => [hw, hw, 0, 1]),
  );
  await mgr.close();
  mgr = await ctx.openManager({ segmentBytes: 8 * 1024 });
  assert.deepEqual(
    mgr.describe('events').partitions.map((p) => [p.start, p.hw]),
    hws.map((hw) => [hw, hw]),
  );
  const res = await mgr.partition('events', 1).append(ctx.batch([{ value: null }], now));
  assert.equal(res.baseOffset, hws[1]);
});

matrix('regression: a segment dated far in the future (year 2100) is judged by its last append plus the tolerance, also after a reopen', async (ctx) => {
  // Records dated 2100 are refused at produce now; data stored before that check, or by
  // anything that appends without it, must not keep its segment (and all after it) for ever.
  let now = 1_800_000_000_000;
  const aheadMs = HOUR;
  const opts = { segmentBytes: 4 * 1024, retentionMs: 2000, timestampAheadMs: aheadMs, clock: () => now };
  let log = ctx.openLog(ctx.dir, opts);
  const y2100 = Date.UTC(2100, 0, 1);
  for (let i = 0; i < 30; i++) await log.append(ctx.batch([{ value: crypto.randomBytes(300) }], y2100 + i));
  assert.ok(log.segmentCount > 2);
  now += 10_000;
  assert.equal(log.enforceRetention(), 0, 'within the tolerance: kept');
  now += aheadMs;
  const deleted = log.enforceRetention();
  assert.ok(deleted >= 2, `${deleted} deleted once the tolerance and retentionMs have passed`);
  // Reopened, a segment's last append is the file's last change: well before `now` here.
  for (let i = 0; i < 30; i++) await log.append(ctx.batch([{ value: crypto.randomBytes(300) }], y2100 + i));
  await log.close();
  log = ctx.openLog(ctx.dir, { ...opts, clock: () => Date.now() + aheadMs + 10_000 });
  assert.ok(log.enforceRetention() >= 2, 'the file times bound a reopened segment too');
});

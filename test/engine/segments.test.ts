/**
 * Segments: rolling by size and by age, reads across segments, reopening a partition, and
 * finding an offset by time.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { readBatchHeader } from '../../engine/codec/record-batch.ts';
import { type Appended, appendRandom, eventValue, type Expected, expectedOf, flat, int, matrix, readAll, segmentBases, segPath } from './helpers.ts';

/** Asserts that the files of `dir` are whole batches, each segment named by its first offset, offsets continuing across files. */
function assertSegmentFiles(dir: string, segmentBytes: number): number[] {
  const bases = segmentBases(dir);
  let expect = bases[0];
  for (const base of bases) {
    const buf = fs.readFileSync(segPath(dir, base, 'log'));
    assert.equal(base, expect, `segment ${base} starts where the one before ended`);
    let pos = 0;
    let batches = 0;
    while (pos < buf.length) {
      const h = readBatchHeader(buf, pos);
      assert.equal(h.baseOffset, expect);
      expect += h.recordCount;
      pos += h.size;
      batches++;
    }
    assert.equal(pos, buf.length, 'a segment ends exactly at the end of its last batch');
    if (batches > 1) assert.ok(buf.length <= segmentBytes, `segment ${base} holds ${buf.length} bytes, over ${segmentBytes}`);
  }
  return bases;
}

matrix('segments roll by size; reads cross them and stay inside one segment each', async (ctx) => {
  const r = ctx.rng();
  const segmentBytes = 8 * 1024;
  const log = ctx.openLog(ctx.dir, { segmentBytes });
  const batches = await appendRandom(ctx, log, r, 150);
  assert.ok(log.segmentCount >= 5, `${log.segmentCount} segments`);
  const bases = assertSegmentFiles(ctx.dir, segmentBytes);
  assert.equal(bases.length, log.segmentCount);
  assert.equal(bases[0], 0);
  for (let o = 0; o < log.hw; o += int(r, 1, 7)) {
    const res = log.read(o, 1e9);
    assert.ok(res);
    const segBase = bases.filter((b) => b <= o).pop()!;
    assert.equal(res.segment.baseOffset, segBase, 'the read comes from the segment holding the offset');
    assert.ok(res.firstOffset <= o && o < res.nextOffset);
    const nextBase = bases.find((b) => b > o);
    assert.equal(res.nextOffset, nextBase ?? log.hw, 'an unbounded read runs to the end of its segment');
  }
  assert.deepEqual(readAll(log), flat(batches));
  assert.deepEqual(readAll(log, 0, 1), flat(batches));
});

matrix('a single batch larger than segmentBytes gets a segment of its own', async (ctx) => {
  const r = ctx.rng();
  const log = ctx.openLog(ctx.dir, { segmentBytes: 2048 });
  const small = await appendRandom(ctx, log, r, 2, { maxRecords: 1 });
  const ts = 1_700_000_010_000;
  const recs = Array.from({ length: 60 }, (_, i) => ({ value: eventValue(r, i, 400), timestamp: ts }));
  const bigBytes = ctx.batch(recs, ts);
  assert.ok(bigBytes.length > 2048, `${bigBytes.length} bytes`);
  const bigBase = log.nextOffset;
  await log.append(bigBytes);
  const big: Appended[] = [{ baseOffset: bigBase, count: 60, bytes: Buffer.from(bigBytes), records: expectedOf(recs, bigBase, ts), maxTimestamp: ts }];
  const after = await appendRandom(ctx, log, r, 1, { maxRecords: 1, ts0: 1_700_000_020_000 });
  assert.deepEqual(segmentBases(ctx.dir), [0, big[0].baseOffset, after[0].baseOffset]);
  assert.deepEqual(readAll(log), flat([...small, ...big, ...after]));
});

matrix('segments roll by age (segmentMs), measured on the server clock from the first append', async (ctx) => {
  let now = 1_700_000_000_000;
  const log = ctx.openLog(ctx.dir, { segmentMs: 1000, clock: () => now });
  const t0 = now;
  const one = (at: number) => {
    now = t0 + at;
    return log.append(ctx.batch([{ value: new TextEncoder().encode(`at ${at}`) }], now));
  };
  await one(0);
  await one(400);
  await one(1000);
  assert.equal(log.segmentCount, 1, 'exactly segmentMs old does not roll');
  await one(1001);
  assert.equal(log.segmentCount, 2, 'older than segmentMs rolls');
  assert.deepEqual(segmentBases(ctx.dir), [0, 3]);
  await one(1500);
  await one(2001);
  assert.equal(log.segmentCount, 2, 'age counts from the first append to the active segment');
  await one(2002);
  assert.deepEqual(segmentBases(ctx.dir), [0, 3, 6]);
  assert.deepEqual(
    readAll(log).map((x) => Buffer.from(x.value!, 'hex').toString()),
    [0, 400, 1000, 1001, 1500, 2001, 2002].map((d) => `at ${d}`),
  );
});

matrix('regression: record timestamps that jump past segmentMs with every batch never roll a segment', async (ctx) => {
  // The attack: each batch dated a day after the last made a segment (three files) per batch.
  const now = 1_700_000_000_000;
  const log = ctx.openLog(ctx.dir, { segmentMs: 1000, clock: () => now });
  for (let i = 0; i < 50; i++) {
    await log.append(ctx.batch([{ value: new TextEncoder().encode(`day ${i}`) }], now + (i % 2 ? 1 : -1) * i * 86_400_000));
  }
  assert.equal(log.segmentCount, 1);
  assert.equal(readAll(log).length, 50);
});

matrix('reopening continues the offsets, the data and the segments where they were', async (ctx) => {
  const r = ctx.rng();
  const opts = { segmentBytes: 8 * 1024 };
  let log = ctx.openLog(ctx.dir, opts, 'epoch-a');
  const batches: Appended[] = await appendRandom(ctx, log, r, 60);
  const hw = log.hw;
  const segments = log.segmentCount;
  await log.close();
  for (let round = 0; round < 3; round++) {
    log = ctx.openLog(ctx.dir, opts, 'epoch-a');
    assert.equal(log.hw, batches.at(-1)!.baseOffset + batches.at(-1)!.count);
    assert.equal(log.nextOffset, log.hw);
    assert.equal(log.startOffset, 0);
    assert.equal(log.epoch, 'epoch-a');
    assert.deepEqual(readAll(log), flat(batches));
    const more = await appendRandom(ctx, log, r, 15, { ts0: 1_700_100_000_000 + round * 10_000 });
    assert.equal(more[0].baseOffset, log.hw - more.reduce((n, b) => n + b.count, 0));
    assert.equal(more[0].baseOffset, batches.at(-1)!.baseOffset + batches.at(-1)!.count, 'no offset skipped or reused');
    batches.push(...more);
    await log.close();
  }
  log = ctx.openLog(ctx.dir, opts, 'epoch-a');
  assert.ok(log.hw > hw && log.segmentCount >= segments);
  assert.deepEqual(readAll(log), flat(batches));
  assertSegmentFiles(ctx.dir, opts.segmentBytes);
});

/** The first record (in offset order) with timestamp >= t, or hw. */
function bruteForTime(records: Expected[], t: number, hw: number): number {
  return records.find((x) => x.timestamp >= t)?.offset ?? hw;
}

matrix('offsetForTime finds the first record with timestamp >= T, or the hw', async (ctx) => {
  const r = ctx.rng();
  const opts = { segmentBytes: 8 * 1024 };
  let log = ctx.openLog(ctx.dir, opts);
  assert.equal(log.offsetForTime(0), 0, 'empty log: the hw');
  // Batches 100 ms apart; inside a batch records are out of order by up to 70 ms.
  const batches = await appendRandom(ctx, log, r, 120);
  const records = flat(batches);
  const probes = new Set<number>([0, records[0].timestamp - 1, Number.MAX_SAFE_INTEGER]);
  for (const rec of records) for (const d of [-1, 0, 1]) probes.add(rec.timestamp + d);
  const check = (): void => {
    for (const t of probes) assert.equal(log.offsetForTime(t), bruteForTime(records, t, log.hw), `offsetForTime(${t})`);
  };
  check();
  await log.close();
  log = ctx.openLog(ctx.dir, opts);
  check();
  assert.equal(log.offsetForTime(records.at(-1)!.timestamp + 1e6), log.hw);
});

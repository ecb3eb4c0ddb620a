/**
 * Restart after damage done behind the log's back (issue 14, defect 9), at the engine:
 * a middle segment deleted is found at open and every read that reaches it says `gap`; a
 * stray empty `…999999.log` or a segment overlapping the one before it is set aside in
 * lost+found/, never deleted, and never moves the hw; a bad CRC or a broken length in an
 * older segment (trusted on its indexes at open) fails the reads that reach it with
 * UNAVAILABLE (CORRUPT_STORED_BATCH), never BAD_REQUEST, never a wrong byte, never a stall.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { verifiedRangesMax } from '../../engine/limits.ts';
import type { PartitionLog } from '../../engine/partition-log.ts';
import { type Appended, type Ctx, appendRandom, assertCode, flat, matrix, readAll, middleBatch, readWithGaps, segPath, segmentBases } from './helpers.ts';

const SEGMENT_BYTES = 8 * 1024;

/** A closed log of at least four segments in `<root>/data/t-0`, as a log manager lays it out. */
async function build(ctx: Ctx): Promise<{ dir: string; batches: Appended[]; bases: number[] }> {
  const dir = path.join(ctx.dir, 't-0');
  const log = ctx.openLog(dir, { segmentBytes: SEGMENT_BYTES });
  const batches: Appended[] = [];
  // Each round of 10 batches goes on in time from the last (100 ms apart), so that record
  // timestamps grow with offsets across rounds too.
  const r = ctx.rng();
  for (let round = 0; segmentBases(dir).length < 5; round++) batches.push(...(await appendRandom(ctx, log, r, 10, { ts0: 1_700_000_000_000 + round * 10 * 100 })));
  await log.close();
  return { dir, batches, bases: segmentBases(dir) };
}


matrix('regression: a deleted middle segment is found at open and read as a gap, never a silent offset jump', async (ctx) => {
  const { dir, batches, bases } = await build(ctx);
  const lost = bases[2];
  const after = bases[3];
  for (const ext of ['log', 'index', 'timeindex'] as const) fs.rmSync(segPath(dir, lost, ext));
  const errors: { obj: object; msg?: string }[] = [];
  const log = ctx.openLog(dir, { segmentBytes: SEGMENT_BYTES, logger: { info() {}, warn() {}, error: (obj, msg) => errors.push({ obj, msg }) } });
  assert.ok(errors.some((e) => (e.obj as { from?: number; to?: number }).from === lost && (e.obj as { to?: number }).to === after), 'the hole is logged at open');
  const hw = batches.at(-1)!.baseOffset + batches.at(-1)!.count;
  assert.equal(log.hw, hw, 'the hw is where it was');
  const all = flat(batches);
  const { records, gaps } = readWithGaps(log);
  assert.deepEqual(gaps, [{ from: lost, to: after }]);
  assert.deepEqual(records, all.filter((x) => x.offset < lost || x.offset >= after), 'everything else is intact');
  // Every offset inside the hole reads as a gap from that offset.
  for (const o of [lost, lost + 1, after - 1]) {
    const r = log.read(o, 1)!;
    assert.deepEqual(r.gap, { from: o, to: after });
  }
  // The last offset before the hole still reads its own batch, with no gap.
  assert.equal(log.read(lost - 1, 1)!.gap, undefined);
  // Appends go on at the hw.
  assert.equal((await log.append(ctx.batch([{ value: null }], Date.now()))).baseOffset, hw);
});

matrix('regression: a stray empty segment named …999999.log does not move the hw; it is set aside in lost+found/', async (ctx) => {
  const { dir, batches } = await build(ctx);
  const stray = 999_999;
  fs.writeFileSync(segPath(dir, stray, 'log'), '');
  const log = ctx.openLog(dir, { segmentBytes: SEGMENT_BYTES });
  const hw = batches.at(-1)!.baseOffset + batches.at(-1)!.count;
  assert.equal(log.hw, hw);
  assert.equal(log.nextOffset, hw);
  assert.ok(!fs.existsSync(segPath(dir, stray, 'log')));
  assert.ok(fs.existsSync(segPath(path.join(ctx.dir, 'lost+found', 't-0'), stray, 'log')), 'kept aside, not deleted');
  assert.deepEqual(readAll(log), flat(batches));
  assert.equal((await log.append(ctx.batch([{ value: null }], Date.now()))).baseOffset, hw, 'offsets go on at the real end');
});

matrix('a segment that overlaps the one before it is set aside; one empty segment at the log end is kept', async (ctx) => {
  const { dir, batches, bases } = await build(ctx);
  // A copy of segment 1 renamed to start inside segment 2.
  const fake = bases[2] - 1;
  fs.copyFileSync(segPath(dir, bases[1], 'log'), segPath(dir, fake, 'log'));
  // And an empty active segment exactly at the end, as a roll leaves it.
  const hw = batches.at(-1)!.baseOffset + batches.at(-1)!.count;
  fs.writeFileSync(segPath(dir, hw, 'log'), '');
  const log = ctx.openLog(dir, { segmentBytes: SEGMENT_BYTES });
  assert.equal(log.hw, hw);
  assert.ok(fs.existsSync(segPath(path.join(ctx.dir, 'lost+found', 't-0'), fake, 'log')));
  assert.deepEqual(readAll(log), flat(batches));
  assert.deepEqual(segmentBases(dir), [...bases, hw], 'the empty segment at the end stays the active one');
});


matrix('regression: a bad CRC in an older segment fails the reads that reach it with UNAVAILABLE (CORRUPT_STORED_BATCH), on read and offsetForTime', async (ctx) => {
  const { dir, batches, bases } = await build(ctx);
  const base = bases[1];
  const bad = middleBatch(dir, base);
  const f = segPath(dir, base, 'log');
  const buf = fs.readFileSync(f);
  buf[bad.position + bad.size - 3] ^= 0x5a; // a record byte: the CRC no longer holds
  fs.writeFileSync(f, buf);
  const errors: object[] = [];
  const log = ctx.openLog(dir, { segmentBytes: SEGMENT_BYTES, logger: { info() {}, warn() {}, error: (obj) => errors.push(obj) } });
  const hw = batches.at(-1)!.baseOffset + batches.at(-1)!.count;
  assert.equal(log.hw, hw, 'an older segment is trusted at open: nothing is cut');
  // Reads before the damage and after it work; a read that would hand out the damaged batch fails.
  assert.ok(log.read(0, 1));
  assert.ok(log.read(bases[2], 1e6));
  assertCode(() => log.read(bad.offset, 1), 'UNAVAILABLE', 'CORRUPT_STORED_BATCH');
  assertCode(() => log.read(base, 1e6), 'UNAVAILABLE', 'CORRUPT_STORED_BATCH');
  assertCode(() => log.read(bad.offset, 1), 'UNAVAILABLE', 'CORRUPT_STORED_BATCH'); // every time, not once
  // Batches are 100 ms apart and their records within 70 ms of each other: every record
  // before the damaged batch is older than its oldest, so the search must pass through it.
  const t = Math.min(...batches.find((b) => b.baseOffset === bad.offset)!.records.map((x) => x.timestamp));
  assertCode(() => log.offsetForTime(t), 'UNAVAILABLE', 'CORRUPT_STORED_BATCH');
  assert.ok(errors.length > 0, 'logged');
});

matrix('a broken length field in an older segment fails the read; it never walks past the file or stalls', async (ctx) => {
  const { dir, bases } = await build(ctx);
  const base = bases[1];
  const bad = middleBatch(dir, base);
  const files = (['log', 'index', 'timeindex'] as const).map((ext) => segPath(dir, base, ext));
  const pristine = files.map((f) => fs.readFileSync(f));
  for (const length of [-12, -1, 0, 2 ** 31 - 1]) {
    const buf = Buffer.from(pristine[0]);
    buf.writeInt32BE(length, bad.position + 8);
    fs.writeFileSync(files[0], buf);
    // Only the log is hurt. When the index entries all lie before the damage, the check at
    // open walks over it and cuts there (older segments: the cut kept aside), and readers get
    // a gap; otherwise the segment is trusted and the read that meets the damage fails.
    const log: PartitionLog = ctx.openLog(dir, { segmentBytes: SEGMENT_BYTES });
    let outcome: string;
    try {
      const r = log.read(bad.offset, 1)!;
      assert.deepEqual(r.gap, { from: bad.offset, to: bases[2] }, `length ${length}: cut at open, read as a gap`);
      outcome = 'gap';
    } catch (err) {
      const e = err as { code?: string; reason?: string };
      assert.deepEqual([e.code, e.reason], ['UNAVAILABLE', 'CORRUPT_STORED_BATCH'], `length ${length}: ${String(err)}`);
      assertCode(() => log.read(base, 1e6), 'UNAVAILABLE', 'CORRUPT_STORED_BATCH');
      outcome = 'refused';
    }
    ctx.t.diagnostic(`length ${length}: ${outcome}`);
    await log.close();
    fs.rmSync(path.join(ctx.dir, 'lost+found'), { recursive: true, force: true });
    // The read rebuilt the indexes up to the damage: put everything back for the next round.
    files.forEach((f, i) => fs.writeFileSync(f, pristine[i]));
  }
});

matrix('an older segment found damaged at open (its indexes gone) is cut at the damage, the cut kept in lost+found/, and read with a gap', async (ctx) => {
  const { dir, batches, bases } = await build(ctx);
  const base = bases[1];
  const bad = middleBatch(dir, base);
  const f = segPath(dir, base, 'log');
  const buf = fs.readFileSync(f);
  buf[bad.position + bad.size - 3] ^= 0x5a;
  fs.writeFileSync(f, buf);
  // An index entry past the end of the log: not sane, so the segment is walked whole.
  const index = Buffer.alloc(8);
  index.writeUInt32BE(1, 0);
  index.writeUInt32BE(buf.length + 100, 4);
  fs.writeFileSync(segPath(dir, base, 'index'), index);
  const log = ctx.openLog(dir, { segmentBytes: SEGMENT_BYTES });
  const kept = path.join(ctx.dir, 'lost+found', 't-0', `${path.basename(f)}.cut-at-${bad.position}`);
  assert.equal(Buffer.compare(fs.readFileSync(kept), buf.subarray(bad.position)), 0, 'the bytes cut are kept, exactly');
  const { records, gaps } = readWithGaps(log);
  assert.deepEqual(gaps, [{ from: bad.offset, to: bases[2] }]);
  assert.deepEqual(records, flat(batches).filter((x) => x.offset < bad.offset || x.offset >= bases[2]));
});

matrix('batches are checked once when first read; the checked ranges a segment remembers stay under verifiedRangesMax', async (ctx) => {
  const dir = path.join(ctx.dir, 'small-0');
  let log = ctx.openLog(dir, { segmentBytes: 64 * 1024 });
  for (let i = 0; i < 400; i++) await log.append(ctx.batch([{ value: new TextEncoder().encode(`small batch ${i} ${'x'.repeat(i % 40)}`) }], 1_700_000_000_000 + i));
  log.roll();
  await log.append(ctx.batch([{ value: null }], 1_700_000_000_000));
  await log.close();
  log = ctx.openLog(dir, { segmentBytes: 64 * 1024 });
  // An older segment trusted at open: nothing of it is known checked yet.
  const seg = log.read(0, 1)!.segment;
  assert.equal(seg.verified.count, 1, 'only the batch just read');
  const first = Array.from({ length: 400 }, (_, i) => ({ baseOffset: i }));
  // Reading every other batch alone leaves disjoint checked ranges...
  for (let i = 0; i < first.length; i += 2) log.read(first[i].baseOffset, 1);
  assert.ok(seg.verified.count >= 2, 'several disjoint ranges');
  assert.ok(seg.verified.count <= verifiedRangesMax);
  // ...which a sequential read merges into one.
  readAll(log);
  assert.deepEqual(seg.verified.count, 1);
  // Past the bound a segment forgets the older ranges rather than grow (they are checked again when read).
  seg.verified.clear();
  for (let i = 0; i < 3 * verifiedRangesMax; i++) seg.verified.mark(i * 10, i * 10 + 5);
  assert.ok(seg.verified.count <= verifiedRangesMax, `${seg.verified.count} ranges remembered`);
});

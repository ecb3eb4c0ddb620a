/**
 * The engine as a cluster node's mirror: batches stored at the offsets they carry
 * (`appendStamped`), and the two ways a mirror is brought back in line with its source —
 * started again empty at an offset (`resetTo`) or cut back (`truncateTo`) — each keeping
 * views and descriptors handed out before valid, and surviving a reopen.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { setBaseOffset } from '../../engine/codec/record-batch.ts';
import { appendRandom, assertRejectsCode, expectedOf, flat, matrix, randomRecords, readAll, segmentBases } from './helpers.ts';

/** A batch of `n` records stamped at `base`, as a source of truth would hand it over. */
function stamped(ctx: { batch: (r: ReturnType<typeof randomRecords>, ts?: number) => Uint8Array }, r: () => number, base: number, n: number) {
  const recs = randomRecords(r, n, 1_700_000_000_000 + base);
  const bytes = ctx.batch(recs, 1_700_000_000_000 + base);
  setBaseOffset(bytes, 0, base);
  return { bytes, records: expectedOf(recs, base, 1_700_000_000_000 + base) };
}

matrix('appendStamped stores a batch at its own offsets, byte for byte, and refuses a gap or an overlap', async (ctx) => {
  const r = ctx.rng();
  const log = ctx.openLog();
  const seen: number[] = [];
  log.onCommit((_b, first) => seen.push(first));
  const a = stamped(ctx, r, 0, 5);
  const b = stamped(ctx, r, 5, 3);
  const copyB = Buffer.from(b.bytes);
  assert.deepEqual(await log.appendStamped(a.bytes), { baseOffset: 0, lastOffset: 4, recordCount: 5 });
  assert.deepEqual(await log.appendStamped(b.bytes), { baseOffset: 5, lastOffset: 7, recordCount: 3 });
  assert.equal(log.hw, 8, 'visible once the append resolved');
  assert.deepEqual(seen, [0, 5], 'commit listeners told in order');
  assert.deepEqual(Buffer.from(log.read(5, 1 << 20)!.bytes), copyB, 'stored as it came');
  await assertRejectsCode(log.appendStamped(stamped(ctx, r, 9, 2).bytes), 'BAD_REQUEST', 'OFFSET_GAP');
  await assertRejectsCode(log.appendStamped(stamped(ctx, r, 7, 2).bytes), 'BAD_REQUEST', 'OFFSET_GAP');
  assert.equal(log.nextOffset, 8, 'a refused batch writes nothing');
  assert.deepEqual(readAll(log), [...a.records, ...b.records]);
});

matrix('resetTo empties the log and starts it at an offset; old views stay readable; a reopen keeps the new start', async (ctx) => {
  const r = ctx.rng();
  const dir = `${ctx.dir}/p`;
  const log = ctx.openLog(dir, { segmentBytes: 64 * 1024 });
  const batches = await appendRandom(ctx, log, r, 40, { maxRecords: 30 });
  assert.ok(log.segmentCount > 1, 'several segments to delete');
  const held = log.read(0, 1 << 20)!;
  const heldCopy = Buffer.from(held.bytes);
  log.resetTo(10_000);
  assert.equal(log.startOffset, 10_000);
  assert.equal(log.hw, 10_000);
  assert.deepEqual(segmentBases(dir), [10_000]);
  assert.deepEqual(Buffer.from(held.bytes), heldCopy, 'a view handed out before is still whole');
  assert.throws(() => log.read(0, 1024), { code: 'OFFSET_OUT_OF_RANGE' });
  const next = stamped(ctx, r, 10_000, 4);
  await log.appendStamped(next.bytes);
  assert.deepEqual(readAll(log), next.records);
  await log.close();
  const again = ctx.openLog(dir);
  assert.equal(again.startOffset, 10_000);
  assert.equal(again.hw, 10_004);
  assert.deepEqual(readAll(again), next.records);
  assert.ok(batches.length > 0);
});

matrix('truncateTo cuts at the batch boundary at or below the offset, by a copy renamed over the file', async (ctx) => {
  const r = ctx.rng();
  const dir = `${ctx.dir}/p`;
  const log = ctx.openLog(dir, { segmentBytes: 16 * 1024 });
  const batches = await appendRandom(ctx, log, r, 60, { maxRecords: 30 });
  assert.ok(log.segmentCount >= 3);
  const bases = segmentBases(dir);
  // A cut inside a batch of a middle segment, so that a later segment goes whole.
  const target = batches.find((b) => b.baseOffset > bases[1] && b.count > 1 && b.baseOffset < bases[bases.length - 1])!;
  const cutAt = target.baseOffset + 1;
  const fdBefore = fs.openSync(`${dir}/${String(bases[1]).padStart(20, '0')}.log`, 'r');
  const sizeBefore = fs.fstatSync(fdBefore).size;
  const viewBefore = log.read(target.baseOffset, 1 << 20)!;
  const viewCopy = Buffer.from(viewBefore.bytes);
  const end = log.truncateTo(cutAt);
  assert.equal(end, target.baseOffset, 'cut before the batch holding the offset');
  assert.equal(log.hw, end);
  assert.equal(log.nextOffset, end);
  assert.equal(fs.fstatSync(fdBefore).size, sizeBefore, 'a descriptor of the old file still sees it whole');
  fs.closeSync(fdBefore);
  assert.deepEqual(Buffer.from(viewBefore.bytes), viewCopy, 'a view of the old mapping is still whole');
  const kept = flat(batches).filter((x) => x.offset < end);
  assert.deepEqual(readAll(log), kept);
  assert.ok(segmentBases(dir).every((b) => b < end || b === end), 'segments above the cut are gone');
  // Appending goes on from the cut, and a reopen finds the same log.
  const more = stamped(ctx, r, end, 7);
  await log.appendStamped(more.bytes);
  assert.deepEqual(readAll(log), [...kept, ...more.records]);
  await log.close();
  const again = ctx.openLog(dir, { segmentBytes: 16 * 1024 });
  assert.deepEqual(readAll(again), [...kept, ...more.records]);
  assert.deepEqual(
    fs.readdirSync(dir).filter((n) => n.endsWith('.cut')),
    [],
    'no temp file left behind',
  );
});

matrix('truncateTo at or below the start resets; at or above the end does nothing', async (ctx) => {
  const r = ctx.rng();
  const log = ctx.openLog();
  await appendRandom(ctx, log, r, 10);
  const end = log.nextOffset;
  assert.equal(log.truncateTo(end + 5), end);
  assert.equal(log.truncateTo(end), end);
  assert.equal(log.truncateTo(0), 0);
  assert.equal(log.hw, 0);
  assert.deepEqual(readAll(log), []);
});

matrix('createTopic with given epochs and creation time keeps them, also across a reopen', async (ctx) => {
  const mgr = await ctx.openManager();
  const epochs = ['00112233445566aa', '00112233445566bb'];
  const info = await mgr.createTopic('given', { partitions: 2, retentionMs: 1000, retentionBytes: -1 }, { epochs, createdAt: 1234 });
  assert.deepEqual(
    info.partitions.map((p) => p.epoch),
    epochs,
  );
  assert.equal(info.createdAt, 1234);
  await assert.rejects(mgr.createTopic('bad', { partitions: 3 }, { epochs, createdAt: 1 }), { code: 'BAD_REQUEST', reason: 'BAD_PARTITIONS' });
  await mgr.close();
  const again = await ctx.openManager();
  assert.deepEqual(
    again.describe('given').partitions.map((p) => p.epoch),
    epochs,
  );
  assert.equal(again.describe('given').retentionMs, 1000);
});

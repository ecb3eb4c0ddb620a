/**
 * Appending and reading one partition: dense offsets from 0, reads that start at the batch
 * holding the offset asked for and stop at whole batches, the bounds of the readable range,
 * commit listeners, and the flush policy deciding when the high watermark moves.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { readBatchHeader } from '../../engine/codec/record-batch.ts';
import { batchBytesMax } from '../../engine/limits.ts';
import {
  type Appended,
  FLUSH_MS,
  appendRandom,
  assertCode,
  assertRejectsCode,
  expectedOf,
  flat,
  matrix,
  randomRecords,
  readAll,
  segmentBases,
} from './helpers.ts';

/** The batches a read returned, as [baseOffset, size] pairs. */
function batchesIn(bytes: Uint8Array): { baseOffset: number; size: number; next: number }[] {
  const out = [];
  for (let pos = 0; pos < bytes.length; ) {
    const h = readBatchHeader(bytes, pos);
    assert.ok(h.size >= 61 && pos + h.size <= bytes.length, 'a read returns whole batches only');
    out.push({ baseOffset: h.baseOffset, size: h.size, next: h.baseOffset + h.recordCount });
    pos += h.size;
  }
  return out;
}

function holding(batches: Appended[], offset: number): number {
  return batches.findIndex((b) => b.baseOffset <= offset && offset < b.baseOffset + b.count);
}

matrix('offsets are dense from 0 and a read from every offset starts at the batch holding it', async (ctx) => {
  const r = ctx.rng();
  const log = ctx.openLog();
  assert.equal(log.hw, 0);
  assert.equal(log.startOffset, 0);
  const batches = await appendRandom(ctx, log, r, 60);
  let expect = 0;
  for (const b of batches) {
    assert.equal(b.baseOffset, expect, 'each batch starts where the last one ended');
    expect += b.count;
  }
  assert.equal(log.hw, expect);
  assert.equal(log.nextOffset, expect);
  for (let o = 0; o < log.hw; o++) {
    const i = holding(batches, o);
    // maxBytes 1: still one whole batch, exactly the one appended (baseOffset assigned).
    const one = log.read(o, 1);
    assert.ok(one);
    assert.equal(one.firstOffset, batches[i].baseOffset);
    assert.equal(one.nextOffset, batches[i].baseOffset + batches[i].count);
    assert.equal(Buffer.compare(one.bytes, batches[i].bytes), 0, `bytes read at ${o} are the batch appended`);
    // Unbounded: everything from that batch to the end, in order.
    const all = log.read(o, Number.MAX_SAFE_INTEGER);
    assert.ok(all);
    assert.deepEqual(
      batchesIn(all.bytes).map((b) => b.baseOffset),
      batches.slice(i).map((b) => b.baseOffset),
    );
    assert.equal(all.nextOffset, log.hw);
  }
  assert.deepEqual(readAll(log), flat(batches), 'decoded records are what was appended');
  assert.deepEqual(readAll(log, 0, 1), flat(batches), 'also when read one batch at a time');
});

matrix('maxBytes bounds a read to whole batches, at least one', async (ctx) => {
  const r = ctx.rng();
  const log = ctx.openLog();
  const batches = await appendRandom(ctx, log, r, 40);
  const sizes = batches.map((b) => b.bytes.length);
  for (const maxBytes of [0, 1, 60, sizes[0] - 1, sizes[0], sizes[0] + 1, sizes[0] + sizes[1], 5000, 20_000, 1e9]) {
    for (const from of [0, batches[3].baseOffset, batches[3].baseOffset + batches[3].count - 1, log.hw - 1]) {
      const res = log.read(from, maxBytes);
      assert.ok(res);
      const got = batchesIn(res.bytes);
      const i = holding(batches, from);
      assert.ok(got.length >= 1);
      assert.deepEqual(
        got.map((g) => g.baseOffset),
        batches.slice(i, i + got.length).map((b) => b.baseOffset),
      );
      if (got.length > 1) assert.ok(res.bytes.length <= maxBytes, `${res.bytes.length} bytes for maxBytes ${maxBytes}`);
      // Not cut short: the next batch would not have fitted (or there is none).
      const next = batches[i + got.length];
      if (next) assert.ok(res.bytes.length + next.bytes.length > maxBytes, 'the read stopped only where the next batch would not fit');
      assert.equal(res.nextOffset, got[got.length - 1].next);
    }
  }
});

matrix('reading at the hw gives null; above it or below the start is OFFSET_OUT_OF_RANGE', async (ctx) => {
  const r = ctx.rng();
  const log = ctx.openLog();
  assert.equal(log.read(0, 1000), null, 'an empty log reads null at 0');
  assertCode(() => log.read(1, 1000), 'OFFSET_OUT_OF_RANGE');
  await appendRandom(ctx, log, r, 5);
  assert.equal(log.read(log.hw, 1000), null);
  for (const bad of [log.hw + 1, log.hw + 1000, -1, -1000, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assertCode(() => log.read(bad, 1000), 'OFFSET_OUT_OF_RANGE');
  }
});

matrix('commit listeners see every batch once, in offset order, with the stored bytes', async (ctx) => {
  const r = ctx.rng();
  const log = ctx.openLog();
  const seen: { first: number; next: number; bytes: Buffer }[] = [];
  const stop = log.onCommit((bytes, first, next) => {
    assert.equal(log.hw, next, 'the hw already covers the batch a listener is told about');
    seen.push({ first, next, bytes: Buffer.from(bytes) });
  });
  const calls: number[] = [];
  const stop2 = log.onCommit((_b, first) => calls.push(first));
  // Many in flight at once: under `always` they share fsyncs and commit in runs.
  const batches = await appendRandom(ctx, log, r, 120, { inFlight: 40 });
  assert.equal(seen.length, batches.length, 'once per batch');
  for (let i = 0; i < batches.length; i++) {
    assert.equal(seen[i].first, batches[i].baseOffset);
    assert.equal(seen[i].next, batches[i].baseOffset + batches[i].count);
    assert.equal(Buffer.compare(seen[i].bytes, batches[i].bytes), 0);
  }
  assert.deepEqual(calls, batches.map((b) => b.baseOffset), 'every listener, in order');
  stop();
  stop2();
  await appendRandom(ctx, log, r, 3);
  assert.equal(seen.length, batches.length, 'a stopped listener hears nothing more');
  assert.equal(calls.length, batches.length);
});

matrix('a listener that throws does not stop the others or the append', async (ctx) => {
  const log = ctx.openLog();
  const got: number[] = [];
  log.onCommit(() => {
    throw new Error('listener bug');
  });
  log.onCommit((_b, first) => got.push(first));
  const res = await log.append(ctx.batch([{ value: new Uint8Array([1]) }], 1000));
  assert.equal(res.baseOffset, 0);
  assert.deepEqual(got, [0]);
  assert.equal(log.hw, 1);
});

matrix('under flush=always the hw moves only once the append is fsynced', async (ctx) => {
  const r = ctx.rng();
  const log = ctx.openLog();
  await appendRandom(ctx, log, r, 3);
  const before = log.hw;
  const recs = randomRecords(r, 5, 1_700_000_100_000);
  const p = log.append(ctx.batch(recs, 1_700_000_100_000));
  assert.equal(log.nextOffset, before + 5, 'offsets are assigned at once');
  if (ctx.flush === 'always') {
    assert.equal(log.hw, before, 'not visible before the fsync');
    assert.equal(log.read(before, 1e6), null, 'reading at the old hw still finds nothing');
    assertCode(() => log.read(before + 1, 1e6), 'OFFSET_OUT_OF_RANGE');
    assert.equal(log.offsetForTime(1_700_000_100_000), before, 'offsetForTime does not see it either');
  } else {
    assert.equal(log.hw, before + 5, 'visible as soon as it is written');
  }
  const res = await p;
  assert.equal(res.baseOffset, before);
  assert.equal(log.hw, before + 5);
  const got = log.read(before, 1e6);
  assert.ok(got);
  assert.equal(got.firstOffset, before);
});

matrix('concurrent appends get offsets in call order', async (ctx) => {
  const log = ctx.openLog();
  const ps = [];
  for (let i = 0; i < 200; i++) ps.push(log.append(ctx.batch([{ value: new TextEncoder().encode(`v${i}`) }, { value: null }], 1000 + i)));
  const res = await Promise.all(ps);
  assert.deepEqual(
    res.map((x) => x.baseOffset),
    Array.from({ length: 200 }, (_, i) => i * 2),
  );
  assert.equal(log.hw, 400);
  const all = readAll(log);
  assert.equal(all.length, 400);
  assert.equal(Buffer.from(all[398].value!, 'hex').toString(), 'v199');
});

matrix('a bad batch is refused and stores nothing', async (ctx) => {
  const log = ctx.openLog();
  await log.append(ctx.batch([{ value: new Uint8Array([7]) }], 1000));
  const good = ctx.batch([{ value: new TextEncoder().encode('hello') }], 2000);
  const sizeBefore = log.bytes;
  const flipped = Uint8Array.from(good);
  flipped[flipped.length - 1] ^= 1;
  await assertRejectsCode(log.append(flipped), 'BAD_REQUEST', 'CRC_MISMATCH');
  const trailing = new Uint8Array(good.length + 3);
  trailing.set(good);
  await assertRejectsCode(log.append(trailing), 'BAD_REQUEST', 'TRAILING_BYTES');
  await assertRejectsCode(log.append(good.subarray(0, 40)), 'BAD_REQUEST', 'TRUNCATED');
  const badMagic = Uint8Array.from(good);
  badMagic[16] = 1;
  await assertRejectsCode(log.append(badMagic), 'BAD_REQUEST', 'BAD_MAGIC');
  await assertRejectsCode(log.append(new Uint8Array(batchBytesMax + 1)), 'TOO_LARGE');
  assert.equal(log.hw, 1);
  assert.equal(log.nextOffset, 1);
  assert.equal(log.bytes, sizeBefore);
  const res = await log.append(good);
  assert.equal(res.baseOffset, 1, 'the next good batch takes the next offset');
  assert.equal(readAll(log).length, 2);
});

matrix('appending to a closed log is UNAVAILABLE', async (ctx) => {
  const log = ctx.openLog();
  await log.append(ctx.batch([{ value: null }], 1000));
  await log.close();
  await assertRejectsCode(log.append(ctx.batch([{ value: null }], 1000)), 'UNAVAILABLE', 'CLOSED');
});

matrix('regression: reading a closed log is UNAVAILABLE, not an uncoded mmap error', async (ctx) => {
  // read() and offsetForTime() on a closed log mapped a closed fd and threw a bare
  // "mmap failed, 9" with no code; enforceRetention() would roll a new segment file.
  const log = ctx.openLog(ctx.dir, { retentionMs: 1 });
  await log.append(ctx.batch([{ value: null }], 1000));
  await log.close();
  assertCode(() => log.read(0, 1000), 'UNAVAILABLE', 'CLOSED');
  assertCode(() => log.offsetForTime(0), 'UNAVAILABLE', 'CLOSED');
  assert.equal(log.enforceRetention(Date.now()), 0);
  assert.deepEqual(segmentBases(ctx.dir), [0], 'retention on a closed log created or deleted nothing');
});

/** Records the fds fdatasync'ed while it is installed (segments sync through fs.fdatasync). */
function spyOnFdatasync(ctx: { defer(fn: () => unknown): void }): number[] {
  const synced: number[] = [];
  const original = fs.fdatasync;
  const spy = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    synced.push(fd);
    return original(fd, cb);
  }) as typeof fs.fdatasync;
  fs.fdatasync = spy;
  ctx.defer(() => {
    fs.fdatasync = original;
  });
  return synced;
}

matrix('the flush policy fsyncs: always before the ack (sharing syncs), interval within flushMs', async (ctx) => {
  const log = ctx.openLog();
  await log.append(ctx.batch([{ value: null }], 1000));
  const fd = log.read(0, 1)!.segment.logFd;
  await new Promise((res) => setTimeout(res, FLUSH_MS * 3));
  const synced = spyOnFdatasync(ctx);
  const ps = [];
  for (let i = 0; i < 50; i++) ps.push(log.append(ctx.batch([{ value: new Uint8Array([i]) }], 2000 + i)));
  if (ctx.flush === 'always') {
    await Promise.all(ps);
    assert.ok(synced.includes(fd), 'acked after an fdatasync of the segment');
    assert.ok(synced.length <= 3, `50 concurrent appends shared ${synced.length} fsyncs`);
  } else {
    await Promise.all(ps);
    assert.equal(synced.length, 0, 'interval: the ack does not wait for a sync');
    for (let i = 0; i < 50 && synced.length === 0; i++) await new Promise((res) => setTimeout(res, FLUSH_MS));
    assert.ok(synced.includes(fd), 'interval: the timer syncs the written segment');
    const n = synced.length;
    await new Promise((res) => setTimeout(res, FLUSH_MS * 3));
    assert.equal(synced.length, n, 'interval: nothing to sync when nothing was written');
  }
});

matrix('close waits for appends in flight, and they are all there after a reopen', async (ctx) => {
  let log = ctx.openLog();
  const ps = [];
  for (let i = 0; i < 30; i++) ps.push(log.append(ctx.batch([{ value: new Uint8Array([i]) }], 1000 + i)));
  await log.close();
  const res = await Promise.all(ps);
  assert.deepEqual(
    res.map((r) => r.baseOffset),
    Array.from({ length: 30 }, (_, i) => i),
  );
  log = ctx.openLog();
  assert.equal(log.hw, 30);
  assert.deepEqual(
    readAll(log).map((x) => x.value),
    Array.from({ length: 30 }, (_, i) => Buffer.from([i]).toString('hex')),
  );
});

matrix('a read view stays valid after retention deletes its segment', async (ctx) => {
  const r = ctx.rng();
  const log = ctx.openLog(ctx.dir, { segmentBytes: 4096 });
  const batches = await appendRandom(ctx, log, r, 40);
  const view = log.read(0, 1e9)!;
  const copy = Buffer.from(view.bytes);
  log.retentionBytes = 0;
  assert.ok(log.enforceRetention() > 0);
  assert.ok(!fs.existsSync(view.segment.logPath), 'the file is gone');
  assert.equal(Buffer.compare(view.bytes, copy), 0, 'the bytes a reader holds are still readable and unchanged');
  assert.equal(Buffer.compare(view.bytes.subarray(0, batches[0].bytes.length), batches[0].bytes), 0);
});

matrix('batches encoded back to back neither share nor leak bytes', async (ctx) => {
  // encodeRecordBatch reuses its working buffers between calls: a batch it returned must
  // not change when the next one is encoded, and a small batch after a large one must not
  // carry any of the large one's bytes.
  const r = ctx.rng();
  const log = ctx.openLog();
  const big = randomRecords(r, 500, 1000);
  const small = randomRecords(r, 3, 2000);
  const b1 = ctx.batch(big, 1000);
  const copy1 = Buffer.from(b1);
  const b2 = ctx.batch(small, 2000);
  const b3 = ctx.batch(big.slice(0, 7), 3000);
  assert.equal(Buffer.compare(b1, copy1), 0, 'an earlier batch is unchanged');
  assert.notEqual(b1.buffer, b2.buffer);
  assert.ok(b2.buffer.byteLength === b2.byteLength, 'a batch owns exactly its bytes');
  for (const b of [b1, b2, b3]) await log.append(b);
  assert.deepEqual(readAll(log), [...expectedOf(big, 0, 1000), ...expectedOf(small, 500, 2000), ...expectedOf(big.slice(0, 7), 503, 3000)]);
});

/**
 * A thread that maps the segment files itself (engine/thread-log.ts, partition-reader.ts)
 * reads with the log thread's guarantees after damage done behind the log's back (issue 14):
 * a middle segment deleted reads as the same `gap`; a bad CRC or a broken length in an older
 * segment (trusted on its indexes at open) fails the reads that reach it with UNAVAILABLE
 * (CORRUPT_STORED_BATCH), logged, never a wrong byte or a stall; a segment file replaced
 * under its name by a shorter one before the thread mapped it is never mapped (its pages
 * past the end would be SIGBUS): the thread reads it as gone.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { OffsetOutOfRangeError } from '../../engine/errors.ts';
import { LogHost } from '../../engine/log-host.ts';
import type { LogPartition } from '../../engine/log.ts';
import type { Logger } from '../../engine/logger.ts';
import { ThreadLog } from '../../engine/thread-log.ts';
import { type Appended, type Ctx, appendRandom, assertCode, flat, matrix, middleBatch, readWithGaps, segPath, segmentBases } from './helpers.ts';

const SEGMENT_BYTES = 8 * 1024;

interface Setup {
  /** The partition as the log thread reads it. */
  hp: LogPartition;
  /** The same partition as another thread reads it, from its own mappings. */
  tp: LogPartition;
  batches: Appended[];
  bases: number[];
  /** What the thread's side logged as errors. */
  threadErrors: object[];
}

/** Builds topic `t` of at least five segments, closes it, lets `damage` hurt its files, opens it again and serves it to a "thread". */
async function damaged(ctx: Ctx, damage: (dir: string, bases: number[]) => void): Promise<Setup> {
  const first = await ctx.openManager({ segmentBytes: SEGMENT_BYTES });
  await first.createTopic('t', { partitions: 1 });
  const dir = path.join(ctx.dir, 't-0');
  const batches: Appended[] = [];
  const r = ctx.rng();
  // Rounds go on in time (100 ms apart), so record timestamps grow with offsets.
  for (let round = 0; segmentBases(dir).length < 5; round++) batches.push(...(await appendRandom(ctx, first.partition('t', 0), r, 10, { ts0: 1_700_000_000_000 + round * 10 * 100 })));
  await first.close();
  const bases = segmentBases(dir);
  damage(dir, bases);
  const quiet: Logger = { info() {}, warn() {}, error() {} };
  const mgr = await ctx.openManager({ segmentBytes: SEGMENT_BYTES, logger: quiet });
  const host = new LogHost(mgr, { startCheckMs: 20 });
  const { port1, port2 } = new MessageChannel();
  host.attach(port1);
  const threadErrors: object[] = [];
  const thread = await ThreadLog.connect(port2, { ...quiet, error: (obj) => threadErrors.push(obj) });
  ctx.defer(() => {
    port1.close();
    port2.close();
  });
  ctx.defer(() => host.close());
  ctx.defer(() => thread.close());
  return { hp: mgr.partition('t', 0), tp: thread.partition('t', 0), batches, bases, threadErrors };
}



matrix('a deleted middle segment reads on a thread as the same gap as on the log thread', async (ctx) => {
  let lost = -1;
  let after = -1;
  const { hp, tp, batches } = await damaged(ctx, (dir, bases) => {
    lost = bases[2];
    after = bases[3];
    for (const ext of ['log', 'index', 'timeindex'] as const) fs.rmSync(segPath(dir, lost, ext));
  });
  const mine = readWithGaps(tp);
  assert.deepEqual(mine.gaps, [{ from: lost, to: after }]);
  assert.deepEqual(mine, readWithGaps(hp));
  assert.deepEqual(mine.records, flat(batches).filter((x) => x.offset < lost || x.offset >= after));
  for (const o of [lost, lost + 1, after - 1]) assert.deepEqual(tp.read(o, 1)!.gap, { from: o, to: after });
  assert.equal(tp.read(lost - 1, 1)!.gap, undefined);
});

matrix('a bad CRC in an older segment fails the reads that reach it on a thread too: UNAVAILABLE (CORRUPT_STORED_BATCH), logged', async (ctx) => {
  let bad = { position: 0, offset: 0, size: 0 };
  let base = -1;
  const { hp, tp, batches, bases, threadErrors } = await damaged(ctx, (dir, b) => {
    base = b[1];
    bad = middleBatch(dir, base);
    const f = segPath(dir, base, 'log');
    const buf = fs.readFileSync(f);
    buf[bad.position + bad.size - 3] ^= 0x5a; // a record byte: the CRC no longer holds
    fs.writeFileSync(f, buf);
  });
  assert.equal(tp.hw, hp.hw);
  assert.ok(tp.read(0, 1));
  assert.ok(tp.read(bases[2], 1e6));
  for (let i = 0; i < 2; i++) {
    // Every time, not once; and whatever the log thread has checked meanwhile.
    assertCode(() => tp.read(bad.offset, 1), 'UNAVAILABLE', 'CORRUPT_STORED_BATCH');
    assertCode(() => tp.read(base, 1e6), 'UNAVAILABLE', 'CORRUPT_STORED_BATCH');
    assertCode(() => hp.read(bad.offset, 1), 'UNAVAILABLE', 'CORRUPT_STORED_BATCH');
  }
  const t = Math.min(...batches.find((b) => b.baseOffset === bad.offset)!.records.map((x) => x.timestamp));
  assertCode(() => tp.offsetForTime(t), 'UNAVAILABLE', 'CORRUPT_STORED_BATCH');
  assert.ok(threadErrors.some((e) => (e as { reason?: string }).reason !== undefined), 'logged on the thread');
});

matrix('a broken length field in an older segment: the thread fails the read, or reads the gap, exactly as the log thread does; it never walks past the file or stalls', async (ctx) => {
  for (const length of [-12, -1, 0, 2 ** 31 - 1]) {
    let bad = { position: 0, offset: 0, size: 0 };
    const round = { ...ctx, dir: path.join(ctx.dir, `len${length}`) } as Ctx;
    round.openManager = (o = {}) => ctx.openManager({ dataDir: round.dir, ...o });
    const { hp, tp } = await damaged(round, (dir, bases) => {
      bad = middleBatch(dir, bases[1]);
      const f = segPath(dir, bases[1], 'log');
      const buf = fs.readFileSync(f);
      buf.writeInt32BE(length, bad.position + 8);
      fs.writeFileSync(f, buf);
    });
    const outcome = (p: LogPartition): unknown => {
      try {
        return { gap: p.read(bad.offset, 1)?.gap };
      } catch (err) {
        const e = err as { code?: string; reason?: string };
        return { code: e.code, reason: e.reason };
      }
    };
    const theirs = outcome(hp);
    assert.deepEqual(outcome(tp), theirs, `length ${length}`);
    ctx.t.diagnostic(`length ${length}: ${JSON.stringify(theirs)}`);
  }
});

matrix('a segment file replaced under its name by a shorter one before the thread mapped it is read as gone, never mapped past its end', async (ctx) => {
  let base = -1;
  let next = -1;
  const { hp, tp, bases } = await damaged(ctx, () => {});
  base = bases[1];
  next = bases[2];
  // As a mirror cut back does: a new, shorter file renamed over the old one.
  const f = segPath(path.join(ctx.dir, 't-0'), base, 'log');
  const tmp = `${f}.cut`;
  fs.writeFileSync(tmp, fs.readFileSync(f).subarray(0, 100));
  fs.renameSync(tmp, f);
  assert.throws(() => tp.read(base, 1e6), OffsetOutOfRangeError, 'gone: below the start from now on');
  assert.equal(tp.startOffset, next, 'the start moved past it');
  assert.ok(tp.read(next, 1e6), 'what follows still reads');
  assert.ok(hp.read(next, 1e6));
});

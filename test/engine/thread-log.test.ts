/**
 * The log shared with other threads (log-host.ts, thread-log.ts, partition-reader.ts), over
 * a MessageChannel in one thread (the gateway suites run it across real worker threads):
 * under every codec × flush permutation, what a thread reads from the segment files it maps
 * itself is what the log thread wrote — the same bytes, offsets and batches, across
 * segment rolls — whoever appended it; appends are answered after their commit is known
 * there; topics created and deleted on either side are seen on both; retention moves the
 * start there too; offsetForTime agrees; a segment gone before a thread mapped it, or an
 * event it cannot apply, does not stop it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { decodeBatches } from '../../engine/codec/index.ts';
import { LogHost } from '../../engine/log-host.ts';
import type { LogManager } from '../../engine/log-manager.ts';
import type { Log, LogPartition } from '../../engine/log.ts';
import { OffsetOutOfRangeError } from '../../engine/errors.ts';
import { ThreadLog } from '../../engine/thread-log.ts';
import { EVENT_CREATED } from '../../engine/thread-messages.ts';
import { type Ctx, eventValue, matrix } from './helpers.ts';
import { until as waitUntil } from '../helpers/until.ts';

/** A log served to a "thread" over a MessageChannel; `mgr` is the log as the log thread's fronts see it. */
async function shared(ctx: Ctx, opts: Parameters<Ctx['openManager']>[0] = {}): Promise<{ mgr: LogManager; log: Log; thread: ThreadLog; host: LogHost }> {
  const mgr = await ctx.openManager(opts);
  const host = new LogHost(mgr, { startCheckMs: 20 });
  const { port1, port2 } = new MessageChannel();
  host.attach(port1);
  const thread = await ThreadLog.connect(port2);
  ctx.defer(() => {
    port1.close();
    port2.close();
  });
  ctx.defer(() => host.close());
  ctx.defer(() => thread.close());
  return { mgr, log: host.log, thread, host };
}

/** Every record from `from` to the hw, read in reads of `chunk` bytes. */
function readAll(p: LogPartition, from: number, chunk = 4096): { offsets: number[]; values: string[] } {
  const offsets: number[] = [];
  const values: string[] = [];
  let next = from;
  for (let guard = 0; guard < 100_000; guard++) {
    const r = p.read(next, chunk);
    if (r === null) break;
    for (const rec of decodeBatches(r.bytes, next)) {
      offsets.push(rec.offset);
      values.push(Buffer.from(rec.value ?? []).toString());
    }
    next = r.nextOffset;
  }
  return { offsets, values };
}

/** Waits at most 5 s. */
const until = (what: string, pred: () => boolean): Promise<void> => waitUntil(pred, what, 5000);

matrix('a thread reads what the log thread wrote, across segment rolls, from its own mapping', async (ctx) => {
  const { log, thread } = await shared(ctx, { segmentBytes: 64 * 1024 });
  await log.createTopic('t', { partitions: 2 });
  const r = ctx.rng();
  const host0 = log.partition('t', 0);
  for (let i = 0; i < 100; i++) await host0.append(ctx.batch(Array.from({ length: 5 }, (_, k) => ({ value: eventValue(r, i * 5 + k, 1000) }))));
  const tp = thread.partition('t', 0);
  await until('the thread to see the hw', () => tp.hw === host0.hw);
  // Then from both sides at once: the host's own appends and the thread's.
  const appends: Promise<unknown>[] = [];
  for (let i = 0; i < 60; i++) {
    const b = ctx.batch([{ value: eventValue(r, 1000 + i, 300) }]);
    appends.push(i % 2 === 0 ? host0.append(b) : tp.append(b));
  }
  await Promise.all(appends);
  await until('the thread to see every append', () => tp.hw === host0.hw);
  assert.ok(host0.segmentSpans().length > 3, 'several segments');
  for (const chunk of [1, 4096, 1 << 20]) {
    const mine = readAll(tp, 0, chunk);
    const theirs = readAll(host0, 0, chunk);
    assert.deepEqual(mine, theirs, `reads of ${chunk} bytes`);
    assert.deepEqual(mine.offsets, Array.from({ length: host0.hw }, (_, i) => i));
  }
  // From the middle of a middle segment: the same batch boundaries.
  const mid = Math.floor(host0.hw / 2) + 1;
  const a = tp.read(mid, 1);
  const b = host0.read(mid, 1);
  assert.ok(a && b);
  assert.deepEqual({ first: a.firstOffset, next: a.nextOffset, pos: a.position, bytes: Buffer.from(a.bytes) }, { first: b.firstOffset, next: b.nextOffset, pos: b.position, bytes: Buffer.from(b.bytes) });
  assert.throws(() => tp.read(host0.hw + 1, 1), OffsetOutOfRangeError);
});

matrix("an append from a thread resolves after its commit is known there; listeners see each run once, in order", async (ctx) => {
  const { log, thread } = await shared(ctx);
  await log.createTopic('t', { partitions: 1 });
  const tp = thread.partition('t', 0);
  const seen: [number, number][] = [];
  let hwAtCommit = -1;
  tp.onCommit((bytes, first, next) => {
    hwAtCommit = tp.hw;
    seen.push([first, next]);
    assert.equal(decodeBatches(bytes).length, next - first);
  });
  for (let i = 0; i < 20; i++) {
    const res = await tp.append(ctx.batch([{ value: Buffer.from(`a${i}`) }, { value: Buffer.from(`b${i}`) }]));
    assert.equal(res.baseOffset, i * 2);
    assert.ok(tp.hw >= res.lastOffset + 1, 'visible here when the append resolves');
  }
  assert.equal(hwAtCommit, 40);
  // Runs cover 0..40 exactly once, in order, without gaps.
  let expect = 0;
  for (const [first, next] of seen) {
    assert.equal(first, expect);
    expect = next;
  }
  assert.equal(expect, 40);
});

matrix('topics created and deleted on either side are seen on both; a deleted topic refuses appends', async (ctx) => {
  const { mgr, log, thread } = await shared(ctx);
  const events: string[] = [];
  thread.onTopicEvent((e) => events.push(`${e.type} ${e.topic}`));
  const info = await thread.createTopic('from-thread', { partitions: 3 });
  assert.equal(info.partitions.length, 3);
  assert.ok(mgr.hasTopic('from-thread') && thread.hasTopic('from-thread'));
  await assert.rejects(thread.createTopic('from-thread', { partitions: 1 }), (e: Error) => e.name === 'TopicExistsError');
  await log.createTopic('from-host', { partitions: 1 });
  assert.ok(thread.hasTopic('from-host'), 'known on every thread once created');
  const gone = thread.partition('from-host', 0);
  await log.deleteTopic('from-host');
  assert.ok(!thread.hasTopic('from-host'), 'gone on every thread once deleted');
  await assert.rejects(gone.append(ctx.batch([{ value: null }])), (e: { code?: string }) => e.code === 'UNKNOWN_TOPIC');
  await thread.deleteTopic('from-thread');
  assert.ok(!mgr.hasTopic('from-thread') && !thread.hasTopic('from-thread'));
  assert.throws(() => thread.partition('from-thread', 0), (e: Error) => e.name === 'UnknownTopicError');
  assert.deepEqual(events, ['created from-thread', 'created from-host', 'deleted from-host', 'deleted from-thread']);
});

matrix("retention's new start reaches the thread; a read below it is out of range there too", async (ctx) => {
  const { mgr, log, thread } = await shared(ctx, { segmentBytes: 64 * 1024 });
  await log.createTopic('t', { partitions: 1, retentionBytes: 128 * 1024 });
  const hp = mgr.partition('t', 0);
  const r = ctx.rng();
  for (let i = 0; i < 100; i++) await hp.append(ctx.batch([{ value: eventValue(r, i, 3000) }]));
  const tp = thread.partition('t', 0);
  await until('the hw', () => tp.hw === hp.hw);
  assert.ok(mgr.enforceRetention() > 0);
  await until('the new start', () => tp.startOffset === hp.startOffset);
  assert.throws(() => tp.read(0, 1), OffsetOutOfRangeError);
  assert.deepEqual(readAll(tp, tp.startOffset), readAll(hp, hp.startOffset));
});

matrix('offsetForTime agrees with the log thread', async (ctx) => {
  const { log, thread } = await shared(ctx, { segmentBytes: 64 * 1024 });
  await log.createTopic('t', { partitions: 1 });
  const hp = log.partition('t', 0);
  const r = ctx.rng();
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < 80; i++) await hp.append(ctx.batch([{ value: eventValue(r, i, 2000), timestamp: t0 + i * 10 }], t0 + i * 10));
  const tp = thread.partition('t', 0);
  await until('the hw', () => tp.hw === hp.hw);
  for (const ts of [0, t0, t0 + 5, t0 + 333, t0 + 790, t0 + 791, t0 + 10_000]) assert.equal(tp.offsetForTime(ts), hp.offsetForTime(ts), `time ${ts}`);
});

matrix('a commit for a segment already gone is not told to listeners; a read there is below the start, as on the log thread', async (ctx) => {
  const { mgr, log, thread } = await shared(ctx);
  await log.createTopic('t', { partitions: 1 });
  const hp = mgr.partition('t', 0);
  const tp = thread.partition('t', 0);
  const told: number[] = [];
  tp.onCommit((_bytes, first) => told.push(first));
  await hp.append(ctx.batch([{ value: Buffer.from('x') }]));
  // The commit notice is on its way; this thread has not mapped the segment yet. Remove the
  // file before it is applied here (as a deletion or retention could).
  fs.rmSync(hp.segmentSpans()[0].logPath);
  await until('the thread to see the hw', () => tp.hw === hp.hw);
  assert.deepEqual(told, [], 'nothing told: the bytes were gone');
  assert.throws(() => tp.read(0, 1024), OffsetOutOfRangeError);
  assert.equal(tp.startOffset, hp.hw, 'the start moved past the segment found gone');
});

test('an event a thread cannot apply is reported; the events after it in the same message are still applied', async () => {
  const { port1, port2 } = new MessageChannel();
  const errors: object[] = [];
  const connecting = ThreadLog.connect(port2, { info: () => {}, warn: () => {}, error: (obj) => errors.push(obj) });
  port1.postMessage({ snapshot: [], seq: 0 });
  const thread = await connecting;
  try {
    const good = { name: 'good', retentionMs: -1, retentionBytes: -1, createdAt: 0, partitions: [{ pid: 2, partition: 0, epoch: 'e', start: 0, hw: 0, dir: '/nonexistent', spans: [] }] };
    // A created topic whose partitions are not a list: it cannot be applied here.
    const bad = { name: 'bad', retentionMs: -1, retentionBytes: -1, createdAt: 0, partitions: 7 };
    const acked = new Promise<{ ack?: number }>((resolve) => port1.once('message', resolve));
    port1.postMessage({ seq: 1, events: [[EVENT_CREATED, bad], [EVENT_CREATED, good]], replies: [] });
    assert.equal((await acked).ack, 1, 'the message is acked all the same (topic admin must not wait for ever)');
    assert.equal(errors.length, 1);
    assert.ok(thread.hasTopic('good'), 'the next event of the message was applied');
    assert.ok(!thread.hasTopic('bad'));
  } finally {
    await thread.close();
    port1.close();
    port2.close();
  }
});

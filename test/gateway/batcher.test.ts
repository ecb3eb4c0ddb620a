/**
 * Adaptive batching, in-process against a stand-in log whose appends the test settles: no
 * timer when idle (a batch goes when its event-loop turn ends), one batch per turn under
 * load, batches held while the partition's previous append is in flight and sent as one
 * when it finishes, `batchBytes` never held, and `lingerMs` > 0 gathering across turns.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AppendResult, type Log, type LogPartition, decodeBatchRecords, readBatchHeader } from '../../engine/index.ts';
import { Metrics } from '../../src/common/metrics.ts';
import { Batcher, type BatcherOptions } from '../../src/gateway/batcher.ts';

interface Append {
  records: string[];
  settle(): void;
}

/** One partition whose appends wait until the test settles them (or settle at once). */
function standInLog(opts: { settleAtOnce: boolean }): { log: Log; appends: Append[] } {
  const appends: Append[] = [];
  let next = 0;
  const partition = {
    topic: 't',
    partition: 0,
    epoch: 'e',
    startOffset: 0,
    get hw() {
      return next;
    },
    append(batch: Uint8Array): Promise<AppendResult> {
      const h = readBatchHeader(batch, 0);
      const base = next;
      next += h.recordCount;
      const result = { baseOffset: base, lastOffset: next - 1, recordCount: h.recordCount };
      return new Promise((resolve) => {
        appends.push({ records: decodeBatchRecords(batch, 0, h).map((r) => Buffer.from(r.value!).toString()), settle: () => resolve(result) });
        if (opts.settleAtOnce) resolve(result);
      });
    },
    read: () => null,
    offsetForTime: () => next,
    onCommit: () => () => {},
    segmentSpans: () => [],
  } as LogPartition;
  const log = {
    hasTopic: (t: string) => t === 't',
    partitionCount: () => 1,
    partition: () => partition,
  } as unknown as Log;
  return { log, appends };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function batcher(log: Log, opts: Partial<BatcherOptions> = {}): Batcher {
  return new Batcher(log, { lingerMs: 0, batchBytes: 1024 * 1024, compression: 'lz4', autoCreate: false, partitions: 1, ...opts }, new Metrics());
}

function publish(b: Batcher, value: string, acks: Map<string, number>): void {
  b.publish('t', undefined, null, value, null, {
    appended(err, _p, offset) {
      assert.equal(err, null);
      acks.set(value, offset);
    },
  });
}

test('an idle batcher appends a single publish when its turn ends, with no timer', async () => {
  const { log, appends } = standInLog({ settleAtOnce: true });
  const b = batcher(log);
  const acks = new Map<string, number>();
  publish(b, 'only', acks);
  assert.equal(appends.length, 0, 'nothing is appended inside the turn');
  await turn();
  assert.deepEqual(appends.map((a) => a.records), [['only']]);
  await b.close();
  assert.equal(acks.get('only'), 0);
});

test('publishes of one turn are one batch; each publisher gets its own offset', async () => {
  const { log, appends } = standInLog({ settleAtOnce: true });
  const b = batcher(log);
  const acks = new Map<string, number>();
  const values = Array.from({ length: 500 }, (_, i) => `v${i}`);
  for (const v of values) publish(b, v, acks);
  await turn();
  assert.deepEqual(appends.map((a) => a.records), [values]);
  for (const v of values) publish(b, `${v}'`, acks);
  await turn();
  assert.equal(appends.length, 2, 'the next turn is the next batch');
  await b.close();
  values.forEach((v, i) => assert.equal(acks.get(v), i));
});

test("while a partition's append is in flight its next batch gathers, and goes as one when the append finishes", async () => {
  const { log, appends } = standInLog({ settleAtOnce: false });
  const b = batcher(log);
  const acks = new Map<string, number>();
  publish(b, 'a', acks);
  await turn();
  assert.equal(appends.length, 1);
  // Three more turns of publishes while the first append (say, its fsync) is in flight.
  for (const v of ['b', 'c', 'd']) {
    publish(b, v, acks);
    await turn();
  }
  assert.equal(appends.length, 1, 'held behind the append in flight');
  appends[0].settle();
  await turn();
  assert.deepEqual(appends.map((a) => a.records), [['a'], ['b', 'c', 'd']]);
  appends[1].settle();
  await b.close();
  assert.deepEqual([...acks.entries()].sort(), [['a', 0], ['b', 1], ['c', 2], ['d', 3]]);
});

test('a batch that reaches batchBytes is appended at once, even behind an append in flight', async () => {
  const { log, appends } = standInLog({ settleAtOnce: false });
  const b = batcher(log, { batchBytes: 1024 });
  const acks = new Map<string, number>();
  publish(b, 'first', acks);
  await turn();
  assert.equal(appends.length, 1);
  const big = Array.from({ length: 10 }, (_, i) => `${i}`.padEnd(200, '.'));
  for (const v of big) publish(b, v, acks);
  assert.ok(appends.length >= 2, 'a full batch does not wait for the writer');
  for (const a of appends) a.settle();
  await turn();
  for (const a of appends) a.settle();
  await b.close();
  assert.deepEqual(appends.flatMap((a) => a.records), ['first', ...big], 'nothing lost or reordered');
  assert.equal(acks.size, 11);
});

test('with lingerMs > 0 publishes of several turns within the linger are one batch', async () => {
  const { log, appends } = standInLog({ settleAtOnce: true });
  const b = batcher(log, { lingerMs: 300 });
  const acks = new Map<string, number>();
  for (const v of ['x', 'y', 'z']) {
    publish(b, v, acks);
    await turn();
  }
  for (let i = 0; i < 100 && appends.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(appends.map((a) => a.records), [['x', 'y', 'z']]);
  await b.close();
  assert.deepEqual([...acks.values()], [0, 1, 2]);
});

test('close appends what is gathered and what is held behind an append in flight', async () => {
  const { log, appends } = standInLog({ settleAtOnce: false });
  const b = batcher(log);
  const acks = new Map<string, number>();
  publish(b, 'a', acks);
  await turn();
  publish(b, 'b', acks);
  const closed = b.close();
  // close() does not wait for the writer: what was gathered goes at once.
  assert.deepEqual(appends.map((a) => a.records), [['a'], ['b']]);
  for (const a of appends) a.settle();
  await closed;
  assert.equal(acks.size, 2);
  assert.throws(() => publish(b, 'late', acks), /shutting down/);
});

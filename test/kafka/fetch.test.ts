/**
 * Fetch and Produce semantics through a raw client (exact requests, exact answers): whole
 * batches from the one that holds the offset, max_bytes and partition_max_bytes with "at
 * least one whole batch", the long poll woken by a commit, offsets out of range, sendfile
 * for large batches, in-order answers under pipelining, Produce validation (codecs, CRC, one
 * batch, record size), acks 0, and ListOffsets by time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeRecordBatch, readBatchHeader } from '../../engine/codec/index.ts';
import { type ServerProcess, http, startServer } from '../helpers/server.ts';
import * as limits from '../../src/kafka/limits.ts';
import { type Body, RawKafka, decodeResponse, encodeRequest } from './helpers.ts';

const FETCH_V = 11;

function fetchBody(topic: string, offset: number, o: { maxBytes?: number; partitionMaxBytes?: number; maxWaitMs?: number; minBytes?: number; partition?: number } = {}): Body {
  return {
    maxWaitMs: o.maxWaitMs ?? 0,
    minBytes: o.minBytes ?? 1,
    maxBytes: o.maxBytes ?? 64 << 20,
    topics: [{ topic, partitions: [{ partition: o.partition ?? 0, fetchOffset: offset, partitionMaxBytes: o.partitionMaxBytes ?? 64 << 20 }] }],
  };
}

function produceBody(topic: string, batch: Uint8Array | null, acks = -1, partition = 0): Body {
  return { transactionalId: null, acks, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: partition, records: batch === null ? null : Buffer.from(batch) }] }] };
}

/** Base offsets and sizes of the batches in a records field. */
function batchesOf(records: Buffer | null): { base: number; size: number; count: number }[] {
  const out = [];
  let pos = 0;
  while (records !== null && pos < records.length) {
    const h = readBatchHeader(records, pos);
    out.push({ base: h.baseOffset, size: h.size, count: h.recordCount });
    pos += h.size;
  }
  return out;
}

async function metric(srv: ServerProcess, name: string): Promise<string> {
  const r = await http('GET', `${srv.http}/metrics`);
  return r.text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n');
}

describe('Kafka Fetch and Produce', () => {
  let srv: ServerProcess;
  let raw: RawKafka;
  before(async () => {
    srv = await startServer({ args: ['--partitions', '1', '--max-record-bytes', '100000', '--segment-bytes', String(64 << 20)] });
    raw = await RawKafka.connect(srv.kafkaPort);
    // Created as a producer creates it: Metadata with allow_auto_topic_creation.
    assert.equal((await raw.request(3, 4, { topics: [{ name: 'ten' }], allowAutoTopicCreation: true })).topics[0].errorCode, 0);
    // Ten batches of ten records of 1000 bytes each.
    for (let b = 0; b < 10; b++) {
      const batch = encodeRecordBatch(Array.from({ length: 10 }, (_, i) => ({ key: Buffer.from(`k${b}-${i}`), value: Buffer.alloc(1000, 97 + b) })));
      const r = await raw.request(0, 7, produceBody('ten', batch));
      assert.equal(r.responses[0].partitionResponses[0].errorCode, 0);
      assert.equal(r.responses[0].partitionResponses[0].baseOffset, b * 10);
    }
  });
  after(async () => {
    raw?.close();
    await srv?.stop();
  });

  test('whole batches from the one that holds the offset, up to max_bytes, at least one', async () => {
    const all = await raw.request(1, FETCH_V, fetchBody('ten', 0));
    const p = all.responses[0].partitions[0];
    assert.equal(p.errorCode, 0);
    assert.equal(p.highWatermark, 100);
    assert.equal(p.lastStableOffset, 100);
    assert.equal(p.logStartOffset, 0);
    const batches = batchesOf(p.records);
    assert.deepEqual(
      batches.map((b) => b.base),
      [0, 10, 20, 30, 40, 50, 60, 70, 80, 90],
    );
    const size = batches[0].size;

    // From the middle of a batch: that whole batch first.
    const mid = await raw.request(1, FETCH_V, fetchBody('ten', 35, { maxBytes: size * 2 }));
    assert.deepEqual(
      batchesOf(mid.responses[0].partitions[0].records).map((b) => b.base),
      [30, 40],
    );
    // max_bytes smaller than one batch: still the one whole batch (KIP-74).
    const tiny = await raw.request(1, FETCH_V, fetchBody('ten', 50, { maxBytes: 10 }));
    assert.deepEqual(
      batchesOf(tiny.responses[0].partitions[0].records).map((b) => b.base),
      [50],
    );
    // partition_max_bytes bounds the partition the same way.
    const part = await raw.request(1, FETCH_V, fetchBody('ten', 0, { partitionMaxBytes: size * 3 + 5 }));
    assert.equal(batchesOf(part.responses[0].partitions[0].records).length, 3);
  });

  test('a second partition whose next batch does not fit gets nothing this time', async () => {
    const body = fetchBody('ten', 0, { maxBytes: 1500 });
    body.topics.push({ topic: 'ten', partitions: [{ partition: 0, fetchOffset: 50, partitionMaxBytes: 1 << 20 }] });
    const r = await raw.request(1, FETCH_V, body);
    assert.equal(batchesOf(r.responses[0].partitions[0].records).length, 1);
    assert.equal(batchesOf(r.responses[1].partitions[0].records).length, 0);
  });

  test('offsets outside the log are OFFSET_OUT_OF_RANGE; unknown topics UNKNOWN_TOPIC_OR_PARTITION', async () => {
    const r = await raw.request(1, FETCH_V, fetchBody('ten', 101));
    assert.equal(r.responses[0].partitions[0].errorCode, 1);
    const u = await raw.request(1, FETCH_V, fetchBody('no-such-topic', 0));
    assert.equal(u.responses[0].partitions[0].errorCode, 3);
    const bad = await raw.request(1, FETCH_V, fetchBody('ten', 0, { partition: 7 }));
    assert.equal(bad.responses[0].partitions[0].errorCode, 3);
  });

  test(`answers of ${limits.sendfileBytesMin} bytes and more go out with sendfile(2), smaller ones from the mapping`, async () => {
    assert.equal((await raw.request(3, 4, { topics: [{ name: 'bulk' }], allowAutoTopicCreation: true })).topics[0].errorCode, 0);
    // Batches of a quarter of the threshold: one alone is under it, all of them over it.
    const batchBytes = Math.floor(limits.sendfileBytesMin / 4);
    const batches = Math.ceil(limits.sendfileBytesMin / batchBytes) + 1;
    for (let b = 0; b < batches; b++) {
      const batch = encodeRecordBatch(Array.from({ length: 10 }, () => ({ value: Buffer.alloc(batchBytes / 10, b) })));
      assert.equal((await raw.request(0, 7, produceBody('bulk', batch))).responses[0].partitionResponses[0].errorCode, 0);
    }
    const count = async (path: string) => Number(new RegExp(`path="${path}"} (\\d+)`).exec(await metric(srv, 'sluice_kafka_fetch_bytes_total'))?.[1] ?? 0);
    const [sendfile0, mapped0] = [await count('sendfile'), await count('mapped')];
    const small = await raw.request(1, FETCH_V, fetchBody('bulk', 0, { maxBytes: batchBytes }));
    assert.equal(batchesOf(small.responses[0].partitions[0].records).length, 1);
    assert.equal(await count('sendfile'), sendfile0);
    assert.ok((await count('mapped')) > mapped0, 'a small answer is written from the mapping');
    const big = await raw.request(1, FETCH_V, fetchBody('bulk', 0));
    const got = batchesOf(big.responses[0].partitions[0].records);
    assert.equal(got.length, batches);
    assert.equal(await count('sendfile'), sendfile0 + got.reduce((n, b) => n + b.size, 0), 'the big answer went through sendfile, byte for byte');
  });

  test(`one partition gives at most ${limits.fetchPartitionBytesMax} bytes to one answer`, async () => {
    assert.equal((await raw.request(3, 4, { topics: [{ name: 'wide' }], allowAutoTopicCreation: true })).topics[0].errorCode, 0);
    const value = Buffer.alloc(90_000, 1);
    let stored = 0;
    for (let b = 0; stored <= limits.fetchPartitionBytesMax + (1 << 20); b++) {
      const batch = encodeRecordBatch(Array.from({ length: 10 }, () => ({ value })));
      assert.equal((await raw.request(0, 7, produceBody('wide', batch))).responses[0].partitionResponses[0].errorCode, 0);
      stored += batch.length;
    }
    const r = await raw.request(1, FETCH_V, fetchBody('wide', 0, { maxBytes: 0x7fffffff, partitionMaxBytes: 0x7fffffff }));
    const got = batchesOf(r.responses[0].partitions[0].records).reduce((n, b) => n + b.size, 0);
    assert.ok(got <= limits.fetchPartitionBytesMax, `${got} bytes in one answer`);
    assert.ok(got > limits.fetchPartitionBytesMax - 1_000_000, `${got} bytes: close to the cap, not far below`);
  });

  test('a fetch at the hw waits and is woken by a commit', async () => {
    const other = await RawKafka.connect(srv.kafkaPort);
    const waiting = other.request(1, FETCH_V, fetchBody('ten', 100, { maxWaitMs: 20_000 }));
    await new Promise((r) => setTimeout(r, 200));
    const batch = encodeRecordBatch([{ value: Buffer.from('wake up') }]);
    const p = await raw.request(0, 7, produceBody('ten', batch));
    assert.equal(p.responses[0].partitionResponses[0].baseOffset, 100);
    const r = await waiting;
    assert.deepEqual(
      batchesOf(r.responses[0].partitions[0].records).map((b) => b.base),
      [100],
    );
    // And one with nothing arriving answers empty after max_wait_ms.
    const empty = await other.request(1, FETCH_V, fetchBody('ten', 101, { maxWaitMs: 100 }));
    assert.equal(empty.responses[0].partitions[0].errorCode, 0);
    assert.equal(empty.responses[0].partitions[0].records.length, 0);
    other.close();
  });

  test('pipelined requests are answered in order, a waiting fetch holding the later answers', async () => {
    const c = await RawKafka.connect(srv.kafkaPort);
    c.write(encodeRequest(1, FETCH_V, 1, fetchBody('ten', 101, { maxWaitMs: 300 })));
    c.write(encodeRequest(3, 4, 2, { topics: [{ name: 'ten' }], allowAutoTopicCreation: false }));
    c.write(encodeRequest(18, 2, 3, {}));
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await c.frame())!.readInt32BE(0));
    assert.deepEqual(ids, [1, 2, 3]);
    c.close();
  });

  test('Produce refuses what a WebSocket PRODUCE refuses, storing nothing', async () => {
    const hw = async () => (await raw.request(2, 2, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'ten', partitions: [{ partitionIndex: 0, timestamp: -1 }] }] })).topics[0].partitions[0].offset;
    const start = await hw();
    const code = async (batch: Uint8Array | null, acks = -1) => (await raw.request(0, 7, produceBody('ten', batch, acks))).responses[0].partitionResponses[0].errorCode;

    const good = encodeRecordBatch([{ value: Buffer.from('ok') }]);
    const gzip = Buffer.from(good);
    gzip.writeInt16BE(1, 21); // codec gzip: CRC then fails before the codec is looked at
    assert.equal(await code(gzip), 2);
    // A gzip batch with a correct CRC: the codec is what is refused.
    const { crc32c } = await import('../../engine/codec/crc32c.ts');
    gzip.writeUInt32BE(crc32c(gzip, 21, gzip.length), 17);
    assert.equal(await code(gzip), 76, 'UNSUPPORTED_COMPRESSION_TYPE');

    const flipped = Buffer.from(good);
    flipped[flipped.length - 1] ^= 1;
    assert.equal(await code(flipped), 2, 'CRC mismatch: CORRUPT_MESSAGE');
    const magic1 = Buffer.from(good);
    magic1[16] = 1;
    assert.equal(await code(magic1), 87, 'magic 1: INVALID_RECORD');
    assert.equal(await code(Buffer.concat([good, good])), 87, 'two batches in one partition');
    assert.equal(await code(null), 2);
    const big = encodeRecordBatch([{ value: Buffer.alloc(100_001) }]);
    assert.equal(await code(big), 10, 'MESSAGE_TOO_LARGE');
    assert.equal(await hw(), start, 'nothing stored');

    // acks 0: no answer at all, but the batch is stored; the next request's answer comes first.
    raw.write(encodeRequest(0, 7, 500, produceBody('ten', encodeRecordBatch([{ value: Buffer.from('fire and forget') }]), 0)));
    assert.equal(await hw(), start + 1);
    // acks 2 is not a thing.
    assert.equal(await code(good, 2), 21);
  });

  test('an idempotent producer: InitProducerId, and a retried batch answered with its first offsets, not stored twice', async () => {
    const init = await raw.request(22, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1, producerEpoch: -1 });
    assert.equal(init.errorCode, 0);
    assert.ok(Number.isSafeInteger(init.producerId) && init.producerId > 0);
    assert.equal(init.producerEpoch, 0);
    const bumped = await raw.request(22, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: init.producerId, producerEpoch: 0 });
    assert.deepEqual([bumped.producerId, bumped.producerEpoch], [init.producerId, 1]);
    assert.equal((await raw.request(22, 1, { transactionalId: 'tx', transactionTimeoutMs: 60_000 })).errorCode, 53, 'no transactions');

    const { crc32c } = await import('../../engine/codec/crc32c.ts');
    const stamped = (baseSequence: number, text: string) => {
      const b = Buffer.from(encodeRecordBatch([{ value: Buffer.from(text) }, { value: Buffer.from(`${text}+1`) }]));
      b.writeInt32BE(Math.floor(init.producerId / 2 ** 32), 43);
      b.writeUInt32BE(init.producerId % 2 ** 32, 47);
      b.writeInt16BE(1, 51);
      b.writeInt32BE(baseSequence, 53);
      b.writeUInt32BE(crc32c(b, 21, b.length), 17);
      return b;
    };
    const send = async (batch: Buffer) => (await raw.request(0, 7, produceBody('ten', batch))).responses[0].partitionResponses[0];
    const first = await send(stamped(0, 'once'));
    assert.equal(first.errorCode, 0);
    const retry = await send(stamped(0, 'once'));
    assert.deepEqual([retry.errorCode, retry.baseOffset], [0, first.baseOffset], 'the retry gets the first offsets');
    const next = await send(stamped(2, 'next'));
    assert.equal(next.baseOffset, first.baseOffset + 2, 'the retry took no offsets');
    const stored = await raw.request(1, FETCH_V, fetchBody('ten', first.baseOffset));
    assert.deepEqual(
      batchesOf(stored.responses[0].partitions[0].records).filter((b) => b.base >= first.baseOffset).map((b) => b.base),
      [first.baseOffset, first.baseOffset + 2],
    );
    // Only the last producerBatchesKept batches are remembered: an older one sent again is stored again.
    for (let i = 0; i < limits.producerBatchesKept; i++) await send(stamped(4 + 2 * i, `more-${i}`));
    const old = await send(stamped(0, 'once'));
    assert.equal(old.errorCode, 0);
    assert.ok(old.baseOffset > next.baseOffset, 'past the window: stored again (at-least-once)');
  });

  test('ListOffsets: earliest, latest, and by time with the record timestamp', async () => {
    const t0 = Date.now();
    const stamped = encodeRecordBatch(
      [
        { value: Buffer.from('a'), timestamp: t0 + 100_000 },
        { value: Buffer.from('b'), timestamp: t0 + 200_000 },
      ],
      { timestamp: t0 + 100_000 },
    );
    const base = (await raw.request(0, 7, produceBody('ten', stamped))).responses[0].partitionResponses[0].baseOffset;
    const ask = async (timestamp: number) => (await raw.request(2, 3, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'ten', partitions: [{ partitionIndex: 0, timestamp }] }] })).topics[0].partitions[0];
    assert.equal((await ask(-2)).offset, 0);
    assert.equal((await ask(-1)).offset, base + 2);
    const mid = await ask(t0 + 150_000);
    assert.equal(mid.offset, base + 1);
    assert.equal(mid.timestamp, t0 + 200_000);
    const none = await ask(t0 + 300_000);
    assert.equal(none.offset, -1);
    assert.equal(none.timestamp, -1);
  });

  test('flexible versions (Fetch v12, Produce v9, Metadata v9) carry the same data', async () => {
    const batch = encodeRecordBatch([{ value: Buffer.from('flexible') }]);
    const p = await raw.request(0, 9, produceBody('flex', batch));
    assert.equal(p.responses[0].partitionResponses[0].errorCode, 3, 'no such topic yet');
    const m = await raw.request(3, 9, { topics: [{ name: 'flex' }], allowAutoTopicCreation: true });
    assert.equal(m.topics[0].errorCode, 0);
    assert.equal((await raw.request(0, 9, produceBody('flex', batch))).responses[0].partitionResponses[0].baseOffset, 0);
    const f = await raw.request(1, 12, fetchBody('flex', 0));
    assert.deepEqual(
      batchesOf(f.responses[0].partitions[0].records).map((b) => b.count),
      [1],
    );
    // And one frame decoded by hand: the response header v1 has its tagged-field byte.
    const c = await RawKafka.connect(srv.kafkaPort);
    c.write(encodeRequest(3, 9, 42, { topics: null, allowAutoTopicCreation: false }));
    const frame = (await c.frame())!;
    assert.equal(frame.readInt32BE(0), 42);
    assert.equal(frame[4], 0, 'no tagged fields in the header');
    assert.equal(decodeResponse(3, 9, frame).body.brokers[0].port, srv.kafkaPort);
    c.close();
  });
});

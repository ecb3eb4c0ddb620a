/**
 * kafkajs 2.2, a Kafka client nobody here wrote, against a real sluice process: a producer
 * with acks -1 (uncompressed and LZ4 through kafkajs-lz4), a consumer group of two members
 * that rebalances, commits, and resumes after a real restart of the server, and the admin
 * client (create, list, describe, offsets, delete).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { readBatchHeader } from '../../engine/codec/record-batch.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';
import { RawKafka } from './helpers.ts';

const require = createRequire(import.meta.url);
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs');
const LZ4Codec = require('kafkajs-lz4');
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;

function client(port: number, clientId = 'sluice-test') {
  return new Kafka({ clientId, brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100 } });
}

/** Polls `pred` until it holds, at most `ms` (a hang guard). */

describe('kafkajs producer and admin', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ args: ['--partitions', '1'] });
  });
  after(async () => {
    await srv?.stop();
  });

  for (const [name, compression, codec] of [
    ['uncompressed', CompressionTypes.None, 0],
    ['LZ4', CompressionTypes.LZ4, 3],
  ] as const) {
    test(`producer acks -1 (${name}): offsets acked, batches stored as sent, read back by a kafkajs consumer`, async () => {
      const topic = `produced-${name}`;
      const kafka = client(srv.kafkaPort);
      const producer = kafka.producer({ allowAutoTopicCreation: true });
      await producer.connect();
      const acked: number[] = [];
      for (let round = 0; round < 5; round++) {
        const messages = Array.from({ length: 20 }, (_, i) => ({
          key: `k${round}-${i}`,
          value: `v${round}-${i}-${'x'.repeat(i * 10)}`,
          headers: { round: String(round), n: String(i) },
        }));
        const r = await producer.send({ topic, acks: -1, compression, messages });
        assert.equal(r.length, 1);
        assert.equal(r[0].errorCode, 0);
        acked.push(Number(r[0].baseOffset));
      }
      await producer.disconnect();
      assert.deepEqual(acked, [0, 20, 40, 60, 80]);

      // The stored batches are the ones kafkajs built: its codec, its record count.
      const raw = await RawKafka.connect(srv.kafkaPort);
      const f = await raw.request(1, 11, {
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: 10 * 1024 * 1024,
        topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 10 * 1024 * 1024 }] }],
      });
      raw.close();
      const records = f.responses[0].partitions[0].records as Buffer;
      let pos = 0;
      let batches = 0;
      while (pos < records.length) {
        const h = readBatchHeader(records, pos);
        assert.equal(h.codec, codec);
        assert.equal(h.recordCount, 20);
        assert.equal(h.baseOffset, batches * 20);
        pos += h.size;
        batches++;
      }
      assert.equal(batches, 5);

      const consumer = kafka.consumer({ groupId: `read-${name}`, maxWaitTimeInMs: 200, heartbeatInterval: 500 });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const seen: { offset: number; key: string; value: string; round: string }[] = [];
      await consumer.run({
        eachMessage: async ({ message }: any) => {
          seen.push({ offset: Number(message.offset), key: message.key.toString(), value: message.value.toString(), round: message.headers.round.toString() });
        },
      });
      await until(() => seen.length >= 100, 'all 100 records');
      await consumer.disconnect();
      seen.sort((a, b) => a.offset - b.offset);
      seen.forEach((m, i) => {
        assert.equal(m.offset, i);
        const round = Math.floor(i / 20);
        const n = i % 20;
        assert.equal(m.key, `k${round}-${n}`);
        assert.equal(m.value, `v${round}-${n}-${'x'.repeat(n * 10)}`);
        assert.equal(m.round, String(round));
      });
    });
  }

  test('an idempotent producer (InitProducerId) produces', async () => {
    const producer = client(srv.kafkaPort).producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
    await producer.connect();
    const offsets = [];
    for (let i = 0; i < 3; i++) offsets.push(Number((await producer.send({ topic: 'idempotent-js', acks: -1, messages: [{ value: `a${i}` }, { value: `b${i}` }] }))[0].baseOffset));
    await producer.disconnect();
    assert.deepEqual(offsets, [0, 2, 4]);
  });

  test('admin: create, list, describe, offsets by time, delete', async () => {
    const admin = client(srv.kafkaPort).admin();
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic: 'admin-made', numPartitions: 4, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] }), true);
    // Creating it again is TOPIC_ALREADY_EXISTS, which kafkajs reports as false.
    assert.equal(await admin.createTopics({ topics: [{ topic: 'admin-made', numPartitions: 4 }] }), false);
    await assert.rejects(admin.createTopics({ topics: [{ topic: 'bad-rf', numPartitions: 1, replicationFactor: 3 }] }), (err: any) => err.errors?.[0]?.type === 'INVALID_REPLICATION_FACTOR');
    assert.ok((await admin.listTopics()).includes('admin-made'));
    const meta = await admin.fetchTopicMetadata({ topics: ['admin-made'] });
    assert.equal(meta.topics[0].partitions.length, 4);
    for (const p of meta.topics[0].partitions) assert.equal(p.leader, 0);

    const producer = client(srv.kafkaPort).producer();
    await producer.connect();
    const before = Date.now();
    await producer.send({ topic: 'admin-made', acks: -1, messages: [{ partition: 2, value: 'a' }, { partition: 2, value: 'b' }] });
    await producer.disconnect();
    const offsets = await admin.fetchTopicOffsets('admin-made');
    assert.deepEqual(
      offsets.sort((a: any, b: any) => a.partition - b.partition).map((o: any) => [o.partition, o.low, o.high]),
      [
        [0, '0', '0'],
        [1, '0', '0'],
        [2, '0', '2'],
        [3, '0', '0'],
      ],
    );
    const byTime = await admin.fetchTopicOffsetsByTimestamp('admin-made', before - 1000);
    assert.equal(byTime.find((o: any) => o.partition === 2).offset, '0');
    const future = await admin.fetchTopicOffsetsByTimestamp('admin-made', Date.now() + 3_600_000);
    // No record that recent: Kafka answers -1, which kafkajs turns into the high watermark.
    assert.ok(['-1', '2'].includes(future.find((o: any) => o.partition === 2).offset));

    // Offsets of a group with no member, set and read back through OffsetCommit / OffsetFetch.
    await admin.setOffsets({ groupId: 'admin-group', topic: 'admin-made', partitions: [{ partition: 2, offset: '1' }] });
    const committed = await admin.fetchOffsets({ groupId: 'admin-group', topics: ['admin-made'] });
    assert.equal(committed[0].partitions.find((p: any) => p.partition === 2).offset, '1');

    await admin.deleteTopics({ topics: ['admin-made'] });
    assert.ok(!(await admin.listTopics()).includes('admin-made'));
    await admin.disconnect();
  });
});

describe('kafkajs consumer group', () => {
  let srv: ServerProcess;
  after(async () => {
    await srv?.stop();
  });

  test('two members rebalance, commit, and the group resumes after a server restart', async () => {
    srv = await startServer({ args: ['--partitions', '4'] });
    const topic = 'group-topic';
    const groupId = 'cg';
    let kafka = client(srv.kafkaPort);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    for (let p = 0; p < 4; p++) {
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 50 }, (_, i) => ({ partition: p, value: `first-${p}-${i}` })) });
    }
    await producer.disconnect();

    const seen = new Map<string, number>();
    const assignments = new Map<string, number[]>();
    const member = (name: string) => {
      const c = kafka.consumer({ groupId, sessionTimeout: 10_000, rebalanceTimeout: 20_000, heartbeatInterval: 300, maxWaitTimeInMs: 200 });
      c.on(c.events.GROUP_JOIN, (e: any) => assignments.set(name, (e.payload.memberAssignment[topic] ?? []).slice().sort()));
      return c;
    };
    const a = member('a');
    await a.connect();
    await a.subscribe({ topic, fromBeginning: true });
    await a.run({
      eachMessage: async ({ message }: any) => {
        const v = message.value.toString();
        seen.set(v, (seen.get(v) ?? 0) + 1);
      },
    });
    await until(() => assignments.get('a')?.length === 4, 'a alone holds all four partitions');

    const b = member('b');
    await b.connect();
    await b.subscribe({ topic, fromBeginning: true });
    await b.run({
      eachMessage: async ({ message }: any) => {
        const v = message.value.toString();
        seen.set(v, (seen.get(v) ?? 0) + 1);
      },
    });
    // The rebalance: each member gets two partitions, together all four, none twice.
    await until(() => assignments.get('a')?.length === 2 && assignments.get('b')?.length === 2, 'a rebalance that splits the partitions');
    assert.deepEqual([...assignments.get('a')!, ...assignments.get('b')!].sort(), [0, 1, 2, 3]);
    await until(() => seen.size === 200, 'every first-round record');
    await a.disconnect(); // commits and leaves
    await b.disconnect();

    // A real restart: SIGTERM, then a new process on the same data dir (new ports).
    assert.equal(await srv.stop(), 0);
    srv = await startServer({ dataDir: srv.dataDir, args: ['--partitions', '4'] });
    kafka = client(srv.kafkaPort);
    const admin2 = kafka.admin();
    await admin2.connect();
    const committed = await admin2.fetchOffsets({ groupId, topics: [topic] });
    assert.deepEqual(committed[0].partitions.map((p: any) => p.offset).sort(), ['50', '50', '50', '50']);
    await admin2.disconnect();

    const producer2 = kafka.producer();
    await producer2.connect();
    for (let p = 0; p < 4; p++) await producer2.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ partition: p, value: `second-${p}-${i}` })) });
    await producer2.disconnect();

    const resumed: { partition: number; offset: number; value: string }[] = [];
    const c = kafka.consumer({ groupId, heartbeatInterval: 300, maxWaitTimeInMs: 200 });
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({
      eachMessage: async ({ partition, message }: any) => {
        resumed.push({ partition, offset: Number(message.offset), value: message.value.toString() });
      },
    });
    await until(() => resumed.length >= 40, 'the second-round records');
    await c.disconnect();
    // Only what came after the commit: nothing of the first round again.
    assert.equal(resumed.length, 40);
    for (const m of resumed) {
      assert.match(m.value, /^second-/);
      assert.ok(m.offset >= 50);
    }
  });
});

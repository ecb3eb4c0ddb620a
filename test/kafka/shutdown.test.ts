/**
 * SIGTERM with Kafka clients connected (wire contract §7: "stop accepting, flush, fsync,
 * close, exit 0"): a fetch waiting at the hw is answered at once with what there is, a group
 * member waiting in JoinGroup is told NOT_COORDINATOR (it will look again), acknowledged
 * produces are on disk after the restart, and the process exits 0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeRecordBatch } from '../../engine/codec/index.ts';
import { startServer } from '../helpers/server.ts';
import { RawKafka } from './helpers.ts';

test('SIGTERM answers waiting fetches and joins, keeps acked batches, exits 0', async () => {
  const srv = await startServer();
  const raw = await RawKafka.connect(srv.kafkaPort);
  assert.equal((await raw.request(3, 4, { topics: [{ name: 'down' }], allowAutoTopicCreation: true })).topics[0].errorCode, 0);
  const p = await raw.request(0, 7, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: 'down', partitionData: [{ index: 0, records: Buffer.from(encodeRecordBatch([{ value: Buffer.from('kept') }])) }] }] });
  assert.equal(p.responses[0].partitionResponses[0].errorCode, 0);

  const fetcher = await RawKafka.connect(srv.kafkaPort);
  const waiting = fetcher.request(1, 11, { maxWaitMs: 25_000, minBytes: 1, maxBytes: 1 << 20, topics: [{ topic: 'down', partitions: [{ partition: 0, fetchOffset: 1, partitionMaxBytes: 1 << 20 }] }] });
  const joiner = await RawKafka.connect(srv.kafkaPort);
  const joining = joiner.request(11, 5, { groupId: 'g', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 60_000, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }] });
  // A second member joining makes the first rebalance wait for up to a minute.
  const joined = await joining;
  const other = await RawKafka.connect(srv.kafkaPort);
  const rejoin = other.request(11, 5, { groupId: 'g', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 60_000, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }] });
  assert.equal(joined.errorCode, 0);
  await new Promise((r) => setTimeout(r, 300));

  assert.equal(await srv.stop(), 0, 'clean exit');
  const f = await waiting;
  assert.equal(f.responses[0].partitions[0].errorCode, 0);
  assert.equal(f.responses[0].partitions[0].records.length, 0, 'answered empty, not cut off');
  assert.equal((await rejoin).errorCode, 16, 'NOT_COORDINATOR: look for the coordinator again');
  for (const c of [raw, fetcher, joiner, other]) c.close();

  const again = await startServer({ dataDir: srv.dataDir });
  const check = await RawKafka.connect(again.kafkaPort);
  const lo = await check.request(2, 2, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'down', partitions: [{ partitionIndex: 0, timestamp: -1 }] }] });
  assert.equal(lo.topics[0].partitions[0].offset, 1);
  check.close();
  await again.stop();
});

/**
 * The cluster log in-process, over a real three-server JetStream cluster: two ClusterLog
 * instances (two nodes) in one test process, each with its own data directory, so that what
 * the fronts cannot show is checked directly — the Log contract (engine/log.ts) in cluster
 * mode, topic events raised on the other node, consumer-group offsets in the bucket, the
 * batch size NATS takes, retention in JetStream keeping the log's end so that offsets are
 * not given twice after it ran, and the cluster log served to another thread (--threads).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import pino from 'pino';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { type ProducerRecord, encodeRecordBatch, readBatchHeader } from '../../engine/codec/index.ts';
import { LogHost } from '../../engine/log-host.ts';
import type { TopicEvent } from '../../engine/log.ts';
import { ThreadLog } from '../../engine/thread-log.ts';
import { ClusterLog } from '../../src/cluster/cluster-log.ts';
import { streamName } from '../../src/cluster/names.ts';
import { purgeExpired } from '../../src/cluster/retention.ts';
import { tempDir } from '../helpers/server.ts';
import { type NatsCluster, natsMaxPayloadBytes, startNatsCluster } from './nats-cluster.ts';
import { until } from './helpers.ts';

const logger = pino({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });
let nats: NatsCluster;
const logs: ClusterLog[] = [];

async function node(dataDir = tempDir('sluice-cl-'), extra: { topicsMax?: number } = {}): Promise<ClusterLog> {
  const log = await ClusterLog.open({ servers: nats.urls.split(','), replicas: 3, clusterName: 'sluice', dataDir, logger, ...extra });
  logs.push(log);
  return log;
}

const batchOf = (values: string[], timestamp?: number): Uint8Array =>
  encodeRecordBatch(
    values.map((v): ProducerRecord => ({ value: Buffer.from(v) })),
    { codec: 'lz4', timestamp },
  );

before(async () => {
  nats = await startNatsCluster();
});
after(async () => {
  for (const l of logs) await l.close().catch(() => {});
  await nats?.stop();
});

test('append resolves once JetStream acked it and the mirror shows it: hw moved, commit listeners told', { timeout: 60_000 }, async () => {
  const a = await node();
  const b = await node();
  await a.createTopic('contract', { partitions: 1 });
  await until(() => b.hasTopic('contract'), 'the topic on b');
  const pa = a.partition('contract', 0);
  const pb = b.partition('contract', 0);
  assert.equal(pa.epoch, pb.epoch);
  const seenA: number[] = [];
  const seenB: [number, number][] = [];
  pa.onCommit((_bytes, first) => seenA.push(first));
  pb.onCommit((_bytes, first, next) => seenB.push([first, next]));
  for (let i = 0; i < 20; i++) {
    const r = await pa.append(batchOf([`x${i}`, `y${i}`]));
    assert.equal(r.baseOffset, 2 * i);
    assert.equal(r.recordCount, 2);
    assert.ok(pa.hw > r.lastOffset, 'hw has moved past the batch when append resolves');
    assert.equal(seenA.at(-1), r.baseOffset, 'the commit listener was told before append resolved');
  }
  // Several in flight at once, through both nodes: offsets dense, each once.
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? pa : pb).append(batchOf([`z${i}`]))));
  const bases = results.map((r) => r.baseOffset).sort((x, y) => x - y);
  assert.deepEqual(
    bases,
    bases.map((_, i) => 40 + i),
  );
  await until(() => pb.hw === 80 && pa.hw === 80, 'both nodes to show everything');
  assert.deepEqual(
    seenB.map(([f]) => f),
    seenB.map((_, i) => (i < 20 ? 2 * i : 40 + (i - 20))),
    'b was told every batch once, in offset order',
  );
  const ra = pa.read(0, 1 << 20)!;
  const rb = pb.read(0, 1 << 20)!;
  assert.ok(Buffer.from(ra.bytes).equals(Buffer.from(rb.bytes)), 'the same bytes on both nodes');
});

test('topic events are raised on every node; a deleted topic refuses appends with UNKNOWN_TOPIC', { timeout: 60_000 }, async () => {
  const [a, b] = logs;
  const events: TopicEvent[] = [];
  b.onTopicEvent((e) => events.push(e));
  await a.createTopic('evented', { partitions: 2 });
  await until(() => events.length === 1, 'created on b');
  assert.deepEqual(events, [{ type: 'created', topic: 'evented' }]);
  const stale = b.partition('evented', 1);
  await assert.rejects(b.createTopic('evented', { partitions: 2 }), { code: 'BAD_REQUEST', reason: 'TOPIC_EXISTS' });
  await a.deleteTopic('evented');
  await until(() => events.length === 2, 'deleted on b');
  assert.deepEqual(events[1], { type: 'deleted', topic: 'evented' });
  assert.equal(b.hasTopic('evented'), false);
  await assert.rejects(stale.append(batchOf(['late'])), { code: 'UNKNOWN_TOPIC' });
  await assert.rejects(b.deleteTopic('evented'), { code: 'UNKNOWN_TOPIC' });
});

test('consumer-group offsets live in the cluster: committed on one node, read on the other; concurrent commits merge', { timeout: 60_000 }, async () => {
  const [a, b] = logs;
  const at = Date.now();
  await a.offsets.commit('g1', [{ topic: 't', partition: 0, offset: 42, metadata: 'm', committedAt: at }]);
  assert.deepEqual(await b.offsets.fetch('g1'), [{ topic: 't', partition: 0, offset: 42, metadata: 'm', committedAt: at }]);
  await Promise.all(
    Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).offsets.commit('g1', [{ topic: 't', partition: i + 1, offset: i, metadata: null, committedAt: at }])),
  );
  const got = (await a.offsets.fetch('g1')).sort((x, y) => x.partition - y.partition);
  assert.deepEqual(
    got.map((o) => [o.partition, o.offset]),
    [[0, 42], ...Array.from({ length: 10 }, (_, i) => [i + 1, i])],
    'no node lost the other node\'s commits',
  );
  assert.deepEqual(await b.offsets.fetch('nobody'), []);

  // A deleted topic's offsets go with it: created again, it starts with none.
  await a.createTopic('forgotten', { partitions: 1 });
  await until(() => b.hasTopic('forgotten'), 'the topic on b');
  await b.offsets.commit('g2', [
    { topic: 'forgotten', partition: 0, offset: 7, metadata: null, committedAt: at },
    { topic: 't', partition: 0, offset: 1, metadata: null, committedAt: at },
  ]);
  await b.deleteTopic('forgotten');
  assert.deepEqual(
    (await a.offsets.fetch('g2')).map((o) => o.topic),
    ['t'],
    'only the other topic\'s offset is left',
  );
});

test('--max-topics counts the cluster\'s topics: one more create is refused TOO_MANY_TOPICS, and nothing is created', { timeout: 60_000 }, async () => {
  const held = logs[0].listTopics().length;
  const limited = await node(undefined, { topicsMax: held + 1 });
  await limited.createTopic('room-1', { partitions: 1 });
  await assert.rejects(limited.createTopic('room-2', { partitions: 1 }), { code: 'BAD_REQUEST', reason: 'TOO_MANY_TOPICS' });
  assert.equal(limited.hasTopic('room-2'), false);
  await until(() => logs[0].hasTopic('room-1'), 'room-1 on the other node');
  assert.equal(logs[0].hasTopic('room-2'), false);
  await limited.deleteTopic('room-1');
});

test('a batch over what NATS takes (max_payload) is refused TOO_LARGE, nothing stored', { timeout: 60_000 }, async () => {
  const [a] = logs;
  await a.createTopic('big', { partitions: 1 });
  const p = a.partition('big', 0);
  const value = Buffer.alloc(natsMaxPayloadBytes, 7);
  const batch = encodeRecordBatch([{ value }], { codec: 'none' });
  await assert.rejects(p.append(batch), { code: 'TOO_LARGE' });
  assert.equal(p.hw, 0);
  const fits = encodeRecordBatch([{ value: Buffer.alloc(natsMaxPayloadBytes - 4096, 7) }], { codec: 'none' });
  assert.equal((await p.append(fits)).baseOffset, 0, 'one just under the limit goes through');
});

test('retention in JetStream keeps the last batch, so a node that joins afterwards goes on from the right offset', { timeout: 60_000 }, async () => {
  const [a] = logs;
  await a.createTopic('expiring', { partitions: 1, retentionMs: 500 });
  const p = a.partition('expiring', 0);
  for (let i = 0; i < 5; i++) await p.append(batchOf([`old${i}a`, `old${i}b`]));
  await new Promise((r) => setTimeout(r, 700));
  const nc = await connect({ servers: nats.urls.split(',') });
  const jsm = await jetstreamManager(nc);
  const stream = streamName('sluice', p.epoch);
  assert.equal(await purgeExpired(jsm, stream, 500), 4, 'all but the last batch expired');
  assert.equal(await purgeExpired(jsm, stream, 500), 0, 'the last one is kept however old');
  const info = await jsm.streams.info(stream);
  assert.equal(info.state.messages, 1);
  await nc.close();

  // A node with an empty data directory: its mirror starts at the kept batch, not at 0.
  const c = await node();
  await until(() => c.hasTopic('expiring'), 'the topic on the new node');
  const pc = c.partition('expiring', 0);
  await until(() => pc.hw === 10, 'the new node to reach the end');
  assert.equal(pc.startOffset, 8, 'the mirror starts at the one batch JetStream still holds');
  const r = await pc.append(batchOf(['new']));
  assert.equal(r.baseOffset, 10, 'offsets go on after retention: none is given twice');
  const first = pc.read(8, 1 << 20)!;
  assert.equal(readBatchHeader(first.bytes, 0).baseOffset, 8);
});

test('the cluster log served to another thread (LogHost): its appends go through JetStream, its reads come from its own mapping of the mirror, topics of the other node reach it', { timeout: 60_000 }, async () => {
  const [a, b] = logs;
  const host = new LogHost(a, { startCheckMs: 50 });
  const { port1, port2 } = new MessageChannel();
  host.attach(port1);
  const thread = await ThreadLog.connect(port2);
  try {
    // Created through the thread: answered once every thread (and this node) knows it.
    await thread.createTopic('threaded', { partitions: 2 });
    assert.ok(a.hasTopic('threaded') && thread.hasTopic('threaded'));
    await until(() => b.hasTopic('threaded'), 'the topic on b');
    const tp = thread.partition('threaded', 1);
    const pb = b.partition('threaded', 1);
    assert.equal(tp.epoch, pb.epoch, 'the epochs of the cluster');
    const told: [number, number][] = [];
    tp.onCommit((_bytes, first, next) => told.push([first, next]));
    // From the thread and from the other node at once: dense offsets, each once.
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? pb : tp).append(batchOf([`v${i}`, `w${i}`]))));
    assert.deepEqual(
      results.map((r) => r.baseOffset).sort((x, y) => x - y),
      Array.from({ length: 30 }, (_, i) => 2 * i),
    );
    await until(() => tp.hw === 60, 'the thread to see every batch');
    // b's mirror follows JetStream on its own: compared once it holds every batch too.
    await until(() => pb.hw === 60, 'b to see every batch');
    // Runs of batches, in offset order, covering 0..60 once.
    let expect = 0;
    for (const [first, next] of told) {
      assert.equal(first, expect, 'no gap, no repeat');
      expect = next;
    }
    assert.equal(expect, 60);
    const mine = tp.read(0, 1 << 20)!;
    const theirs = pb.read(0, 1 << 20)!;
    assert.ok(Buffer.from(mine.bytes).equals(Buffer.from(theirs.bytes)), 'the thread reads the bytes every node holds');
    // A topic created on the other node appears on the thread; its deletion too.
    await b.createTopic('from-b', { partitions: 1 });
    await until(() => thread.hasTopic('from-b'), 'the other node\'s topic on the thread');
    await b.deleteTopic('from-b');
    await until(() => !thread.hasTopic('from-b'), 'its deletion on the thread');
  } finally {
    await thread.close();
    host.close();
    port1.close();
    port2.close();
  }
});

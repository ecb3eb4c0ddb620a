/**
 * Metadata and FindCoordinator under the flags that shape them: --kafka-advertised-host is
 * the host both name, and with --auto-create false a Metadata request that allows creation
 * creates nothing (as a broker with auto.create.topics.enable=false), while CreateTopics
 * still does.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ServerProcess, startServer } from '../helpers/server.ts';
import { RawKafka } from './helpers.ts';

let srv: ServerProcess;
before(async () => {
  srv = await startServer({ args: ['--auto-create', 'false', '--kafka-advertised-host', 'kafka.example.internal', '--partitions', '3'] });
});
after(async () => {
  await srv?.stop();
});

test('the advertised host is the one Metadata and FindCoordinator name', async () => {
  const raw = await RawKafka.connect(srv.kafkaPort);
  const m = await raw.request(3, 6, { topics: null, allowAutoTopicCreation: false });
  assert.deepEqual(m.brokers, [{ nodeId: 0, host: 'kafka.example.internal', port: srv.kafkaPort, rack: null }]);
  assert.equal(m.controllerId, 0);
  assert.equal(m.clusterId, 'sluice');
  const c = await raw.request(10, 2, { key: 'g', keyType: 0 });
  assert.deepEqual([c.errorCode, c.nodeId, c.host, c.port], [0, 0, 'kafka.example.internal', srv.kafkaPort]);
  raw.close();
});

test('--auto-create false: Metadata creates nothing, CreateTopics does', async () => {
  const raw = await RawKafka.connect(srv.kafkaPort);
  const m = await raw.request(3, 4, { topics: [{ name: 'wanted' }], allowAutoTopicCreation: true });
  assert.equal(m.topics[0].errorCode, 3);
  const created = await raw.request(19, 5, { topics: [{ name: 'wanted', numPartitions: -1, replicationFactor: -1, assignments: [], configs: [{ name: 'retention.bytes', value: '1048576' }] }], timeoutMs: 1000, validateOnly: false });
  assert.deepEqual([created.topics[0].errorCode, created.topics[0].numPartitions, created.topics[0].replicationFactor], [0, 3, 1]);
  const bad = await raw.request(19, 5, { topics: [{ name: 'compacted', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: 'cleanup.policy', value: 'compact' }] }], timeoutMs: 1000, validateOnly: false });
  assert.equal(bad.topics[0].errorCode, 40, 'an unsupported config is INVALID_CONFIG, not ignored');
  const dry = await raw.request(19, 5, { topics: [{ name: 'dry', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 1000, validateOnly: true });
  assert.equal(dry.topics[0].errorCode, 0);
  const after = await raw.request(3, 9, { topics: [{ name: 'wanted' }, { name: 'dry' }], allowAutoTopicCreation: false });
  assert.deepEqual(
    after.topics.map((t: { name: string; errorCode: number; partitions: unknown[] }) => [t.name, t.errorCode, t.partitions.length]),
    [
      ['wanted', 0, 3],
      ['dry', 3, 0],
    ],
  );
  raw.close();
});

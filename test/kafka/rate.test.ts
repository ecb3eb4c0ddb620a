/**
 * --publish-rate on the Kafka port: within the rate, answers come at once; over it, the batch
 * is stored and its answer held, with throttle_time_ms saying for how long (Kafka's quota
 * throttling), and the answers stay in request order.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { encodeRecordBatch } from '../../engine/codec/index.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';
import { RawKafka, decodeResponse, encodeRequest } from './helpers.ts';

let srv: ServerProcess;
before(async () => {
  srv = await startServer({ args: ['--publish-rate', '100'] });
});
after(async () => {
  await srv?.stop();
});

test('a producer over --publish-rate is throttled, not refused', async () => {
  const raw = await RawKafka.connect(srv.kafkaPort);
  assert.equal((await raw.request(3, 4, { topics: [{ name: 'slow' }], allowAutoTopicCreation: true })).topics[0].errorCode, 0);
  const batch = () => Buffer.from(encodeRecordBatch(Array.from({ length: 100 }, (_, i) => ({ value: Buffer.from(`r${i}`) }))));
  const body = () => ({ transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: 'slow', partitionData: [{ index: 0, records: batch() }] }] });
  for (let i = 1; i <= 3; i++) raw.write(encodeRequest(0, 7, i, body()));
  const answers = [];
  for (let i = 1; i <= 3; i++) {
    const r = decodeResponse(0, 7, (await raw.frame())!);
    assert.equal(r.correlationId, i);
    answers.push(r.body);
  }
  assert.deepEqual(
    answers.map((a) => [a.responses[0].partitionResponses[0].errorCode, a.responses[0].partitionResponses[0].baseOffset]),
    [
      [0, 0],
      [0, 100],
      [0, 200],
    ],
    'every batch stored, in order',
  );
  assert.equal(answers[0].throttleTimeMs, 0, 'the first second of burst is free');
  assert.ok(answers[1].throttleTimeMs > 0 && answers[2].throttleTimeMs > answers[1].throttleTimeMs / 2, JSON.stringify(answers.map((a) => a.throttleTimeMs)));
  raw.close();
});

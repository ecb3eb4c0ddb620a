/**
 * The WebSocket and the Kafka port are two doors to one log (wire contract §8): a record
 * published over the WebSocket is read by kcat with the same offset, key, value and headers,
 * and a record produced by kcat reaches a WebSocket subscriber live.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, type ServerProcess, http, startServer, utf8 } from '../helpers/server.ts';
import { kcat } from './helpers.ts';

describe('WebSocket <-> Kafka', () => {
  let srv: ServerProcess;
  let broker: string;
  before(async () => {
    srv = await startServer({ args: ['--partitions', '1'] });
    broker = `127.0.0.1:${srv.kafkaPort}`;
  });
  after(async () => {
    await srv?.stop();
  });

  test('a record published over the WebSocket is read by kcat with the same offset, key, value and headers', async () => {
    const ws = await Client.connect(srv.url);
    const acks = [];
    for (let i = 0; i < 5; i++) {
      acks.push(await ws.request({ op: 'pub', topic: 'from-ws', key: `key-${i}`, value: `value ${i} ✓`, headers: { source: 'ws', n: String(i) } }));
    }
    ws.close();
    assert.deepEqual(
      acks.map((a) => [a.op, a.offset]),
      [0, 1, 2, 3, 4].map((i) => ['ack', i]),
    );
    const r = await kcat(['-b', broker, '-C', '-t', 'from-ws', '-o', 'beginning', '-e', '-J']);
    assert.equal(r.code, 0, r.stderr);
    const got = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(got.length, 5);
    got.forEach((m, i) => {
      assert.equal(m.offset, i);
      assert.equal(m.key, `key-${i}`);
      assert.equal(m.payload, `value ${i} ✓`);
      assert.deepEqual(m.headers, ['source', 'ws', 'n', String(i)]);
    });
  });

  test('a record produced by kcat reaches a WebSocket subscriber live', async () => {
    assert.equal((await http('PUT', `${srv.http}/v1/topics/from-kafka`, { partitions: 1 })).status, 201);
    const ws = await Client.connect(srv.url);
    const subbed = await ws.request({ op: 'sub', topic: 'from-kafka', from: 'latest' });
    assert.equal(subbed.op, 'subbed', JSON.stringify(subbed));
    const p = await kcat(['-b', broker, '-P', '-t', 'from-kafka', '-K', ':', '-H', 'via=kcat'], 'k1:first\nk2:second\n');
    assert.equal(p.code, 0, p.stderr);
    await ws.until(() => ws.records.length >= 2, 'the two records over the WebSocket');
    ws.close();
    assert.deepEqual(
      ws.records.map((r) => [r.offset, utf8(r.key), utf8(r.value), r.headers.map((h) => [h.key, utf8(h.value)])]),
      [
        [0, 'k1', 'first', [['via', 'kcat']]],
        [1, 'k2', 'second', [['via', 'kcat']]],
      ],
    );
  });
});

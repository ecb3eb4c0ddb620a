/**
 * The SDK subscribing to a topic that does not exist yet (server side: wire contract §3,
 * docs/protocol.md "Subscribing"): `subscribe()` resolves once the topic is created, with
 * the new partitions' epochs, and its records start at offset 0, with no change to the SDK:
 * the server defers the `subbed` answer, which the SDK awaits without a timeout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Message, type SubscribedEvent, connect } from '../../src/client/index.ts';
import { type ServerProcess, startServer } from './server-process.ts';

describe('SDK: subscribe before the topic exists', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer(['--partitions', '1']);
  });
  after(async () => {
    await server?.stop();
  });

  test('subscribe() resolves once a publish creates the topic, and the records start at 0', async () => {
    const reader = await connect(server.url);
    const writer = await connect(server.url);
    try {
      const got: Message[] = [];
      const events: SubscribedEvent[] = [];
      let resolved = false;
      const subscribing = reader
        .subscribe('sdk-later', { from: 'latest', onSubscribed: (e) => events.push(e) }, (records) => got.push(...records))
        .then((s) => ((resolved = true), s));
      // Let the sub reach the server and wait there; then make the topic.
      await reader.publish('other-topic', 'x');
      assert.equal(resolved, false, 'still waiting for the topic');
      for (const v of ['a', 'b', 'c']) await writer.publish('sdk-later', v);
      const sub = await subscribing;
      for (let i = 0; i < 400 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 25));
      assert.deepEqual(got.map((m) => [m.offset, m.text()]), [[0, 'a'], [1, 'b'], [2, 'c']]);
      assert.equal(events.length, 1);
      assert.equal(events[0].reason, 'initial');
      assert.match(events[0].partitions[0].epoch, /^[0-9a-f]{16}$/);
      assert.equal(sub.positions()[0].offset, 3);
    } finally {
      reader.close();
      writer.close();
    }
  });

  test('a sub waiting for its topic longer than requestTimeoutMs keeps its connection: no timeout, no reconnection', async () => {
    const reader = await connect(server.url, { requestTimeoutMs: 300 });
    const writer = await connect(server.url);
    try {
      let drops = 0;
      reader.on('disconnected', () => drops++);
      const got: Message[] = [];
      const subscribing = reader.subscribe('sdk-much-later', { from: 'earliest' }, (records) => got.push(...records));
      // Several request timeouts go by while the topic does not exist.
      await new Promise((r) => setTimeout(r, 1200));
      await writer.publish('sdk-much-later', 'finally');
      await subscribing;
      for (let i = 0; i < 400 && got.length < 1; i++) await new Promise((r) => setTimeout(r, 25));
      assert.deepEqual(got.map((m) => [m.offset, m.text()]), [[0, 'finally']]);
      assert.equal(drops, 0, 'the connection was never dropped for a timeout');
    } finally {
      reader.close();
      writer.close();
    }
  });
});

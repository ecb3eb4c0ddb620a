/**
 * The SDK in Node against a real `sluice serve` process: publish/subscribe, resume across a
 * server restart with records published during the outage (no gap, no duplicate), the
 * batching LZ4 producer, and wire errors surfaced as typed SluiceErrors.
 */
import assert from 'node:assert/strict';
import { until as waitUntil } from '../helpers/until.ts';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { partitionForKey, readBatchHeader } from '../../engine/codec/index.ts';
import { type Message, SluiceError, type SubscribedEvent, connect } from '../../src/client/index.ts';
import { type ServerProcess, startServer } from './server-process.ts';

const enc = new TextEncoder();

/** Waits (bounded) until `cond` holds. */
/** Waits at most `tries` x 25 ms (10 s). */
const until = (cond: () => boolean, what: string, tries = 400): Promise<void> => waitUntil(cond, what, tries * 25);

/**
 * Holds a client's reconnections until the test opens it: `getToken` is awaited before every
 * connection attempt (auth is off, so the token itself is ignored by the server).
 */
function reconnectGate(): { getToken: () => Promise<string>; close(): void; open(): void } {
  let release: () => void = () => {};
  let gate: Promise<void> = Promise.resolve();
  return {
    getToken: () => gate.then(() => 'unused'),
    close() {
      gate = new Promise((r) => (release = r));
    },
    open() {
      release();
    },
  };
}

async function createTopic(s: ServerProcess, topic: string, partitions: number): Promise<void> {
  const res = await fetch(`${s.httpUrl}/v1/topics/${topic}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ partitions }) });
  assert.equal(res.status, 201, await res.text());
}

describe('SDK against a real server', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer(['--partitions', '1']);
  });
  after(async () => {
    await server?.stop();
  });

  test('publish and subscribe: values, keys, headers, text()', async () => {
    const c = await connect(server.url);
    try {
      const a0 = await c.publish('basic', 'hello', { key: 'k1', headers: { h: 'v' } });
      assert.deepEqual(a0, { partition: 0, offset: 0 });
      const a1 = await c.publish('basic', new Uint8Array([0, 1, 2, 255]));
      assert.equal(a1.offset, 1);
      const a2 = await c.publish('basic', null);
      assert.equal(a2.offset, 2);
      const got: Message[] = [];
      const sub = await c.subscribe('basic', { from: 'earliest' }, (recs) => got.push(...recs));
      await until(() => got.length === 3, 'three records');
      assert.equal(got[0].text(), 'hello');
      assert.equal(got[0].keyText(), 'k1');
      assert.equal(got[0].header('h'), 'v');
      assert.equal(got[0].topic, 'basic');
      assert.deepEqual([...got[1].value!], [0, 1, 2, 255]);
      assert.equal(got[2].value, null);
      assert.deepEqual(
        got.map((m) => m.offset),
        [0, 1, 2],
      );
      // Live records after the catch-up.
      await c.publish('basic', 'live');
      await until(() => got.length === 4, 'the live record');
      assert.equal(got[3].text(), 'live');
      assert.deepEqual(sub.positions().map((p) => p.offset), [4]);
      await sub.unsubscribe();
      await c.publish('basic', 'after unsub');
      await c.ping();
      assert.equal(got.length, 4);
    } finally {
      c.close();
    }
  });

  test('from an offset skips the records below it (a batch is never split)', async () => {
    const c = await connect(server.url);
    try {
      const p = c.producer({ lingerMs: 50 });
      await Promise.all(Array.from({ length: 20 }, (_, i) => p.send('skip', `r${i}`)));
      const got: number[] = [];
      await c.subscribe('skip', { from: { offset: 7 } }, (recs) => got.push(...recs.map((r) => r.offset)));
      await until(() => got.length === 13, '13 records');
      assert.deepEqual(got, Array.from({ length: 13 }, (_, i) => 7 + i));
    } finally {
      c.close();
    }
  });

  test('resume across a server restart with records published during the outage: no gap, no duplicate', async () => {
    // The subscriber stays away until the records another client publishes after the restart are stored.
    const gate = reconnectGate();
    const subscriber = await connect(server.url, { getToken: gate.getToken });
    const publisher = await connect(server.url);
    const events: SubscribedEvent[] = [];
    const states: string[] = [];
    subscriber.on('state', (e) => states.push(e.newState));
    try {
      const got: number[] = [];
      const values: string[] = [];
      // The topic does not exist until the first publish: the subscription waits for it.
      const subscribing = subscriber.subscribe('resume', { from: 'earliest' }, (recs) => {
        for (const r of recs) {
          got.push(r.offset);
          values.push(r.text());
        }
      });
      await publisher.publish('resume', 'first');
      const sub = await subscribing;
      sub.on('subscribed', (e) => events.push(e));
      const prod = publisher.producer();
      await Promise.all(Array.from({ length: 99 }, (_, i) => prod.send('resume', `before ${i}`)));
      await until(() => got.length === 100, '100 records before the restart');
      const epochBefore = sub.positions()[0].epoch;
      let queued: Promise<unknown>[] = [];
      gate.close();
      await server.restart({
        whileDown: async () => {
          await until(() => subscriber.state === 'connecting' && publisher.state === 'connecting', 'both clients to notice');
          // Publishes asked while the server is down wait in the bounded queue and go out once reconnected.
          queued = Array.from({ length: 10 }, (_, i) => subscriber.publish('resume', `queued ${i}`));
        },
      });
      await until(() => publisher.state === 'connected', 'the publisher to reconnect');
      const during = await Promise.all(Array.from({ length: 50 }, (_, i) => publisher.publish('resume', `during ${i}`)));
      assert.equal(during.length, 50);
      assert.equal(subscriber.state, 'connecting', 'the subscriber was away while those were published');
      gate.open();
      const acks = (await Promise.all(queued)) as { offset: number }[];
      assert.equal(acks.length, 10);
      await until(() => got.length === 160, 'all 160 records after the restart');
      await publisher.publish('resume', 'after');
      await until(() => got.length === 161, 'the live record after the restart');
      assert.deepEqual(got, Array.from({ length: 161 }, (_, i) => i), 'every offset exactly once, in order');
      assert.equal(new Set(values).size, 161);
      assert.ok(states.includes('connecting'));
      const resumed = events.at(-1)!;
      assert.equal(resumed.resumed, true, 'resumed exactly');
      assert.equal(resumed.reason, 'resumed');
      assert.equal(resumed.partitions[0].epoch, epochBefore);
    } finally {
      subscriber.close();
      publisher.close();
    }
  });

  test('producer: keyed placement over meta, batching, LZ4 stored as sent', async () => {
    await createTopic(server, 'batched', 4);
    const c = await connect(server.url);
    try {
      const p = c.producer({ lingerMs: 20, batchBytes: 64 * 1024, compression: 'lz4' });
      const n = 4000;
      const value = (i: number): string => `record ${i} `.padEnd(100, 'x');
      const acks = await Promise.all(Array.from({ length: n }, (_, i) => p.send('batched', value(i), { key: `user-${i % 50}`, headers: { i: String(i) } })));
      for (let i = 0; i < n; i++) assert.equal(acks[i].partition, partitionForKey(enc.encode(`user-${i % 50}`), 4), `record ${i} placed by murmur2`);
      // Offsets per partition are dense from 0 and follow send order.
      const perPartition = new Map<number, number[]>();
      for (const a of acks) perPartition.set(a.partition, [...(perPartition.get(a.partition) ?? []), a.offset]);
      for (const offs of perPartition.values()) assert.deepEqual(offs, Array.from({ length: offs.length }, (_, i) => i));
      const got = new Map<string, Message>();
      await c.subscribe('batched', { from: 'earliest' }, (recs) => {
        for (const r of recs) got.set(`${r.partition}/${r.offset}`, r);
      });
      await until(() => got.size === n, `${n} records back`);
      for (let i = 0; i < n; i++) {
        const m = got.get(`${acks[i].partition}/${acks[i].offset}`)!;
        assert.equal(m.text(), value(i));
        assert.equal(m.keyText(), `user-${i % 50}`);
        assert.equal(m.header('i'), String(i));
      }
      // The batches on disk are the LZ4 batches the producer built (codec 3), fewer than the records.
      const dir = path.join(server.dataDir, 'batched-0');
      const seg = fs.readFileSync(path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.log'))!));
      let batches = 0;
      for (let pos = 0; pos < seg.length; ) {
        const h = readBatchHeader(seg, pos);
        if (h.size <= 0) break;
        assert.equal(h.codec, 3);
        batches++;
        pos += h.size;
      }
      assert.ok(batches > 0 && batches < perPartition.get(0)!.length, `${batches} batches for ${perPartition.get(0)!.length} records`);
    } finally {
      c.close();
    }
  });

  test('wire errors are typed SluiceErrors with their code', async () => {
    const c = await connect(server.url);
    try {
      await assert.rejects(c.meta('no-such-topic'), (e: unknown) => e instanceof SluiceError && e.code === 'UNKNOWN_TOPIC');
      // (A subscribe to a topic that does not exist waits for it: test/client/subscribe-before-create.test.ts.)
      await c.publish('errs', 'x');
      await assert.rejects(
        c.subscribe('errs', { from: { offset: 100 } }, () => {}),
        (e: unknown) => e instanceof SluiceError && e.code === 'OFFSET_OUT_OF_RANGE',
      );
      await c.subscribe('errs', { partition: 0 }, () => {});
      await assert.rejects(
        c.subscribe('errs', { partition: 0 }, () => {}),
        (e: unknown) => e instanceof SluiceError && e.code === 'BAD_REQUEST',
      );
      await assert.rejects(c.publish('bad/name', 'x'), (e: unknown) => e instanceof SluiceError && e.code === 'BAD_REQUEST');
      // A frame over --max-frame-bytes would close the connection: refused before it is sent.
      await assert.rejects(
        c.publish('errs', 'x'.repeat(2 * 1024 * 1024)),
        (e: unknown) => e instanceof SluiceError && e.code === 'TOO_LARGE' && e.reason === 'FRAME_TOO_LARGE',
      );
      // Keyed placement over a topic that does not exist: created by a JSON publish, unless the key is not text.
      await assert.rejects(
        c.producer().send('not-created-yet', 'v', { key: new Uint8Array([0xff, 0xfe]) }),
        (e: unknown) => e instanceof SluiceError && e.code === 'UNKNOWN_TOPIC',
      );
      const prod = c.producer();
      const created = await Promise.all([prod.send('created-by-key', 'a', { key: 'k' }), prod.send('created-by-key', 'b', { key: 'k' }), prod.send('created-by-key', 'c', { key: 'k' })]);
      assert.deepEqual(created.map((a) => a.offset), [0, 1, 2]);
      assert.equal(c.state, 'connected', 'errors leave the connection open');
    } finally {
      c.close();
    }
    await assert.rejects(c.publish('errs', 'late'), (e: unknown) => e instanceof SluiceError && e.code === 'UNAVAILABLE' && e.reason === 'CLOSED');
  });

  test('a resume point of another epoch starts from the earliest record and says so', async () => {
    const c = await connect(server.url);
    try {
      await c.publish('epochs', 'a');
      await c.publish('epochs', 'b');
      const got: string[] = [];
      const events: SubscribedEvent[] = [];
      const sub = await c.subscribe('epochs', { partition: 0, from: { epoch: 'not-this-one', offset: 1 }, onSubscribed: (e) => events.push(e) }, (recs) =>
        got.push(...recs.map((r) => r.text())),
      );
      await until(() => got.length === 2, 'both records');
      assert.deepEqual(got, ['a', 'b']);
      assert.equal(sub.lastSubscribed, events.at(-1));
      assert.equal(events.at(-1)!.resumed, false);
      assert.equal(events.at(-1)!.reason, 'epoch-changed');
    } finally {
      c.close();
    }
  });

  test('a checkpoint {epoch, offset} from before a delete and re-create restarts from earliest (epoch-changed), never OFFSET_OUT_OF_RANGE', async () => {
    const c = await connect(server.url);
    try {
      await createTopic(server, 'recreated', 1);
      const p = c.producer();
      await Promise.all(Array.from({ length: 20 }, (_, i) => p.send('recreated', `old ${i}`)));
      const old: number[] = [];
      const first = await c.subscribe('recreated', { partition: 0, from: 'earliest' }, (recs) => old.push(...recs.map((r) => r.offset)));
      await until(() => old.length === 20, 'the old history');
      const checkpoint = first.positions()[0];
      assert.equal(checkpoint.offset, 20);
      await first.unsubscribe();
      assert.equal((await fetch(`${server.httpUrl}/v1/topics/recreated`, { method: 'DELETE' })).status, 200);
      await createTopic(server, 'recreated', 1);
      // The new history is shorter than the checkpoint's offset: a plain {offset: 20} is out of range.
      for (let i = 0; i < 3; i++) await c.publish('recreated', `new ${i}`);
      await assert.rejects(c.subscribe('recreated', { partition: 0, from: { offset: checkpoint.offset } }, () => {}), (e: unknown) => e instanceof SluiceError && e.code === 'OFFSET_OUT_OF_RANGE');
      const got: string[] = [];
      const events: SubscribedEvent[] = [];
      const sub = await c.subscribe('recreated', { partition: 0, from: { epoch: checkpoint.epoch, offset: checkpoint.offset }, onSubscribed: (e) => events.push(e) }, (recs) =>
        got.push(...recs.map((r) => `${r.offset}:${r.text()}`)),
      );
      await until(() => got.length === 3, 'the new history from its start');
      assert.deepEqual(got, ['0:new 0', '1:new 1', '2:new 2']);
      assert.deepEqual(events.map((e) => [e.reason, e.resumed]), [['epoch-changed', false]]);
      assert.notEqual(sub.positions()[0].epoch, checkpoint.epoch);
      assert.equal(sub.state, 'subscribed');
    } finally {
      c.close();
    }
  });

  test('a topic deleted and created again while the subscriber was away: detected by epoch, restarted from the earliest record', async () => {
    const gate = reconnectGate();
    const subscriber = await connect(server.url, { getToken: gate.getToken });
    const admin = await connect(server.url);
    try {
      await createTopic(server, 'reborn', 1);
      for (let i = 0; i < 5; i++) await admin.publish('reborn', `old ${i}`);
      const got: string[] = [];
      const events: SubscribedEvent[] = [];
      await subscriber.subscribe('reborn', { from: 'earliest', onSubscribed: (e) => events.push(e) }, (recs) => got.push(...recs.map((r) => `${r.offset}:${r.text()}`)));
      await until(() => got.length === 5, 'the old records');
      gate.close();
      await server.restart();
      // The subscriber stays away while the topic gets a new history.
      await until(() => admin.state === 'connected', 'the admin client to reconnect');
      assert.equal((await fetch(`${server.httpUrl}/v1/topics/reborn`, { method: 'DELETE' })).status, 200);
      await createTopic(server, 'reborn', 1);
      for (let i = 0; i < 10; i++) await admin.publish('reborn', `new ${i}`);
      assert.equal(subscriber.state, 'connecting');
      gate.open();
      await until(() => got.length === 15, 'the new history', 800);
      assert.deepEqual(got.slice(5), Array.from({ length: 10 }, (_, i) => `${i}:new ${i}`));
      const last = events.at(-1)!;
      assert.equal(last.resumed, false);
      assert.equal(last.reason, 'epoch-changed');
    } finally {
      subscriber.close();
      admin.close();
    }
  });

  test('a deleted topic ends its subscriptions with UNKNOWN_TOPIC', async () => {
    const c = await connect(server.url);
    try {
      await c.publish('doomed', 'x');
      const sub = await c.subscribe('doomed', {}, () => {});
      const ended = new Promise<Error>((resolve) => sub.on('error', resolve));
      const res = await fetch(`${server.httpUrl}/v1/topics/doomed`, { method: 'DELETE' });
      assert.ok(res.ok, `DELETE answered ${res.status}`);
      const err = await ended;
      assert.ok(err instanceof SluiceError && err.code === 'UNKNOWN_TOPIC');
      assert.equal(sub.state, 'failed');
    } finally {
      c.close();
    }
  });
});

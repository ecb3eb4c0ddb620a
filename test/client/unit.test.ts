/**
 * The SDK's connection machinery against a scripted WebSocket (injected through
 * `options.WebSocket`): backoff bounds, state events, the transport generation that mutes a
 * dead socket, what happens to publishes in flight when the connection drops, the bounded
 * queue, uint32 request ids.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dataHeader, encodeRecordBatch } from '../../engine/codec/index.ts';
import { dataFrame as frameOf } from '../../src/gateway/frames.ts';
import { Backoff, ConnectionState, type GapEvent, SluiceClient, SluiceError, type SubscribedEvent, type WebSocketLike } from '../../src/client/index.ts';

const enc = new TextEncoder();

/** A DATA frame holding one batch of `values` from `baseOffset` (protocol §3). */
function dataFrame(topic: string, partition: number, baseOffset: number, values: string[]): ArrayBuffer {
  const batch = encodeRecordBatch(values.map((v) => ({ value: enc.encode(v) })), { codec: 'lz4', baseOffset });
  const f = frameOf(dataHeader(topic, partition), batch);
  return f.buffer.slice(f.byteOffset, f.byteOffset + f.length) as ArrayBuffer;
}

class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  binaryType = 'blob';
  readyState = 0;
  bufferedAmount = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  sent: (string | Uint8Array)[] = [];
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string | Uint8Array): void {
    this.sent.push(data);
  }
  close(): void {
    this.readyState = 3;
  }
  // driven by the test
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  reply(obj: unknown): void {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
  json(): Record<string, unknown>[] {
    return this.sent.filter((s): s is string => typeof s === 'string').map((s) => JSON.parse(s) as Record<string, unknown>);
  }
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

async function nextSocket(n: number): Promise<FakeSocket> {
  for (let i = 0; i < 200 && FakeSocket.all.length < n; i++) await tick();
  assert.ok(FakeSocket.all.length >= n, `socket ${n} was opened`);
  return FakeSocket.all[n - 1];
}

async function client(opts: ConstructorParameters<typeof SluiceClient>[1] = {}): Promise<{ c: SluiceClient; first: FakeSocket; base: number }> {
  const base = FakeSocket.all.length;
  const c = new SluiceClient('ws://127.0.0.1:9', { WebSocket: FakeSocket, backoff: { baseMs: 1, maxMs: 1 }, pingIntervalMs: 0, ...opts });
  const connected = c.connect();
  const first = await nextSocket(base + 1);
  first.open();
  await connected;
  return { c, first, base };
}

describe('SDK connection machinery', () => {
  test('full-jitter backoff stays within [0, min(max, base * 2^n)]', () => {
    const hi = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.999999 });
    assert.deepEqual(
      Array.from({ length: 6 }, () => hi.next()),
      [99, 199, 399, 799, 999, 999],
    );
    const lo = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
    assert.equal(lo.next(), 0);
    hi.reset();
    assert.equal(hi.next(), 99);
  });

  test('the URL gets /v1/ws and the token; states go through one event', async () => {
    const states: string[] = [];
    const base = FakeSocket.all.length;
    const c = new SluiceClient('ws://127.0.0.1:9', { WebSocket: FakeSocket, token: 'T.O.K', backoff: { baseMs: 1, maxMs: 1 }, pingIntervalMs: 0 });
    c.on('state', (e) => states.push(`${e.oldState}>${e.newState}`));
    const p = c.connect();
    const s1 = await nextSocket(base + 1);
    assert.equal(s1.url, 'ws://127.0.0.1:9/v1/ws?token=T.O.K');
    s1.open();
    await p;
    s1.drop();
    (await nextSocket(base + 2)).open();
    c.close();
    assert.deepEqual(states, ['disconnected>connecting', 'connecting>connected', 'connected>connecting', 'connecting>connected', 'connected>closed']);
  });

  test('retryPublishes: in-flight publishes are sent again, in order, on the next socket; a dead socket is muted', async () => {
    const { c, first, base } = await client();
    const a = c.publish('t', 'a');
    const b = c.publish('t', 'b');
    const [pa, pb] = first.json();
    assert.equal(pa.value, 'a');
    first.drop();
    // A late answer on the dead socket must not settle anything.
    first.reply({ op: 'ack', id: pa.id, partition: 0, offset: 99 });
    const second = await nextSocket(base + 2);
    second.open();
    const resent = second.json();
    assert.deepEqual(resent.map((m) => m.value), ['a', 'b']);
    second.reply({ op: 'ack', id: resent[0].id, partition: 0, offset: 0 });
    second.reply({ op: 'ack', id: resent[1].id, partition: 0, offset: 1 });
    assert.deepEqual(await a, { partition: 0, offset: 0 });
    assert.deepEqual(await b, { partition: 0, offset: 1 });
    assert.notEqual(pb.id, undefined);
    c.close();
  });

  test('retryPublishes: false rejects in-flight publishes with DISCONNECTED', async () => {
    const { c, first } = await client({ retryPublishes: false });
    const a = c.publish('t', 'a');
    first.drop();
    await assert.rejects(a, (e: unknown) => e instanceof SluiceError && e.code === 'UNAVAILABLE' && e.reason === 'DISCONNECTED');
    c.close();
  });

  test('the publish queue is bounded: QUEUE_FULL, never a silent drop; close() rejects the rest', async () => {
    const { c, first } = await client({ maxPendingPublishes: 2 });
    const a = c.publish('t', 'a');
    const b = c.publish('t', 'b');
    await assert.rejects(c.publish('t', 'c'), (e: unknown) => e instanceof SluiceError && e.reason === 'QUEUE_FULL');
    first.reply({ op: 'error', id: first.json()[0].id, code: 'FORBIDDEN', message: 'no' });
    await assert.rejects(a, (e: unknown) => e instanceof SluiceError && e.code === 'FORBIDDEN');
    c.close();
    await assert.rejects(b, (e: unknown) => e instanceof SluiceError && e.reason === 'CLOSED');
    assert.equal(c.state, ConnectionState.Closed);
  });

  test('subscriptions: records below the position are skipped, a gap is reported once, resume asks for next, a dead socket\'s data is ignored', async () => {
    const { c, first, base } = await client();
    const got: number[] = [];
    const gaps: GapEvent[] = [];
    const subscribed: SubscribedEvent[] = [];
    const p = c.subscribe('t', { partition: 0, from: { offset: 3 }, onGap: (g) => gaps.push(g), onSubscribed: (e) => subscribed.push(e) }, (recs) => got.push(...recs.map((r) => r.offset)));
    const sub1 = first.json().at(-1)!;
    assert.deepEqual({ op: sub1.op, topic: sub1.topic, partition: sub1.partition, from: sub1.from }, { op: 'sub', topic: 't', partition: 0, from: { offset: 3 } });
    first.reply({ op: 'subbed', id: sub1.id, topic: 't', partitions: [{ partition: 0, epoch: 'e1', next: 3, hw: 6 }] });
    const sub = await p;
    // "Only the first batch ... may hold records below the offset it started from": 0..2 are skipped.
    first.onmessage!({ data: dataFrame('t', 0, 0, ['a', 'b', 'c', 'd', 'e']) });
    assert.deepEqual(got, [3, 4]);
    // Retention deleted 5..9: the server says so, then goes on from 10.
    first.reply({ op: 'gap', topic: 't', partition: 0, from: 5, to: 10 });
    first.onmessage!({ data: dataFrame('t', 0, 10, ['k', 'l']) });
    assert.deepEqual(got, [3, 4, 10, 11]);
    assert.deepEqual(gaps, [{ topic: 't', partition: 0, from: 5, to: 10 }]);
    first.drop();
    first.onmessage!({ data: dataFrame('t', 0, 12, ['m']) }); // late, from the dead socket
    const second = await nextSocket(base + 2);
    second.open();
    const resume = second.json().at(-1)!;
    assert.deepEqual(resume.from, { offset: 12 });
    second.reply({ op: 'subbed', id: resume.id, topic: 't', partitions: [{ partition: 0, epoch: 'e1', next: 12, hw: 13 }] });
    second.onmessage!({ data: dataFrame('t', 0, 12, ['m']) });
    assert.deepEqual(got, [3, 4, 10, 11, 12]);
    assert.deepEqual(subscribed.map((e) => [e.reason, e.resumed]), [['initial', false], ['resumed', true]]);
    assert.deepEqual(sub.positions(), [{ partition: 0, epoch: 'e1', offset: 13, hw: 13 }]);
    c.close();
  });

  test('a DATA frame that fails its CRC drops the connection and the resume reads it again', async () => {
    const { c, first, base } = await client();
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    const got: string[] = [];
    const p = c.subscribe('t', { partition: 0, from: 'earliest' }, (recs) => got.push(...recs.map((r) => r.text())));
    first.reply({ op: 'subbed', id: first.json().at(-1)!.id, topic: 't', partitions: [{ partition: 0, epoch: 'e1', next: 0, hw: 1 }] });
    await p;
    const bad = new Uint8Array(dataFrame('t', 0, 0, ['x']));
    bad[bad.length - 2] ^= 0xff;
    first.onmessage!({ data: bad.buffer });
    assert.equal(got.length, 0);
    assert.match(errors[0].message, /CRC/);
    const second = await nextSocket(base + 2);
    second.open();
    const resume = second.json().at(-1)!;
    assert.deepEqual(resume.from, { offset: 0 });
    c.close();
  });

  test('request ids are uint32 and wrap', async () => {
    const { c, first } = await client();
    (c as unknown as { nextId: number }).nextId = 0xfffffffe;
    const p1 = c.ping();
    const p2 = c.ping();
    const ids = first.json().map((m) => m.id);
    assert.deepEqual(ids, [0xffffffff, 0]);
    for (const id of ids) first.reply({ op: 'pong', id });
    await p1;
    await p2;
    c.close();
  });

  test('an expired token (close 4001) without getToken closes the client with UNAUTHORIZED', async () => {
    const { c, first } = await client();
    const closed = new Promise<void>((r) => c.on('state', (e) => e.newState === 'closed' && r()));
    first.drop(4001);
    await closed;
    await assert.rejects(c.publish('t', 'x'), (e: unknown) => e instanceof SluiceError && e.code === 'UNAUTHORIZED');
  });
});

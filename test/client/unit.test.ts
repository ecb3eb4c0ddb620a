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
import { Backoff, ConnectionState, type GapEvent, SluiceClient, SluiceError, type SubscribedEvent, SubscriptionState, type WebSocketLike } from '../../src/client/index.ts';
import { refreshDelayMs, tokenExpiryMs, tokenRefreshDelayMinMs } from '../../src/client/token-refresh.ts';

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
  /** Opens and answers the client's handshake ping (which is then left out of `sent`). */
  open(): void {
    this.openOnly();
    const ping = this.json().at(-1);
    assert.equal(ping?.op, 'ping', 'the client pings first');
    this.sent.pop();
    this.reply({ op: 'pong', id: ping!.id });
  }
  /** Opens without answering: the client is not connected until the server answers. */
  openOnly(): void {
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

describe('SDK recovery, failover and auth against a scripted server', () => {
  /** The last `sub` the socket got, answered with `partitions`. */
  function answerSub(s: FakeSocket, partitions: { partition: number; epoch: string; next: number; hw: number }[]): Record<string, unknown> {
    const sub = s.json().filter((m) => m.op === 'sub').at(-1)!;
    s.reply({ op: 'subbed', id: sub.id, topic: sub.topic, partitions });
    return sub;
  }

  test('a subscription reports every state change: subscribing → subscribed, again around a reconnection, unsubscribed at the end', async () => {
    const { c, first, base } = await client();
    const states: string[] = [];
    const p = c.subscribe('t', { partition: 0, from: 'earliest', onState: (e) => states.push(`${e.oldState}>${e.newState}`) }, () => {});
    answerSub(first, [{ partition: 0, epoch: 'e1', next: 0, hw: 0 }]);
    const sub = await p;
    assert.equal(sub.state, SubscriptionState.Subscribed);
    first.drop();
    assert.equal(sub.state, SubscriptionState.Subscribing);
    const second = await nextSocket(base + 2);
    second.open();
    answerSub(second, [{ partition: 0, epoch: 'e1', next: 0, hw: 0 }]);
    assert.equal(sub.state, SubscriptionState.Subscribed);
    const done = sub.unsubscribe();
    second.reply({ op: 'unsubbed', id: second.json().at(-1)!.id });
    await done;
    assert.deepEqual(states, ['subscribing>subscribed', 'subscribed>subscribing', 'subscribing>subscribed', 'subscribed>unsubscribed']);
    // A subscription the server ends fails.
    const q = c.subscribe('u', {}, () => {});
    answerSub(second, [{ partition: 0, epoch: 'e9', next: 0, hw: 0 }]);
    const ended = await q;
    const failedStates: string[] = [];
    ended.on('state', (e) => failedStates.push(e.newState));
    ended.on('error', () => {});
    second.reply({ op: 'error', code: 'UNKNOWN_TOPIC', message: 'deleted', topic: 'u', partition: 0 });
    assert.deepEqual(failedStates, ['failed']);
    c.close();
  });

  test('several URLs: each lost connection or failed attempt moves to the next one, in order, round and round', async () => {
    const base = FakeSocket.all.length;
    const c = new SluiceClient(['ws://a:1', 'ws://b:2', 'http://c:3'], { WebSocket: FakeSocket, backoff: { baseMs: 1, maxMs: 1 }, pingIntervalMs: 0 });
    assert.deepEqual(c.urls, ['ws://a:1/v1/ws', 'ws://b:2/v1/ws', 'ws://c:3/v1/ws']);
    const lost: string[] = [];
    c.on('disconnected', (e) => lost.push(e.url));
    const p = c.connect();
    (await nextSocket(base + 1)).drop(); // a: refused
    const b = await nextSocket(base + 2);
    assert.equal(b.url, 'ws://b:2/v1/ws');
    b.open();
    await p;
    assert.equal(c.url, 'ws://b:2/v1/ws');
    b.drop(); // b dies
    const cc = await nextSocket(base + 3);
    assert.equal(cc.url, 'ws://c:3/v1/ws');
    cc.drop();
    assert.equal((await nextSocket(base + 4)).url, 'ws://a:1/v1/ws');
    assert.deepEqual(lost, ['ws://a:1/v1/ws', 'ws://b:2/v1/ws', 'ws://c:3/v1/ws']);
    c.close();
  });

  test('retryFirstConnect: false tries each URL once, then connect() fails', async () => {
    const base = FakeSocket.all.length;
    const c = new SluiceClient(['ws://a:1', 'ws://b:2'], { WebSocket: FakeSocket, backoff: { baseMs: 1, maxMs: 1 }, pingIntervalMs: 0, retryFirstConnect: false });
    const p = c.connect();
    (await nextSocket(base + 1)).drop();
    (await nextSocket(base + 2)).drop();
    await assert.rejects(p, (e: unknown) => e instanceof SluiceError && e.reason === 'DISCONNECTED' && /a:1.*b:2/.test(e.message));
    assert.equal(FakeSocket.all.length, base + 2);
  });

  test('a socket closed with 4001/4003 before the first answer fails connect() at once with UNAUTHORIZED/FORBIDDEN', async () => {
    for (const [code, want] of [
      [4001, 'UNAUTHORIZED'],
      [4003, 'FORBIDDEN'],
    ] as const) {
      const base = FakeSocket.all.length;
      const c = new SluiceClient('ws://127.0.0.1:9', { WebSocket: FakeSocket, backoff: { baseMs: 1, maxMs: 1 }, pingIntervalMs: 0 });
      const events: { willReconnect: boolean; code?: string }[] = [];
      c.on('disconnected', (e) => events.push({ willReconnect: e.willReconnect, code: e.error?.code }));
      const p = c.connect();
      const s = await nextSocket(base + 1);
      // How a server that upgrades browsers before checking the token refuses one.
      s.openOnly();
      s.reply({ op: 'error', code: want, message: `no (${want})` });
      s.drop(code);
      await assert.rejects(p, (e: unknown) => e instanceof SluiceError && e.code === want && e.message === `no (${want})`);
      assert.equal(c.state, ConnectionState.Closed);
      assert.equal(c.closeError?.code, want);
      assert.deepEqual(events, [{ willReconnect: false, code: want }]);
      assert.equal(FakeSocket.all.length, base + 1, 'no second attempt');
    }
  });

  test('with getToken, a refused token gets one more try with a fresh token; a second refusal in a row closes the client', async () => {
    const base = FakeSocket.all.length;
    let calls = 0;
    const c = new SluiceClient('ws://127.0.0.1:9', { WebSocket: FakeSocket, backoff: { baseMs: 1, maxMs: 1 }, pingIntervalMs: 0, getToken: () => `t${++calls}` });
    await (async () => {
      const p = c.connect();
      (await nextSocket(base + 1)).open();
      await p;
    })();
    // The token expires on a working connection: reconnect with a fresh one.
    FakeSocket.all[base].drop(4001);
    const second = await nextSocket(base + 2);
    assert.match(second.url, /token=t2/);
    second.openOnly();
    second.drop(4001); // refused again before any answer
    assert.equal(c.state, ConnectionState.Closed);
    assert.equal(calls, 2);
    assert.equal(c.closeError?.code, 'UNAUTHORIZED');
  });

  test('a resume point of another epoch beyond the new hw restarts from earliest (epoch-changed), not OFFSET_OUT_OF_RANGE', async () => {
    const { c, first } = await client();
    const events: SubscribedEvent[] = [];
    const got: number[] = [];
    const p = c.subscribe('t', { partition: 0, from: { epoch: 'old', offset: 50 }, onSubscribed: (e) => events.push(e) }, (recs) => got.push(...recs.map((r) => r.offset)));
    const asked = first.json().at(-1)!;
    assert.deepEqual(asked.from, { offset: 50 });
    first.reply({ op: 'error', id: asked.id, code: 'OFFSET_OUT_OF_RANGE', message: 'offset 50 is above the high watermark 3' });
    const latest = first.json().at(-1)!;
    assert.equal(latest.from, 'latest');
    first.reply({ op: 'subbed', id: latest.id, topic: 't', partitions: [{ partition: 0, epoch: 'new', next: 3, hw: 3 }] });
    const unsub = first.json().at(-2)!;
    const earliest = first.json().at(-1)!;
    assert.equal(unsub.op, 'unsub');
    assert.equal(earliest.from, 'earliest');
    first.reply({ op: 'unsubbed', id: unsub.id });
    first.onmessage!({ data: dataFrame('t', 0, 3, ['live, before the restart answer']) }); // of the dropped sub: ignored
    first.reply({ op: 'subbed', id: earliest.id, topic: 't', partitions: [{ partition: 0, epoch: 'new', next: 0, hw: 3 }] });
    const sub = await p;
    first.onmessage!({ data: dataFrame('t', 0, 0, ['a', 'b', 'c']) });
    assert.deepEqual(got, [0, 1, 2]);
    assert.deepEqual(events.map((e) => [e.reason, e.resumed]), [['epoch-changed', false]]);
    assert.deepEqual(sub.positions(), [{ partition: 0, epoch: 'new', offset: 3, hw: 3 }]);
    await assert.rejects(c.subscribe('t', { from: { epoch: 'x', offset: 1 } }, () => {}), (e: unknown) => e instanceof SluiceError && e.code === 'BAD_REQUEST');
    c.close();
  });

  test('a server behind the resume point in the same epoch: the position is held, no offset is delivered twice', async () => {
    const { c, first, base } = await client();
    const got: string[] = [];
    const events: SubscribedEvent[] = [];
    const p = c.subscribe('t', { partition: 0, from: 'earliest', onSubscribed: (e) => events.push(e) }, (recs) => got.push(...recs.map((r) => `${r.offset}:${r.text()}`)));
    answerSub(first, [{ partition: 0, epoch: 'e1', next: 0, hw: 5 }]);
    const sub = await p;
    first.onmessage!({ data: dataFrame('t', 0, 0, ['a', 'b', 'c', 'd', 'e']) });
    first.drop();
    // Another node whose copy has only 3 records so far.
    const second = await nextSocket(base + 2);
    second.open();
    const resume = second.json().at(-1)!;
    assert.deepEqual(resume.from, { offset: 5 });
    second.reply({ op: 'error', id: resume.id, code: 'OFFSET_OUT_OF_RANGE', message: 'above the hw 3' });
    answerSub(second, [{ partition: 0, epoch: 'e1', next: 3, hw: 3 }]);
    assert.deepEqual(events.at(-1)!.partitions, [{ partition: 0, epoch: 'e1', offset: 5, hw: 3 }]);
    assert.equal(events.at(-1)!.reason, 'offset-out-of-range');
    assert.equal(sub.state, SubscriptionState.Subscribed);
    // It catches up: 3 and 4 were delivered already, 5 and 6 are new.
    second.onmessage!({ data: dataFrame('t', 0, 3, ['d', 'e']) });
    second.onmessage!({ data: dataFrame('t', 0, 5, ['f', 'g']) });
    assert.deepEqual(got, ['0:a', '1:b', '2:c', '3:d', '4:e', '5:f', '6:g']);
    c.close();
  });

  test('out of range, then grown past the resume point before the answer from latest: asks for the resume point again instead of skipping', async () => {
    const { c, first, base } = await client();
    const got: number[] = [];
    const p = c.subscribe('t', { partition: 0, from: 'earliest' }, (recs) => got.push(...recs.map((r) => r.offset)));
    answerSub(first, [{ partition: 0, epoch: 'e1', next: 0, hw: 2 }]);
    await p;
    first.onmessage!({ data: dataFrame('t', 0, 0, ['a', 'b']) });
    first.drop();
    const second = await nextSocket(base + 2);
    second.open();
    second.reply({ op: 'error', id: second.json().at(-1)!.id, code: 'OFFSET_OUT_OF_RANGE', message: 'above the hw 1' });
    answerSub(second, [{ partition: 0, epoch: 'e1', next: 4, hw: 4 }]);
    const [unsub, again] = second.json().slice(-2);
    assert.equal(unsub.op, 'unsub');
    assert.deepEqual(again.from, { offset: 2 });
    second.onmessage!({ data: dataFrame('t', 0, 4, ['live from the dropped sub']) }); // ignored
    second.reply({ op: 'unsubbed', id: unsub.id });
    answerSub(second, [{ partition: 0, epoch: 'e1', next: 2, hw: 4 }]);
    second.onmessage!({ data: dataFrame('t', 0, 2, ['c', 'd']) });
    assert.deepEqual(got, [0, 1, 2, 3]);
    c.close();
  });

  test('an answer of the wrong kind fails its request as PROTOCOL; a malformed one drops the connection', async () => {
    const { c, first, base } = await client();
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    const m = c.meta('t');
    first.reply({ op: 'pong', id: first.json().at(-1)!.id });
    await assert.rejects(m, (e: unknown) => e instanceof SluiceError && e.reason === 'PROTOCOL');
    const p = c.subscribe('t', { partition: 0 }, () => {});
    first.reply({ op: 'subbed', id: first.json().at(-1)!.id, topic: 't', partitions: 5 });
    assert.ok(errors.some((e) => e instanceof SluiceError && e.reason === 'PROTOCOL' && /malformed subbed/.test(e.message)));
    // The subscription asks again on the next connection.
    const second = await nextSocket(base + 2);
    second.open();
    answerSub(second, [{ partition: 0, epoch: 'e1', next: 0, hw: 0 }]);
    assert.equal((await p).state, SubscriptionState.Subscribed);
    c.close();
  });
});

describe('token refresh timing', () => {
  const b64url = (o: unknown): string => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const jwt = (claims: unknown): string => `${b64url({ alg: 'HS256' })}.${b64url(claims)}.sig`;

  test('exp is read from the token; none without exp or for a non-JWT', () => {
    assert.equal(tokenExpiryMs(jwt({ exp: 1_700_000_000 })), 1_700_000_000_000);
    assert.equal(tokenExpiryMs(jwt({ sub: 'x' })), null);
    assert.equal(tokenExpiryMs('unused'), null);
    assert.equal(tokenExpiryMs('a.!!!.c'), null);
  });

  test('refresh lead before exp, at most half the time left, never sooner than the floor', () => {
    const now = 1_000_000;
    assert.equal(refreshDelayMs(now + 3_600_000, now, 30_000), 3_570_000);
    assert.equal(refreshDelayMs(now + 20_000, now, 30_000), 10_000);
    assert.equal(refreshDelayMs(now - 5_000, now, 30_000), tokenRefreshDelayMinMs);
  });
});

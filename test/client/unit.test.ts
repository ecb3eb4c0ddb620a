/**
 * The SDK's connection machinery against a scripted WebSocket (injected through
 * `options.WebSocket`): backoff bounds, state events, the transport generation that mutes a
 * dead socket, what happens to publishes in flight when the connection drops, the bounded
 * queue, uint32 request ids.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Backoff, ConnectionState, SluiceClient, SluiceError, type WebSocketLike } from '../../src/client/index.ts';

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

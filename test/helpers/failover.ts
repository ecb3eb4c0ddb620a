/**
 * The failover of an SDK subscriber between nodes that share a log (the same topics, epochs
 * and offsets): a subscriber given every node's URL follows a topic through the first node,
 * that node is SIGKILLed, and the subscriber must go on through another one from its
 * `{epoch, offset}` with no gap and no duplicate.
 *
 * Written once for any kind of node: the SDK tests run it over two single-node servers
 * started on copies of one data directory (test/client/failover.test.ts); the cluster tests
 * run it over sluice nodes of one JetStream cluster.
 *
 * What it checks: every record the subscriber got, in order, is exactly what a fresh reader
 * gets from the surviving node — same partitions, same offsets (dense from the start, each
 * once), same values — including the records published through the survivor after the kill.
 */
import assert from 'node:assert/strict';
import { type Message, SluiceClient, type SubscribedEvent, type SubscriptionStateEvent, connect, wsUrl } from '../../src/client/index.ts';
import { until } from './until.ts';

export interface FailoverNode {
  /** The node's WebSocket URL. */
  url: string;
  /** SIGKILLs the node and waits until it is gone. */
  kill(): Promise<void>;
}

export interface FailoverOptions {
  /** The first is killed; the subscriber may go on through any other. */
  nodes: FailoverNode[];
  /** A topic that exists on every node. */
  topic: string;
  /** Records published through the first node while the subscriber follows it, before the kill (only where the nodes share what is published: cluster nodes). */
  before?: number;
  /** Records published through a surviving node after the kill. */
  after: number;
  /** A hang guard for each wait, not an assertion about speed (ms). */
  waitMs?: number;
}

export interface FailoverResult {
  /** What the subscriber got, in delivery order. */
  received: { partition: number; offset: number; value: string }[];
  /** `subscribed` events: the first subscription, then the resume on the survivor. */
  subscribed: SubscribedEvent[];
  /** The subscription's state changes. */
  states: SubscriptionStateEvent[];
  /** The node the subscriber went on through. */
  survivor: string;
}


/** Every record of a topic on one node, per partition from its start to its hw at the time of the call. */
export async function readAll(url: string, topic: string, waitMs = 30_000): Promise<{ partition: number; offset: number; value: string }[]> {
  const c = await connect(url, { reconnect: false });
  try {
    const meta = await c.meta(topic);
    const want = meta.partitions.reduce((n, p) => n + (p.hw - p.start), 0);
    const got: { partition: number; offset: number; value: string }[] = [];
    await c.subscribe(topic, { from: 'earliest' }, (recs: Message[]) => {
      for (const r of recs) got.push({ partition: r.partition, offset: r.offset, value: r.text() });
    });
    await until(() => got.length >= want, `${want} records of ${topic} from ${url}`, waitMs);
    return got;
  } finally {
    c.close();
  }
}

const perPartition = <T extends { partition: number }>(rows: T[]): Map<number, T[]> => {
  const m = new Map<number, T[]>();
  for (const r of rows) m.set(r.partition, [...(m.get(r.partition) ?? []), r]);
  return m;
};

export async function subscriberFailover(opts: FailoverOptions): Promise<FailoverResult> {
  const waitMs = opts.waitMs ?? 60_000;
  const [first, ...others] = opts.nodes;
  assert.ok(others.length > 0, 'failover needs at least two nodes');
  // Short backoff: this is about what is delivered, not about how long it takes.
  const subscriber = new SluiceClient(opts.nodes.map((n) => n.url), { backoff: { baseMs: 20, maxMs: 500 }, pingIntervalMs: 1000, requestTimeoutMs: 5000 });
  const result: FailoverResult = { received: [], subscribed: [], states: [], survivor: '' };
  try {
    await subscriber.connect();
    assert.equal(subscriber.url, wsUrl(first.url), 'connected through the first node');
    const sub = await subscriber.subscribe(
      opts.topic,
      { from: 'earliest', onSubscribed: (e) => result.subscribed.push(e), onState: (e) => result.states.push(e) },
      (recs) => {
        for (const r of recs) result.received.push({ partition: r.partition, offset: r.offset, value: r.text() });
      },
    );
    const caughtUp = (): boolean => sub.positions().every((p) => p.offset >= p.hw);
    await until(caughtUp, 'the subscriber to read what the first node has', waitMs);
    if (opts.before) {
      // Counted before publishing: the records may reach the subscriber before the acks come back.
      const target = result.received.length + opts.before;
      const pub = await connect(first.url, { reconnect: false });
      try {
        await Promise.all(Array.from({ length: opts.before }, (_, i) => pub.publish(opts.topic, `before the kill ${i}`)));
      } finally {
        pub.close();
      }
      await until(() => result.received.length >= target, 'the records published before the kill', waitMs);
    }

    await first.kill();
    await until(() => subscriber.state === 'connected' && subscriber.url !== wsUrl(first.url) && sub.state === 'subscribed', 'the subscriber to go on through another node', waitMs);
    result.survivor = subscriber.url;

    const pub = await connect(result.survivor, { reconnect: false });
    let acks: { partition: number; offset: number }[];
    try {
      acks = await Promise.all(Array.from({ length: opts.after }, (_, i) => pub.publish(opts.topic, `after the kill ${i}`)));
    } finally {
      pub.close();
    }
    const last = new Map<number, number>();
    for (const a of acks) last.set(a.partition, Math.max(last.get(a.partition) ?? -1, a.offset));
    await until(
      () => [...last].every(([p, o]) => sub.positions().some((x) => x.partition === p && x.offset > o)),
      'the records published through the survivor',
      waitMs,
    );

    // No gap, no duplicate, the same history as the survivor's.
    const theirs = perPartition(await readAll(result.survivor, opts.topic, waitMs));
    const ours = perPartition(result.received);
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort(), 'the same partitions');
    for (const [p, rows] of ours) {
      const offsets = rows.map((r) => r.offset);
      assert.deepEqual(offsets, Array.from({ length: rows.length }, (_, i) => offsets[0] + i), `partition ${p}: every offset once, in order`);
      assert.deepEqual(rows, theirs.get(p)!.slice(0, rows.length), `partition ${p}: the survivor's records`);
    }
    return result;
  } finally {
    subscriber.close();
  }
}

/**
 * Multi-URL failover against real server processes. Two single-node servers share nothing,
 * so to give them one history (the same topics, epochs and offsets, as cluster nodes have)
 * the second starts on a copy of the first one's data directory, taken while the first was
 * stopped. Then the first is SIGKILLed under a subscriber and a publisher that were given
 * both URLs:
 * - the subscriber goes on through the second from its {epoch, offset}: no gap, no
 *   duplicate, exactly the second's records (test/helpers/failover.ts, shared with the
 *   cluster tests);
 * - a copy that is behind the subscriber (same epoch, fewer records: a lagging node) makes
 *   it hold its position rather than deliver an offset twice;
 * - unanswered publishes are sent again to the second, none lost or rejected.
 */
import assert from 'node:assert/strict';
import { until as waitUntil } from '../helpers/until.ts';
import { after, describe, test } from 'node:test';
import { SluiceClient, type SubscribedEvent, connect, wsUrl } from '../../src/client/index.ts';
import { readAll, subscriberFailover } from '../helpers/failover.ts';
import { type ServerProcess, cloneDataDir, startServer } from './server-process.ts';

/** Waits at most 30 s. */
const until = (cond: () => boolean, what: string): Promise<void> => waitUntil(cond, what, 30_000);

async function createTopic(s: ServerProcess, topic: string, partitions: number): Promise<void> {
  const res = await fetch(`${s.httpUrl}/v1/topics/${topic}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ partitions }) });
  assert.equal(res.status, 201, await res.text());
}

/** Two servers with one history: `a` holds `records` per topic; `b` starts on a copy of a's data taken after `cloneAfter` of them. */
async function twoNodes(topics: { name: string; partitions: number; records: number; cloneAfter?: number }[]): Promise<[ServerProcess, ServerProcess]> {
  const a = await startServer();
  let b: ServerProcess | undefined;
  const c = await connect(a.url);
  for (const t of topics) {
    await createTopic(a, t.name, t.partitions);
    const p = c.producer({ lingerMs: 2 });
    await Promise.all(Array.from({ length: t.cloneAfter ?? t.records }, (_, i) => p.send(t.name, `${t.name} ${i}`, { key: `k${i}` })));
  }
  c.close();
  await a.restart({
    whileDown: async () => {
      b = await startServer([], { dataDir: cloneDataDir(a.dataDir) });
    },
  });
  const c2 = await connect(a.url);
  for (const t of topics) {
    if (t.cloneAfter === undefined) continue;
    const p = c2.producer({ lingerMs: 2 });
    await Promise.all(Array.from({ length: t.records - t.cloneAfter }, (_, i) => p.send(t.name, `${t.name} ${t.cloneAfter! + i}`, { key: `k${t.cloneAfter! + i}` })));
  }
  c2.close();
  return [a, b!];
}

describe('multi-URL failover between two server processes', () => {
  const servers: ServerProcess[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  test('SIGKILL the node a subscriber follows: it resumes on the other from {epoch, offset}, no gap, no duplicate', async () => {
    const [a, b] = await twoNodes([{ name: 'orders', partitions: 3, records: 300 }]);
    servers.push(a, b);
    const r = await subscriberFailover({
      nodes: [
        { url: a.url, kill: () => a.kill() },
        { url: b.url, kill: () => b.kill() },
      ],
      topic: 'orders',
      after: 150,
    });
    assert.equal(r.survivor, wsUrl(b.url));
    assert.equal(r.received.length, 450);
    // The resume on the survivor was exact, for every partition (one `subbed` each).
    const [initial, ...resumes] = r.subscribed;
    assert.equal(initial.reason, 'initial');
    assert.deepEqual(resumes.map((e) => [e.reason, e.resumed]), [['resumed', true], ['resumed', true], ['resumed', true]]);
    assert.deepEqual(resumes.flatMap((e) => e.partitions.map((p) => p.partition)).sort(), [0, 1, 2]);
    for (const e of resumes) for (const p of e.partitions) assert.equal(p.epoch, initial.partitions[p.partition].epoch);
    assert.deepEqual(
      r.states.map((s) => s.newState),
      ['subscribed', 'subscribing', 'subscribed', 'unsubscribed'],
    );
  });

  test('a node behind the subscriber in the same epoch: the position is held, and no offset is delivered twice', async () => {
    // b's copy has 20 of the 30 records a has; b then takes 15 new ones at offsets 20..34.
    const [a, b] = await twoNodes([{ name: 'lag', partitions: 1, records: 30, cloneAfter: 20 }]);
    servers.push(a, b);
    const sub = new SluiceClient([a.url, b.url], { backoff: { baseMs: 20, maxMs: 500 }, pingIntervalMs: 0 });
    const got: { offset: number; value: string }[] = [];
    const events: SubscribedEvent[] = [];
    try {
      await sub.connect();
      const s = await sub.subscribe('lag', { partition: 0, from: 'earliest', onSubscribed: (e) => events.push(e) }, (recs) => {
        for (const r of recs) got.push({ offset: r.offset, value: r.text() });
      });
      await until(() => got.length === 30, 'the 30 records of a');
      await a.kill();
      await until(() => sub.url === wsUrl(b.url) && s.state === 'subscribed', 'the resume on b');
      const held = events.at(-1)!;
      assert.equal(held.reason, 'offset-out-of-range');
      assert.deepEqual(held.partitions, [{ partition: 0, epoch: events[0].partitions[0].epoch, offset: 30, hw: 20 }]);
      const pub = await connect(b.url);
      const acks = await Promise.all(Array.from({ length: 15 }, (_, i) => pub.publish('lag', `b ${i}`)));
      pub.close();
      assert.deepEqual(acks.map((x) => x.offset), Array.from({ length: 15 }, (_, i) => 20 + i));
      await until(() => got.length === 35, 'offsets 30..34 from b');
      assert.deepEqual(got.map((x) => x.offset), Array.from({ length: 35 }, (_, i) => i), 'every offset once');
      assert.deepEqual(got.slice(30).map((x) => x.value), ['b 10', 'b 11', 'b 12', 'b 13', 'b 14']);
    } finally {
      sub.close();
    }
  });

  test('publishes without an answer when the node dies go to the other node; none is lost or rejected', async () => {
    const [a, b] = await twoNodes([{ name: 'pubs', partitions: 1, records: 1 }]);
    servers.push(a, b);
    const pub = new SluiceClient([a.url, b.url], { backoff: { baseMs: 20, maxMs: 500 }, pingIntervalMs: 0 });
    try {
      await pub.connect();
      const answeredBy: string[] = [];
      const sends: Promise<{ partition: number; offset: number }>[] = [];
      for (let i = 0; i < 400; i++) {
        sends.push(
          pub.publish('pubs', `p ${i}`).then((ack) => {
            answeredBy[i] = pub.url;
            return ack;
          }),
        );
        if (i === 200) void a.kill();
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      const acks = await Promise.all(sends);
      assert.equal(acks.length, 400);
      assert.ok(answeredBy.includes(wsUrl(b.url)), 'some publishes were answered by b');
      // Every publish b answered is in b's log at its offset (at-least-once: a resent one may be there twice).
      const onB = new Map((await readAll(b.url, 'pubs')).map((r) => [r.offset, r.value]));
      for (let i = 0; i < 400; i++) if (answeredBy[i] === wsUrl(b.url)) assert.equal(onB.get(acks[i].offset), `p ${i}`);
    } finally {
      pub.close();
    }
  });
});

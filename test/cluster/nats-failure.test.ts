/**
 * NATS failures under sluice (docs/cluster.md, failure table):
 * - one nats-server SIGKILLed during a publish stream — the leader of the partition's stream,
 *   the hardest case — R3 goes on and every acked record is afterwards on every node;
 * - JetStream without quorum (two of three servers down): publishes are answered UNAVAILABLE
 *   and nothing is acked, subscribers keep reading what the node holds, and publishing
 *   resumes when quorum returns, with everything acked still there.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client } from '../helpers/server.ts';
import {
  type Ack,
  Publisher,
  type SluiceCluster,
  assertAcksHold,
  converged,
  createTopic,
  delivered,
  startSluiceCluster,
  streamLeader,
  streamOf,
  subscribeAll,
  until,
} from './helpers.ts';

let cluster: SluiceCluster;
before(async () => {
  cluster = await startSluiceCluster({ nodes: 2 });
});
after(() => cluster?.stop());

test('SIGKILL of the stream leader during a publish stream: every acked record is on every node', { timeout: 180_000 }, async (t) => {
  const [a, b] = cluster.nodes;
  await createTopic(a, 'kill', 2);
  await converged([a, b], 'kill');
  const stream = await streamOf(a, 'kill', 0);
  const leader = await streamLeader(cluster.nats, stream);
  assert.ok(leader, 'the stream has a leader');
  const victim = cluster.nats.servers.find((s) => s.name === leader)!;

  const pa = new Publisher('a', 'kill', { produceEvery: 3, produceRecords: 10, window: 16 });
  const pb = new Publisher('b', 'kill', { partition: 0, produceEvery: 2, produceRecords: 5, window: 16 });
  await pa.connect(a.url);
  await pb.connect(b.url);
  let killedAt = -1;
  let stopAt = Infinity;
  const total = () => pa.acks.length + pb.acks.length;
  const killer = (async () => {
    await until(() => total() >= 600, 'acks before the kill');
    killedAt = total();
    const t0 = Date.now();
    await victim.kill();
    t.diagnostic(`killed ${victim.name}, the leader of ${stream}, after ${killedAt} acks`);
    await until(() => total() > killedAt + 50, 'the first acks after the kill', 90_000);
    t.diagnostic(`publishing resumed ${Date.now() - t0} ms after the kill`);
    // Publishing goes on through the failover until as many again are acked.
    await until(() => total() >= killedAt + 600, 'acks after the kill', 90_000);
    stopAt = 0;
  })();
  const done = () => Date.now() > stopAt;
  await Promise.all([pa.runUntil(done), pb.runUntil(done), killer]);
  assert.ok(total() > killedAt + 600, 'publishing went on after the leader died');
  const failed = [...pa.errors, ...pb.errors];
  t.diagnostic(`errors: ${JSON.stringify(failed)}`);
  for (const [code] of failed) assert.equal(code, 'UNAVAILABLE', 'a failover may delay a publish into UNAVAILABLE, nothing else');
  await victim.start();
  await cluster.nats.waitReady();
  await assertAcksHold([a, b], 'kill', [...pa.acks, ...pb.acks]);
});

test('quorum lost: publishes get UNAVAILABLE, readers go on; quorum back: publishing resumes, nothing acked lost', { timeout: 180_000 }, async (t) => {
  const [a, b] = cluster.nodes;
  await createTopic(a, 'quorum', 1);
  await converged([a, b], 'quorum');
  const p = new Publisher('q', 'quorum', { partition: 0, produceEvery: 0, window: 8 });
  await p.connect(a.url);
  await p.run(50);
  assert.equal(p.acks.length, 50);
  await converged([a, b], 'quorum', new Map([[0, 50]]));
  const before = await subscribeAll(b, 'quorum');
  await until(() => delivered(before).length === 50, 'the first 50 records on b');

  const down = cluster.nats.servers.slice(0, 2);
  await Promise.all(down.map((s) => s.kill()));
  t.diagnostic(`killed ${down.map((s) => s.name).join(', ')}: one server of three left`);

  // A publish without quorum: answered UNAVAILABLE, never acked.
  const c = await Client.connect(a.url);
  t.after(() => c.close());
  const r = await c.request({ op: 'pub', topic: 'quorum', partition: 0, value: 'no-quorum' });
  assert.equal(r.op, 'error', JSON.stringify(r));
  assert.equal(r.code, 'UNAVAILABLE');
  // Readers go on: a new subscriber on either node gets what the node holds.
  for (const node of [a, b]) {
    const s = await subscribeAll(node, 'quorum');
    await until(() => delivered(s).length === 50, `the 50 records from ${node.name} without quorum`);
    s.close();
  }

  await Promise.all(down.map((s) => s.start()));
  await cluster.nats.waitReady();
  // Publishing resumes once JetStream has elected leaders again.
  const acks: Ack[] = [...p.acks];
  await until(
    async () => {
      const x = await c.request({ op: 'pub', topic: 'quorum', partition: 0, value: `back-${acks.length}` });
      if (x.op === 'ack') acks.push({ partition: 0, offset: x.offset, value: `back-${acks.length}` });
      return x.op === 'ack';
    },
    'a publish acked after quorum returned',
    90_000,
  );
  await p.run(50);
  acks.push(...p.acks.slice(50));
  assert.ok(acks.length >= 101);
  await assertAcksHold([a, b], 'quorum', acks);
  // The subscriber from before the outage got everything, in order, without a gap.
  await until(() => delivered(before).length >= acks.length, 'the old subscriber to catch up');
  const got = delivered(before);
  got.forEach((row, i) => assert.equal(row.offset, i));
  before.close();
});

/**
 * Two sluice nodes publishing at once to one partition of one topic (wire contract §9: "no
 * offset is ever given to two records"). Each node's batches race the other's for the
 * stream's tail; the loser of each race re-stamps and publishes again. Checked: the acked
 * offsets of both nodes are disjoint and together dense from 0; both nodes' mirrors are the
 * same bytes, segment file by segment file; a subscriber on each node sees the same
 * (offset, value) sequence, which is also what the HTTP API reads back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Publisher, assertAcksHold, assertSameSegments, converged, createTopic, delivered, startSluiceCluster, subscribeAll, until } from './helpers.ts';

test('two nodes publishing concurrently to one partition: disjoint dense offsets, identical mirrors, one order', { timeout: 180_000 }, async (t) => {
  const cluster = await startSluiceCluster({ nodes: 2, args: ['--log-level', 'debug'] });
  t.after(() => cluster.stop());
  const [a, b] = cluster.nodes;
  await createTopic(a, 'race', 1);
  await until(async () => (await converged([a, b], 'race', new Map(), 10_000)).length === 1, 'the topic on both nodes');
  const subA = await subscribeAll(a, 'race');
  const subB = await subscribeAll(b, 'race');
  t.after(() => {
    subA.close();
    subB.close();
  });

  const pa = new Publisher('a', 'race', { partition: 0, produceEvery: 3, produceRecords: 20, window: 48 });
  const pb = new Publisher('b', 'race', { partition: 0, produceEvery: 4, produceRecords: 15, window: 48 });
  await pa.connect(a.url);
  await pb.connect(b.url);
  await Promise.all([pa.run(1500), pb.run(1500)]);
  assert.deepEqual([...pa.errors], [], 'no publish through a failed');
  assert.deepEqual([...pb.errors], [], 'no publish through b failed');

  const acks = [...pa.acks, ...pb.acks];
  const offsets = acks.map((x) => x.offset).sort((x, y) => x - y);
  assert.ok(acks.length > 3000, `${acks.length} records acked`);
  assert.deepEqual(
    offsets,
    offsets.map((_, i) => i),
    'the acked offsets of both nodes are disjoint and together dense from 0',
  );
  assert.ok(pa.acks.length > 0 && pb.acks.length > 0);

  const rows = await assertAcksHold([a, b], 'race', acks);
  assert.equal(rows.get(0)!.length, acks.length, 'nothing stored that was not acked');

  await until(() => delivered(subA).length >= acks.length && delivered(subB).length >= acks.length, 'both subscribers to get every record');
  const seqA = delivered(subA);
  const seqB = delivered(subB);
  assert.deepEqual(seqA, seqB, 'subscribers on each node see the same (offset, value) sequence');
  assert.deepEqual(
    seqA,
    rows.get(0)!.map((r) => ({ offset: r.offset, value: r.value })),
    'and it is what the log holds',
  );

  assertSameSegments(a, b, 'race', 0);

  // The race was real: both nodes lost some, re-stamped and published again.
  const conflicts = (n: typeof a) => (n.proc!.stderr().match(/another publisher appended first/g) ?? []).length;
  t.diagnostic(`conflicts: a ${conflicts(a)}, b ${conflicts(b)}`);
  assert.ok(conflicts(a) + conflicts(b) > 0, 'the two nodes did race for the tail');
});

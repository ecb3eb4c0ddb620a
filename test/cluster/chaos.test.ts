/**
 * Random kills under load: ROUNDS rounds (at least 10), each SIGKILLing one process — a
 * nats-server or a sluice node, chosen by a seeded PRNG (`SEED=<n>` replays a run) — while
 * two publishers mix JSON `pub` and PRODUCE through the sluice nodes, moving to the other node
 * when theirs dies. One process is down at a time, so JetStream keeps its quorum and one
 * sluice node always serves. Afterwards, on every node: 0 acked records lost (each at its
 * acked offset with its value), 0 offsets given twice, no record stored twice, offsets dense,
 * and both mirrors the same bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { int, rng } from '../helpers/random.ts';
import { Publisher, type SluiceNode, assertAcksHold, assertSameSegments, converged, createTopic, startSluiceCluster, until } from './helpers.ts';

const ROUNDS = Math.max(10, Number(process.env.CHAOS_ROUNDS ?? 10));
const SEED = process.env.SEED ? Number(process.env.SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(`${ROUNDS} rounds of random kills during mixed JSON and PRODUCE publishing: nothing acked lost, no offset reused`, { timeout: 600_000 }, async (t) => {
  t.diagnostic(`SEED=${SEED} (replay with SEED=${SEED})`);
  const r = rng(SEED);
  const cluster = await startSluiceCluster({ nodes: 2 });
  t.after(() => cluster.stop());
  const { nats, nodes } = cluster;
  await createTopic(nodes[0], 'chaos', 3);
  await converged(nodes, 'chaos');

  let done = false;
  const publishers = [
    new Publisher('p1', 'chaos', { produceEvery: 3, produceRecords: 12, window: 24, maxPerSecond: 400 }),
    new Publisher('p2', 'chaos', { produceEvery: 2, produceRecords: 7, window: 24, maxPerSecond: 400 }),
  ];
  const keepPublishing = async (p: Publisher, prefer: SluiceNode): Promise<void> => {
    while (!done) {
      const node = prefer.running ? prefer : nodes.find((n) => n.running);
      if (!node) {
        await sleep(50);
        continue;
      }
      try {
        await p.connect(node.url);
      } catch {
        await sleep(50);
        continue;
      }
      await p.runUntil(() => done, 300_000);
    }
  };
  const running = publishers.map((p, i) => keepPublishing(p, nodes[i]));
  const acked = () => publishers.reduce((n, p) => n + p.acks.length, 0);

  for (let round = 0; round < ROUNDS; round++) {
    const before = acked();
    await until(() => acked() >= before + 200, `round ${round}: publishing to go on`, 60_000);
    const victims = [...nats.servers.map((s) => ({ kind: 'nats' as const, s })), ...nodes.map((n) => ({ kind: 'sluice' as const, n }))];
    const v = victims[int(r, 0, victims.length - 1)];
    const downMs = int(r, 100, 1500);
    if (v.kind === 'nats') {
      await v.s.kill();
      await sleep(downMs);
      await v.s.start();
      // Every stream led again (a replica's `current` flag stays false on idle streams in 2.9,
      // so leaders are what can be waited for).
      await nats.waitReady(60_000);
    } else {
      await v.n.kill();
      await sleep(downMs);
      await v.n.start();
    }
    t.diagnostic(`round ${round}: killed ${v.kind === 'nats' ? v.s.name : v.n.name} for ${downMs} ms; ${acked()} acked so far`);
  }
  const end = acked();
  await until(() => acked() >= end + 200, 'publishing after the last round', 60_000);
  done = true;
  await Promise.all(running);

  const acks = publishers.flatMap((p) => p.acks);
  const errors = publishers.flatMap((p) => [...p.errors]);
  t.diagnostic(`${acks.length} records acked; errors: ${JSON.stringify(errors)}`);
  for (const [code] of errors) assert.equal(code, 'UNAVAILABLE', 'a kill may cost a publish UNAVAILABLE, nothing else');
  const rows = await assertAcksHold(nodes, 'chaos', acks);
  let stored = 0;
  for (const list of rows.values()) stored += list.length;
  t.diagnostic(`${stored} records stored (acked, and published but unanswered when a node or connection died)`);
  for (const part of [0, 1, 2]) assertSameSegments(nodes[0], nodes[1], 'chaos', part);
});

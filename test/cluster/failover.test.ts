/**
 * A sluice node SIGKILLed under an SDK subscriber that was given every node's URL: it goes on
 * through the other node from its {epoch, offset}, with no gap and no duplicate, and then
 * gets what is published through the survivor (test/helpers/failover.ts, the scenario the SDK
 * tests run over copied data directories; here the nodes share one JetStream). The CLI, given
 * both URLs as a comma-separated --url, reads through whichever node is up.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, wsUrl } from '../../src/client/index.ts';
import { sluice } from '../helpers/cli.ts';
import { subscriberFailover } from '../helpers/failover.ts';
import { converged, createTopic, startSluiceCluster } from './helpers.ts';

test('SIGKILL the node a subscriber follows: it resumes on the other node, no gap, no duplicate', { timeout: 180_000 }, async (t) => {
  const cluster = await startSluiceCluster({ nodes: 2 });
  t.after(() => cluster.stop());
  const [a, b] = cluster.nodes;
  await createTopic(a, 'orders', 3);
  await converged([a, b], 'orders');
  const c = await connect(b.url);
  const p = c.producer({ lingerMs: 2 });
  await Promise.all(Array.from({ length: 300 }, (_, i) => p.send('orders', `order ${i}`, { key: `k${i}` })));
  c.close();

  const deadUrl = a.url;
  const r = await subscriberFailover({
    nodes: [
      { url: a.url, kill: () => a.kill() },
      { url: b.url, kill: () => b.kill() },
    ],
    topic: 'orders',
    before: 100,
    after: 150,
  });
  assert.equal(r.survivor, wsUrl(b.url));
  assert.equal(r.received.length, 550, 'everything published through either node, once');
  const [initial, ...resumes] = r.subscribed;
  assert.equal(initial.reason, 'initial');
  assert.deepEqual(
    resumes.map((e) => [e.reason, e.resumed]),
    resumes.map(() => ['resumed', true]),
    'resumed exactly on the other node, for every partition',
  );
  assert.deepEqual(resumes.flatMap((e) => e.partitions.map((x) => x.partition)).sort(), [0, 1, 2]);
  for (const e of resumes) for (const x of e.partitions) assert.equal(x.epoch, initial.partitions[x.partition].epoch, 'the same epoch on both nodes');

  // The CLI with both URLs (the first one dead now) reads through the survivor.
  const cli = await sluice(['consume', '--url', `${deadUrl},${b.url}`, '--topic', 'orders', '--partition', '0', '--from', 'earliest', '--limit', '5']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(cli.stdout.trim().split('\n').length, 5);
});

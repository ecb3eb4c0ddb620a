/**
 * What sluice nodes share and how a node comes back (docs/cluster.md):
 * - a topic created on one node exists on every node, with the same epochs, and a deleted one
 *   is gone from every node, its subscribers told UNKNOWN_TOPIC;
 * - a node that was down catches up from JetStream; a node whose data directory was wiped
 *   rebuilds its mirror from nothing; either way, byte for byte the other node's mirror;
 * - a data directory of the other mode is refused.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { Client, http, startServer, tempDir } from '../helpers/server.ts';
import {
  Publisher,
  type SluiceCluster,
  assertAcksHold,
  assertSameSegments,
  converged,
  createTopic,
  delivered,
  describe,
  startSluiceCluster,
  until,
} from './helpers.ts';

let cluster: SluiceCluster;
before(async () => {
  cluster = await startSluiceCluster({ nodes: 2 });
});
after(() => cluster?.stop());

test('a topic created on one node exists on the other with the same epochs; deleted on one, it is gone from both', { timeout: 120_000 }, async (t) => {
  const [a, b] = cluster.nodes;
  const t0 = Date.now();
  const created = await createTopic(a, 'shared', 3);
  let seenAfterMs = -1;
  await until(async () => (await describe(b, 'shared')) !== null, 'the topic on b', 10_000);
  seenAfterMs = Date.now() - t0;
  t.diagnostic(`created on a, seen on b ${seenAfterMs} ms after the create was sent`);
  const onB = await describe(b, 'shared');
  assert.deepEqual(
    onB!.map((p) => p.epoch),
    created.partitions.map((p: { epoch: string }) => p.epoch),
    'the same epochs on both nodes',
  );
  const early = await Client.connect(b.url);
  t.after(() => early.close());
  const subbed = await early.request({ op: 'sub', topic: 'shared', partition: 0, from: 'earliest' });
  assert.equal(subbed.op, 'subbed', JSON.stringify(subbed));
  assert.equal(subbed.partitions[0].epoch, created.partitions[0].epoch);
  const again = await http('PUT', `${b.http}/v1/topics/shared`, { partitions: 3 });
  assert.equal(again.status, 409, 'creating it again through the other node: it exists');

  const p = new Publisher('s', 'shared', { partition: 0, produceEvery: 2, produceRecords: 4 });
  await p.connect(a.url);
  await p.run(20);
  await until(() => delivered(early).length === p.acks.length, 'the subscriber on b to get what a published');
  assert.deepEqual(
    delivered(early).map((r) => r.value),
    [...p.acks].sort((x, y) => x.offset - y.offset).map((x) => x.value),
  );

  const onA = await Client.connect(a.url);
  t.after(() => onA.close());
  assert.equal((await onA.request({ op: 'sub', topic: 'shared', from: 'earliest' })).op, 'subbed');
  const t1 = Date.now();
  const del = await http('DELETE', `${b.http}/v1/topics/shared`);
  assert.ok(del.status === 200 || del.status === 204, del.text);
  await onA.waitMessage((m) => m.op === 'error' && m.code === 'UNKNOWN_TOPIC' && m.topic === 'shared', 'UNKNOWN_TOPIC on a');
  t.diagnostic(`deleted on b, a's subscriber told ${Date.now() - t1} ms after the delete was sent`);
  assert.equal(await describe(a, 'shared'), null);
  assert.equal(await describe(b, 'shared'), null);
  assert.ok(!fs.existsSync(`${a.dataDir}/shared-0`), 'the mirror files are removed');

  // Created again: a new history with new epochs, on both nodes.
  const recreated = await createTopic(b, 'shared', 1);
  const viewA = await converged([a, b], 'shared');
  assert.notEqual(viewA[0].epoch, created.partitions[0].epoch);
  assert.equal(viewA[0].epoch, recreated.partitions[0].epoch);
  assert.equal(viewA[0].hw, 0, 'nothing of the old history');
});

test('a node that was down catches up; a wiped data directory is rebuilt; both byte for byte the other node', { timeout: 180_000 }, async (t) => {
  const [a, b] = cluster.nodes;
  await createTopic(a, 'history', 2);
  await converged([a, b], 'history');
  const p = new Publisher('h', 'history', { produceEvery: 3, produceRecords: 25 });
  await p.connect(a.url);
  await p.run(300);

  assert.equal(await b.stop(), 0, 'b stops cleanly');
  await p.run(300);
  await b.start();
  await assertAcksHold([a, b], 'history', p.acks);
  for (const part of [0, 1]) assertSameSegments(a, b, 'history', part);

  await b.kill();
  fs.rmSync(b.dataDir, { recursive: true, force: true });
  fs.mkdirSync(b.dataDir);
  await p.run(100);
  await b.start();
  await assertAcksHold([a, b], 'history', p.acks);
  for (const part of [0, 1]) assertSameSegments(a, b, 'history', part);
  t.diagnostic(`${p.acks.length} records rebuilt on b from nothing`);
});

test('a single-node data directory is refused by --cluster, and a mirror by a single node', { timeout: 60_000 }, async () => {
  const single = await startServer({});
  const s = await http('POST', `${single.http}/v1/topics/mine/records`, { records: [{ value: 'only copy' }] });
  assert.equal(s.status, 200, s.text);
  assert.equal(await single.stop(), 0);
  await assert.rejects(startServer({ dataDir: single.dataDir, args: ['--cluster', cluster.nats.urls] }), /single-node log/);
  assert.ok(fs.existsSync(`${single.dataDir}/mine-0`), 'its topic is untouched');

  const [a] = cluster.nodes;
  const mirrorCopy = tempDir('sluice-mirror-copy-');
  fs.cpSync(a.dataDir, mirrorCopy, { recursive: true });
  fs.rmSync(`${mirrorCopy}/.lock`, { force: true });
  await assert.rejects(startServer({ dataDir: mirrorCopy }), /cluster node's mirror/);
});

test('a node that cannot reach any NATS server does not start: it names the servers and exits', { timeout: 60_000 }, async () => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  await assert.rejects(startServer({ args: ['--cluster', `nats://127.0.0.1:${port}`] }), (err: Error) => {
    assert.match(err.message, /exited \(1\)/);
    assert.match(err.message, new RegExp(`cannot connect to NATS at nats://127.0.0.1:${port}`));
    return true;
  });
});

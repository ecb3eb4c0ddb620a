/**
 * kcat 1.7 (librdkafka 2.0.2), a Kafka client nobody here wrote, against a real sluice
 * process: metadata (-L), produce with keys (-P -K), consume from the beginning to the end
 * (-C -o beginning -e), and a consumer group (-G) that commits and resumes where it left.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ServerProcess, startServer } from '../helpers/server.ts';
import { kcat } from './helpers.ts';

describe('kcat against the Kafka port', () => {
  let srv: ServerProcess;
  let broker: string;
  before(async () => {
    srv = await startServer({ args: ['--partitions', '3'] });
    broker = `127.0.0.1:${srv.kafkaPort}`;
  });
  after(async () => {
    await srv?.stop();
  });

  test('-P with keys, then -L and -C -o beginning -e read them back with the same keys and offsets', async () => {
    const lines = Array.from({ length: 300 }, (_, i) => `key-${i % 17}:value-${i}`);
    const p = await kcat(['-b', broker, '-P', '-t', 'orders', '-K', ':'], `${lines.join('\n')}\n`);
    assert.equal(p.code, 0, p.stderr);

    const l = await kcat(['-b', broker, '-L', '-J']);
    assert.equal(l.code, 0, l.stderr);
    const meta = JSON.parse(l.stdout);
    assert.deepEqual(meta.brokers, [{ id: 0, name: broker }]);
    const orders = meta.topics.find((t: { topic: string }) => t.topic === 'orders');
    assert.equal(orders.partitions.length, 3);
    for (const part of orders.partitions) {
      assert.equal(part.leader, 0);
      assert.deepEqual(part.replicas, [{ id: 0 }]);
    }

    const c = await kcat(['-b', broker, '-C', '-t', 'orders', '-o', 'beginning', '-e', '-J']);
    assert.equal(c.code, 0, c.stderr);
    const got = c.stdout.trim().split('\n').map((line) => JSON.parse(line) as { partition: number; offset: number; key: string; payload: string });
    assert.equal(got.length, lines.length);
    // Per partition, dense offsets from 0, in the order they were produced.
    const byPartition = new Map<number, typeof got>();
    for (const m of got) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m]);
    for (const list of byPartition.values()) list.forEach((m, i) => assert.equal(m.offset, i));
    // librdkafka's default partitioner for keyed messages is consistent_random (CRC32), not
    // murmur2; whatever it chose, each key stays on one partition, and every pair is intact.
    const keyPartition = new Map<string, number>();
    for (const m of got) {
      const prev = keyPartition.get(m.key);
      if (prev !== undefined) assert.equal(m.partition, prev, `key ${m.key} moved partitions`);
      keyPartition.set(m.key, m.partition);
      const i = Number(m.payload.slice('value-'.length));
      assert.equal(m.key, `key-${i % 17}`);
    }
    assert.deepEqual(new Set(got.map((m) => m.payload)), new Set(lines.map((l) => l.split(':')[1])));
  });

  test('-P with enable.idempotence=true (InitProducerId) stores every line once', async () => {
    const lines = Array.from({ length: 500 }, (_, i) => `idem-${i}`);
    const p = await kcat(['-b', broker, '-P', '-t', 'idempotent', '-p', '0', '-X', 'enable.idempotence=true'], `${lines.join('\n')}\n`);
    assert.equal(p.code, 0, p.stderr);
    assert.doesNotMatch(p.stderr, /FATAL|not supported/);
    const c = await kcat(['-b', broker, '-C', '-t', 'idempotent', '-o', 'beginning', '-e', '-f', '%o %s\\n']);
    assert.deepEqual(
      c.stdout.trim().split('\n'),
      lines.map((l, i) => `${i} ${l}`),
    );
  });

  test('-L of a missing topic creates it only when the client allows auto-creation (librdkafka producers do, consumers do not)', async () => {
    const missing = (out: string, topic: string) => {
      const t = JSON.parse(out).topics.find((x: { topic: string }) => x.topic === topic);
      return t === undefined || t.error !== undefined;
    };
    const denied = await kcat(['-b', broker, '-L', '-t', 'never-made', '-J', '-X', 'allow.auto.create.topics=false']);
    assert.ok(missing(denied.stdout, 'never-made'), denied.stdout);
    assert.ok(missing((await kcat(['-b', broker, '-L', '-J'])).stdout, 'never-made'), 'not created by the refused request');
    // kcat -L runs a producer handle, whose allow.auto.create.topics defaults to true, as
    // against a Kafka broker with auto.create.topics.enable.
    const allowed = await kcat(['-b', broker, '-L', '-t', 'made-on-demand', '-J']);
    assert.ok(!missing(allowed.stdout, 'made-on-demand'), allowed.stdout);
  });

  test('-G: a group consumes, commits, and a second run resumes after the committed offset', async () => {
    const first = Array.from({ length: 50 }, (_, i) => `a-${i}`);
    assert.equal((await kcat(['-b', broker, '-P', '-t', 'grouped', '-p', '0'], `${first.join('\n')}\n`)).code, 0);
    const run = () =>
      // No -o: with -G, kcat assigns an explicit -o offset and so ignores the committed one.
      kcat(['-b', broker, '-G', 'g1', 'grouped', '-e', '-f', '%o %s\\n', '-X', 'auto.offset.reset=earliest']);
    const r1 = await run();
    assert.equal(r1.code, 0, r1.stderr);
    const got1 = r1.stdout.trim().split('\n');
    assert.deepEqual(
      got1,
      first.map((v, i) => `${i} ${v}`),
    );
    const second = Array.from({ length: 20 }, (_, i) => `b-${i}`);
    assert.equal((await kcat(['-b', broker, '-P', '-t', 'grouped', '-p', '0'], `${second.join('\n')}\n`)).code, 0);
    const r2 = await run();
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(
      r2.stdout.trim().split('\n'),
      second.map((v, i) => `${first.length + i} ${v}`),
    );
  });
});

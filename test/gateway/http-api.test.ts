/** The HTTP API (wire contract §5): round trips and status codes, health, metrics, shutdown. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, type ServerProcess, http, startServer } from '../helpers/server.ts';

describe('http api', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ args: ['--max-frame-bytes', '65536', '--max-record-bytes', '1000'] });
  });
  after(async () => {
    assert.equal(await srv.stop(), 0);
  });

  test('topics: create 201, exists 409, bad 400, list, describe, delete, unknown 404', async () => {
    const created = await http('PUT', `${srv.http}/v1/topics/h-topic`, { partitions: 3, retentionMs: 60000 });
    assert.equal(created.status, 201);
    assert.equal(created.body.partitions.length, 3);
    assert.equal(created.body.retentionMs, 60000);
    for (const p of created.body.partitions) assert.deepEqual(Object.keys(p).sort(), ['bytes', 'epoch', 'hw', 'partition', 'segments', 'start']);
    const again = await http('PUT', `${srv.http}/v1/topics/h-topic`, { partitions: 3 });
    assert.equal(again.status, 409);
    assert.equal(typeof again.body.code, 'string');
    assert.equal(typeof again.body.message, 'string');
    assert.equal((await http('PUT', `${srv.http}/v1/topics/h-bad`, { partitions: 0 })).status, 400);
    assert.equal((await http('PUT', `${srv.http}/v1/topics/h-bad`, '{nope')).status, 400);
    assert.equal((await http('PUT', `${srv.http}/v1/topics/bad$name`, { partitions: 1 })).status, 400);
    assert.equal((await http('PUT', `${srv.http}/v1/topics/a%2Fb`, { partitions: 1 })).status, 400);
    const list = await http('GET', `${srv.http}/v1/topics`);
    assert.equal(list.status, 200);
    assert.ok(list.body.topics.some((t: any) => t.name === 'h-topic'));
    assert.equal((await http('GET', `${srv.http}/v1/topics/h-topic`)).body.name, 'h-topic');
    const missing = await http('GET', `${srv.http}/v1/topics/h-none`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'UNKNOWN_TOPIC');
    assert.equal((await http('DELETE', `${srv.http}/v1/topics/h-topic`)).status, 200);
    assert.equal((await http('DELETE', `${srv.http}/v1/topics/h-topic`)).status, 404);
    assert.equal((await http('GET', `${srv.http}/v1/topics/h-topic`)).status, 404);
  });

  test('records: POST answers offsets; GET decodes value or value64, key or key64, headers', async () => {
    await http('PUT', `${srv.http}/v1/topics/h-rec`, { partitions: 2 });
    const post = await http('POST', `${srv.http}/v1/topics/h-rec/records`, {
      records: [
        { value: 'hello', partition: 1, headers: { a: 'b' } },
        { value64: Buffer.from([0xff, 0x00, 0xc3]).toString('base64'), partition: 1, key: 'k' },
        { partition: 1 },
        { value: 'zero', partition: 0 },
      ],
    });
    assert.equal(post.status, 200);
    assert.deepEqual(post.body.offsets, [
      { partition: 1, offset: 0 },
      { partition: 1, offset: 1 },
      { partition: 1, offset: 2 },
      { partition: 0, offset: 0 },
    ]);
    const got = await http('GET', `${srv.http}/v1/topics/h-rec/records?partition=1&from=0&limit=10`);
    assert.equal(got.status, 200);
    const [a, b, c] = got.body.records;
    assert.equal(a.value, 'hello');
    assert.deepEqual(a.headers, { a: 'b' });
    assert.equal(a.key, null);
    assert.equal(b.value64, Buffer.from([0xff, 0x00, 0xc3]).toString('base64'));
    assert.equal(b.value, undefined);
    assert.equal(b.key, 'k');
    assert.equal(c.value, null);
    assert.equal(got.body.next, 3);
    const limited = await http('GET', `${srv.http}/v1/topics/h-rec/records?partition=1&from=1&limit=1`);
    assert.deepEqual(limited.body.records.map((r: any) => r.offset), [1]);
    assert.equal(limited.body.next, 2);
    assert.equal((await http('GET', `${srv.http}/v1/topics/h-rec/records?partition=1&from=99`)).status, 400);
    assert.equal((await http('GET', `${srv.http}/v1/topics/h-rec/records?partition=5`)).status, 400);
    assert.equal((await http('GET', `${srv.http}/v1/topics/h-rec/records?limit=0`)).status, 400);
    assert.equal((await http('GET', `${srv.http}/v1/topics/h-none/records`)).status, 404);
  });

  test('records: bad bodies are 400 and store nothing; a value over the limit 413; a body over the cap 413', async () => {
    await http('PUT', `${srv.http}/v1/topics/h-lim`, { partitions: 1 });
    assert.equal((await http('POST', `${srv.http}/v1/topics/h-lim/records`, { records: [] })).status, 400);
    assert.equal((await http('POST', `${srv.http}/v1/topics/h-lim/records`, { records: [{ value: 'ok' }, { value: 1 }] })).status, 400);
    assert.equal((await http('POST', `${srv.http}/v1/topics/h-lim/records`, { records: [{ value: 'ok' }, { partition: 4, value: 'x' }] })).status, 400);
    const big = await http('POST', `${srv.http}/v1/topics/h-lim/records`, { records: [{ value: 'x'.repeat(1001) }] });
    assert.equal(big.status, 413);
    assert.equal(big.body.code, 'TOO_LARGE');
    assert.equal((await http('GET', `${srv.http}/v1/topics/h-lim`)).body.partitions[0].hw, 0, 'nothing stored');
    const huge = await http('POST', `${srv.http}/v1/topics/h-lim/records`, { records: Array.from({ length: 200 }, () => ({ value: 'y'.repeat(900) })) });
    assert.equal(huge.status, 413);
    // Auto-creation on publish applies to HTTP too.
    assert.equal((await http('POST', `${srv.http}/v1/topics/h-auto/records`, { records: [{ value: 'x' }] })).status, 200);
  });

  test('healthz, readyz, metrics, unknown routes', async () => {
    const health = (await http('GET', `${srv.http}/healthz`)).body;
    assert.equal(health.ok, true);
    assert.ok(Number.isInteger(health.thread) && health.thread >= 0, 'the thread that answered');
    assert.deepEqual((await http('GET', `${srv.http}/readyz`)).body, { ok: true });
    const c = await Client.connect(srv.url);
    await c.request({ op: 'pub', topic: 'h-metrics', value: 'x' });
    await c.request({ op: 'sub', topic: 'h-metrics', from: 'earliest' });
    await c.until(() => c.records.length === 1, 'one record');
    const m = await http('GET', `${srv.http}/metrics`);
    assert.equal(m.status, 200);
    for (const name of [
      'sluice_ws_connections',
      'sluice_subscriptions',
      'sluice_records_in_total',
      'sluice_bytes_in_total',
      'sluice_records_out_total',
      'sluice_bytes_out_total',
      'sluice_batch_records_bucket',
      'sluice_append_seconds_bucket',
      'sluice_append_durable_seconds_bucket',
      'sluice_subscriber_lag_records',
      'sluice_partition_bytes{topic="h-metrics",partition="0"}',
      'sluice_process_resident_memory_bytes',
    ]) {
      assert.ok(m.text.includes(name), `metrics lack ${name}`);
    }
    assert.match(m.text, /^sluice_subscriptions 1$/m);
    assert.match(m.text, /^sluice_ws_connections [1-9]/m);
    c.close();
    assert.equal((await http('GET', `${srv.http}/v2/nothing`)).status, 404);
  });
});

test('SIGTERM: in-flight publishes are acked, the server exits 0, and the records are there after a restart', async () => {
  const srv = await startServer({ args: ['--linger-ms', '50'] });
  const c = await Client.connect(srv.url);
  const ids = Array.from({ length: 200 }, (_, i) => c.send({ op: 'pub', topic: 'h-term', value: `v${i}` }));
  // The batch lingers 50 ms: stop while it waits.
  await new Promise((r) => setTimeout(r, 5));
  const exit = srv.stop();
  await c.until(() => c.closed !== null, 'close');
  assert.equal(await exit, 0);
  const acks = c.messages.filter((m) => m.op === 'ack');
  assert.deepEqual(acks.map((m) => m.id), ids.slice(0, acks.length));
  const again = await startServer({ dataDir: srv.dataDir });
  try {
    const r = await http('GET', `${again.http}/v1/topics/h-term/records?limit=1000`);
    for (const a of acks) assert.equal(r.body.records[a.offset].value, `v${a.id - 1}`);
    assert.ok(acks.length > 0);
  } finally {
    assert.equal(await again.stop(), 0);
  }
});

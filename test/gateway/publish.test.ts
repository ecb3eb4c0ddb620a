/** Publishing over the WebSocket: JSON `pub` and binary PRODUCE, their acks and their errors. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeRecordBatch, partitionForKey } from '../../engine/codec/index.ts';
import { installNativeCodecs } from '../../engine/index.ts';
import { PARTITION_ANY, produceFrame } from '../../src/gateway/frames.ts';
import { Client, type ServerProcess, http, startServer, utf8 } from '../helpers/server.ts';

installNativeCodecs();

describe('publish', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ args: ['--partitions', '1', '--max-frame-bytes', '65536', '--max-record-bytes', '4096'] });
  });
  after(async () => {
    assert.equal(await srv.stop(), 0);
  });

  test('JSON pub: acks carry dense offsets from 0, and the records read back', async () => {
    const c = await Client.connect(srv.url);
    const acks = [];
    for (let i = 0; i < 20; i++) acks.push(c.request({ op: 'pub', topic: 'p-json', value: `v${i}`, key: i % 2 ? `k${i}` : undefined, headers: { h: `x${i}` } }));
    const answers = await Promise.all(acks);
    assert.deepEqual(
      answers.map((a) => [a.op, a.partition, a.offset]),
      answers.map((_, i) => ['ack', 0, i]),
    );
    const r = await http('GET', `${srv.http}/v1/topics/p-json/records?limit=100`);
    assert.equal(r.status, 200);
    assert.equal(r.body.records.length, 20);
    r.body.records.forEach((rec: any, i: number) => {
      assert.equal(rec.offset, i);
      assert.equal(rec.value, `v${i}`);
      assert.equal(rec.key, i % 2 ? `k${i}` : null);
      assert.deepEqual(rec.headers, { h: `x${i}` });
    });
    c.close();
  });

  test('value64, an empty key, a null value', async () => {
    const c = await Client.connect(srv.url);
    const bin = Buffer.from([0, 1, 2, 0xff, 0xfe]);
    const a = await c.request({ op: 'pub', topic: 'p-b64', key: '', value64: bin.toString('base64') });
    const b = await c.request({ op: 'pub', topic: 'p-b64' });
    assert.equal(a.offset, 0);
    assert.equal(b.offset, 1);
    const r = await http('GET', `${srv.http}/v1/topics/p-b64/records`);
    assert.equal(r.body.records[0].value64, bin.toString('base64'));
    assert.equal(r.body.records[0].key, '');
    assert.equal(r.body.records[1].value, null);
    c.close();
  });

  test('acks come in arrival order across partitions and with PRODUCE mixed in', async () => {
    assert.equal((await http('PUT', `${srv.http}/v1/topics/p-order`, { partitions: 4 })).status, 201);
    const c = await Client.connect(srv.url);
    const ids: number[] = [];
    const batch = encodeRecordBatch([{ value: Buffer.from('a') }, { value: Buffer.from('b') }]);
    for (let i = 0; i < 400; i++) {
      const id = 1000 + i;
      ids.push(id);
      if (i % 10 === 5) c.ws.send(produceFrame(id, 'p-order', i % 4, batch));
      else c.send({ op: 'pub', id, topic: 'p-order', partition: (i * 7) % 4, value: `m${i}` });
    }
    // An interleaved ping may overtake; publish answers may not reorder.
    c.send({ op: 'ping', id: 5 });
    await c.until(() => c.messages.filter((m) => m.op === 'ack').length === 400, '400 acks');
    assert.deepEqual(
      c.messages.filter((m) => m.op === 'ack').map((m) => m.id),
      ids,
    );
    const next = [0, 0, 0, 0];
    for (const m of c.messages.filter((m) => m.op === 'ack')) {
      assert.equal(m.offset, next[m.partition], 'offsets per partition are dense, in ack order');
      next[m.partition] += m.count ?? 1;
    }
    c.close();
  });

  test('keyed records land on murmur2(key) % partitions; unkeyed ones spread', async () => {
    assert.equal((await http('PUT', `${srv.http}/v1/topics/p-keys`, { partitions: 8 })).status, 201);
    const c = await Client.connect(srv.url);
    for (let i = 0; i < 50; i++) {
      const key = `user-${i}`;
      const a = await c.request({ op: 'pub', topic: 'p-keys', key, value: 'x' });
      assert.equal(a.partition, partitionForKey(Buffer.from(key), 8), key);
    }
    const seen = new Set<number>();
    for (let i = 0; i < 64; i++) seen.add((await c.request({ op: 'pub', topic: 'p-keys', value: 'y' })).partition);
    assert.ok(seen.size > 1, 'unkeyed records use more than one partition');
    c.close();
  });

  test('PRODUCE: one batch stored byte for byte, ack with first offset and count', async () => {
    const c = await Client.connect(srv.url);
    await c.request({ op: 'pub', topic: 'p-bin', value: 'first' });
    for (const codec of ['none', 'lz4'] as const) {
      const records = Array.from({ length: 1000 }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.alloc(40, i & 0xff), headers: [{ key: 'n', value: Buffer.from(String(i)) }] }));
      const batch = encodeRecordBatch(records, { codec });
      c.ws.send(produceFrame(77, 'p-bin', PARTITION_ANY, batch));
      const ack = await c.waitMessage((m) => m.id === 77 && m.op === 'ack', 'PRODUCE ack');
      assert.equal(ack.count, 1000);
      assert.equal(ack.partition, 0);
      c.messages.length = 0;
      const sub = await Client.connect(srv.url);
      sub.keepFrames = true;
      await sub.request({ op: 'sub', topic: 'p-bin', from: { offset: ack.offset } });
      await sub.until(() => sub.records.length >= 1000, 'records back');
      assert.equal(sub.records[0].offset, ack.offset);
      assert.equal(utf8(sub.records[999].headers[0].value), '999');
      // Stored unchanged: the DATA frame's bytes after the baseOffset field equal what was sent.
      const frame = sub.frames[0];
      const body = frame.subarray(2 + 'p-bin'.length + 4);
      assert.ok(Buffer.from(body.subarray(8, batch.length)).equals(Buffer.from(batch.subarray(8))));
      sub.close();
    }
    c.close();
  });

  test('bad frames get errors with the id when it can be read; the connection and the server stay up', async () => {
    const c = await Client.connect(srv.url);
    c.ws.send('not json');
    c.ws.send('[1,2]');
    c.send({ op: 'nope', id: 1 });
    c.send({ op: 'pub', id: 2, topic: '../etc', value: 'x' });
    c.send({ op: 'pub', id: 3, topic: 't', value: 'x', value64: 'eA==' });
    c.send({ op: 'pub', id: 4, topic: 't', value64: 'not base64!' });
    c.send({ op: 'sub', id: 5, topic: 't', from: 'yesterday' });
    c.ws.send(JSON.stringify({ op: 'ping', id: -1 }));
    c.ws.send(Buffer.from([0x09, 1, 2]));
    c.ws.send(Buffer.from([0x02, 0, 0, 0, 6, 1]));
    const batch = encodeRecordBatch([{ value: Buffer.from('x') }]);
    const corrupt = Buffer.from(batch);
    corrupt[corrupt.length - 1] ^= 0xff;
    c.ws.send(produceFrame(7, 'p-bad', 0, corrupt));
    c.ws.send(produceFrame(8, 'p-bad', 0, Buffer.concat([batch, Buffer.from([0])])));
    c.ws.send(produceFrame(9, 'p-bad', 0, batch.subarray(0, 50)));
    await c.until(() => c.messages.length >= 13, '13 errors');
    assert.ok(c.messages.every((m) => m.op === 'error' && m.code === 'BAD_REQUEST'), JSON.stringify(c.messages));
    assert.deepEqual(
      c.messages.map((m) => m.id),
      [undefined, undefined, 1, 2, 3, 4, 5, undefined, undefined, 6, 7, 8, 9],
    );
    // Nothing of the refused batches was stored (the topic may not even exist).
    const r = await http('GET', `${srv.http}/v1/topics/p-bad`);
    assert.ok(r.status === 404 || r.body.partitions[0].hw === 0);
    assert.equal((await c.request({ op: 'ping', id: 999 })).op, 'pong');
    c.close();
  });

  test('a value over --max-record-bytes is TOO_LARGE; a frame over --max-frame-bytes closes with 1009', async () => {
    const c = await Client.connect(srv.url);
    const a = await c.request({ op: 'pub', topic: 'p-big', value: 'x'.repeat(4097) });
    assert.equal(a.code, 'TOO_LARGE');
    const b = await c.request({ op: 'pub', topic: 'p-big', value: 'x'.repeat(4096) });
    assert.equal(b.op, 'ack');
    c.ws.send(produceFrame(3, 'p-big', 0, encodeRecordBatch([{ value: Buffer.alloc(5000) }])));
    assert.equal((await c.waitMessage((m) => m.id === 3)).code, 'TOO_LARGE');
    c.ws.send('x'.repeat(70_000));
    await c.until(() => c.closed !== null, 'close');
    assert.equal(c.closed!.code, 1009);
    const d = await Client.connect(srv.url);
    assert.equal((await d.request({ op: 'ping' })).op, 'pong');
    d.close();
  });

  test('meta of an unknown topic gets UNKNOWN_TOPIC; a sub waits for it; auto-creation happens on publish only', async () => {
    const c = await Client.connect(srv.url);
    assert.equal((await c.request({ op: 'meta', topic: 'p-auto' })).code, 'UNKNOWN_TOPIC');
    const waiting = c.send({ op: 'sub', topic: 'p-auto' });
    assert.equal((await c.request({ op: 'ping' })).op, 'pong', 'the sub is not answered yet, and it creates nothing');
    // A refused publish creates nothing.
    assert.equal((await c.request({ op: 'pub', topic: 'p-auto', partition: 3, value: 'x' })).code, 'BAD_REQUEST');
    assert.equal((await c.request({ op: 'meta', topic: 'p-auto' })).code, 'UNKNOWN_TOPIC');
    assert.ok(!c.messages.some((m) => m.id === waiting));
    assert.equal((await c.request({ op: 'pub', topic: 'p-auto', value: 'x' })).op, 'ack');
    assert.equal((await c.waitMessage((m) => m.id === waiting, 'subbed')).op, 'subbed');
    const meta = await c.request({ op: 'meta', topic: 'p-auto' });
    assert.equal(meta.partitions.length, 1);
    assert.equal(meta.partitions[0].hw, 1);
    assert.match(meta.partitions[0].epoch, /^[0-9a-f]{16}$/);
    c.close();
  });
});

describe('publish limits', () => {
  test('--publish-rate: over the rate gets RATE_LIMITED; --auto-create false refuses unknown topics', async () => {
    const srv = await startServer({ args: ['--publish-rate', '10', '--auto-create', 'false'] });
    try {
      await http('PUT', `${srv.http}/v1/topics/rl`, { partitions: 1 });
      const c = await Client.connect(srv.url);
      const ids = Array.from({ length: 30 }, (_, i) => c.send({ op: 'pub', topic: 'rl', value: `v${i}` }));
      await c.until(() => c.messages.length === 30, '30 answers');
      const codes = c.messages.map((m) => m.code ?? m.op);
      assert.deepEqual(c.messages.map((m) => m.id), ids, 'answers in order');
      assert.ok(codes.filter((x) => x === 'ack').length >= 10, codes.join());
      assert.ok(codes.filter((x) => x === 'RATE_LIMITED').length >= 10, codes.join());
      const d = await Client.connect(srv.url);
      assert.equal((await d.request({ op: 'pub', topic: 'nope', value: 'x' })).code, 'UNKNOWN_TOPIC');
      d.close();
      c.close();
    } finally {
      assert.equal(await srv.stop(), 0);
    }
  });
});

/** Subscribing over the WebSocket: every kind of start, live tail, resume, unsub, topic deletion. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { encodeRecordBatch } from '../../engine/codec/index.ts';
import { installNativeCodecs } from '../../engine/index.ts';
import { parseDataFrame, produceFrame } from '../../src/gateway/frames.ts';
import { Client, type ServerProcess, http, startServer, utf8 } from '../helpers/server.ts';

installNativeCodecs();
const require = createRequire(import.meta.url);

async function publish(c: Client, topic: string, values: string[], partition?: number): Promise<any[]> {
  return Promise.all(values.map((value) => c.request({ op: 'pub', topic, value, partition })));
}

describe('subscribe', () => {
  let srv: ServerProcess;
  let pub: Client;
  before(async () => {
    srv = await startServer({ args: ['--compression', 'lz4'] });
    pub = await Client.connect(srv.url);
  });
  after(async () => {
    pub.close();
    assert.equal(await srv.stop(), 0);
  });

  test('from earliest, latest, an offset and a time; subbed tells epoch, next and hw', async () => {
    await publish(pub, 's-start', ['a', 'b', 'c']);
    await new Promise((r) => setTimeout(r, 20));
    const t = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    await publish(pub, 's-start', ['d', 'e']);
    const meta = await pub.request({ op: 'meta', topic: 's-start' });
    const epoch = meta.partitions[0].epoch;

    const cases: [unknown, number, string[]][] = [
      ['earliest', 0, ['a', 'b', 'c', 'd', 'e']],
      ['latest', 5, []],
      [{ offset: 2 }, 2, ['c', 'd', 'e']],
      [{ offset: 5 }, 5, []],
      [{ time: t }, 3, ['d', 'e']],
      [{ time: t + 3_600_000 }, 5, []],
      [{ time: 0 }, 0, ['a', 'b', 'c', 'd', 'e']],
    ];
    const subs: Client[] = [];
    for (const [from, next, values] of cases) {
      const c = await Client.connect(srv.url);
      subs.push(c);
      const subbed = await c.request({ op: 'sub', topic: 's-start', from });
      assert.equal(subbed.op, 'subbed', JSON.stringify(subbed));
      assert.deepEqual(subbed.partitions, [{ partition: 0, epoch, next, hw: 5 }], JSON.stringify(from));
      await c.until(() => c.records.length >= values.length, `records from ${JSON.stringify(from)}`);
      assert.deepEqual(c.records.map((r) => utf8(r.value)), values);
    }
    // Live tail: every subscriber gets what comes next, in order, exactly once.
    const live = Array.from({ length: 50 }, (_, i) => `live${i}`);
    await publish(pub, 's-start', live);
    for (const [i, c] of subs.entries()) {
      const want = [...cases[i][2], ...live];
      await c.until(() => c.records.length >= want.length, 'live records');
      assert.deepEqual(c.records.map((r) => utf8(r.value)), want);
      assert.deepEqual(
        c.records.map((r) => r.offset),
        want.map((_, j) => cases[i][1] + j),
      );
      c.close();
    }
  });

  test('the answers the contract names: second sub, offset above hw, unknown partition, unsub', async () => {
    await publish(pub, 's-err', ['x']);
    const c = await Client.connect(srv.url);
    assert.equal((await c.request({ op: 'sub', topic: 's-err', from: { offset: 2 } })).code, 'OFFSET_OUT_OF_RANGE');
    assert.equal((await c.request({ op: 'sub', topic: 's-err', partition: 3 })).code, 'BAD_REQUEST');
    assert.equal((await c.request({ op: 'sub', topic: 's-err', partition: 0 })).op, 'subbed');
    assert.equal((await c.request({ op: 'sub', topic: 's-err' })).code, 'BAD_REQUEST');
    assert.equal((await c.request({ op: 'unsub', topic: 's-err' })).op, 'unsubbed');
    await publish(pub, 's-err', ['after unsub']);
    assert.equal((await c.request({ op: 'sub', topic: 's-err', from: 'earliest' })).op, 'subbed');
    await c.until(() => c.records.length >= 2, 'records after resubscribing');
    assert.deepEqual(c.records.map((r) => utf8(r.value)), ['x', 'after unsub']);
    c.close();
  });

  test('all partitions of a topic; live records of each partition in offset order', async () => {
    await http('PUT', `${srv.http}/v1/topics/s-multi`, { partitions: 3 });
    const c = await Client.connect(srv.url);
    const subbed = await c.request({ op: 'sub', topic: 's-multi', from: 'earliest' });
    assert.deepEqual(subbed.partitions.map((p: any) => p.partition), [0, 1, 2]);
    const acks = await Promise.all(Array.from({ length: 300 }, (_, i) => pub.request({ op: 'pub', topic: 's-multi', key: `k${i}`, value: `v${i}` })));
    await c.until(() => c.records.length >= 300, '300 records');
    for (let p = 0; p < 3; p++) {
      const got = c.recordsOf('s-multi', p);
      const want = acks.filter((a) => a.partition === p);
      assert.deepEqual(got.map((r) => r.offset), want.map((a) => a.offset));
      assert.deepEqual(got.map((r) => r.offset), got.map((_, i) => i));
    }
    c.close();
  });

  test('resume after reconnect from the last offset seen: no gap, no duplicate', async () => {
    let c = await Client.connect(srv.url);
    // Subscribed before the topic exists: the answer comes once the first publish creates it.
    const waiting = c.send({ op: 'sub', topic: 's-resume', from: 'earliest' });
    await publish(pub, 's-resume', ['r0']);
    const subbed = await c.waitMessage((m) => m.id === waiting, 'the deferred subbed');
    assert.equal(subbed.op, 'subbed');
    assert.equal(subbed.partitions[0].next, 0);
    const seen: string[] = [];
    let epoch = '';
    let next = 0;
    let sent = 1;
    for (let round = 0; round < 5; round++) {
      // Publish while the subscriber is connected, and more while it is away.
      const vals = Array.from({ length: 40 }, (_, i) => `r${sent + i}`);
      sent += vals.length;
      await publish(pub, 's-resume', vals);
      await c.until(() => c.records.length >= 1, 'some records');
      for (const r of c.records) if (r.offset >= next) (seen.push(utf8(r.value)!), (next = r.offset + 1));
      c.close();
      const away = Array.from({ length: 25 }, (_, i) => `r${sent + i}`);
      sent += away.length;
      await publish(pub, 's-resume', away);
      c = await Client.connect(srv.url);
      const s = await c.request({ op: 'sub', topic: 's-resume', from: { offset: next } });
      if (epoch) assert.equal(s.partitions[0].epoch, epoch, 'same history');
      epoch = s.partitions[0].epoch;
      assert.equal(s.partitions[0].next, next);
    }
    await c.until(() => c.records.length > 0 && c.records[c.records.length - 1].offset === sent - 1, 'all records');
    for (const r of c.records) if (r.offset >= next) (seen.push(utf8(r.value)!), (next = r.offset + 1));
    assert.deepEqual(seen, Array.from({ length: sent }, (_, i) => `r${i}`));
    c.close();
  });

  test('DELETE of a topic: its subscribers get UNKNOWN_TOPIC; a new topic of the name has new epochs', async () => {
    await publish(pub, 's-del', ['x']);
    const c = await Client.connect(srv.url);
    const subbed = await c.request({ op: 'sub', topic: 's-del', from: 'earliest' });
    assert.equal((await http('DELETE', `${srv.http}/v1/topics/s-del`)).status, 200);
    const err = await c.waitMessage((m) => m.op === 'error' && m.code === 'UNKNOWN_TOPIC', 'UNKNOWN_TOPIC');
    assert.equal(err.topic, 's-del');
    await publish(pub, 's-del', ['y']);
    const again = await c.request({ op: 'sub', topic: 's-del', from: 'earliest' });
    assert.equal(again.op, 'subbed', 'the old subscription is gone');
    assert.notEqual(again.partitions[0].epoch, subbed.partitions[0].epoch);
    await c.until(() => c.records.some((r) => utf8(r.value) === 'y'), 'the new record');
    c.close();
  });

  test('DATA frames decode with kafkajs (LZ4 codec registered): stored bytes unchanged', async () => {
    const { CompressionTypes, CompressionCodecs } = require('kafkajs');
    const LZ4 = require('kafkajs-lz4');
    CompressionCodecs[CompressionTypes.LZ4] = new LZ4().codec;
    const Decoder = require('kafkajs/src/protocol/decoder');
    const RecordBatchDecoder = require('kafkajs/src/protocol/recordBatch/v0/decoder');
    const c = await Client.connect(srv.url);
    c.keepFrames = true;
    // Before the topic exists: the sub waits for it (answered once the first publish creates
    // it), so it is sent, not awaited — awaiting it spent the 60 s hang guard of every run.
    const subId = c.send({ op: 'sub', topic: 's-kafkajs', from: 'earliest' });
    const values = Array.from({ length: 30 }, (_, i) => `kafkajs value ${i} `.repeat(i + 1));
    await publish(pub, 's-kafkajs', values.slice(0, 10));
    pub.ws.send(produceFrame(1, 's-kafkajs', 0, encodeRecordBatch(values.slice(10).map((v, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(v) })), { codec: 'lz4' })));
    await pub.waitMessage((m) => m.id === 1 && m.op === 'ack', 'PRODUCE ack');
    await c.waitMessage((m) => m.id === subId && m.op === 'subbed', 'subbed once the topic exists');
    await c.until(() => c.records.length >= 30, '30 records');
    const decoded: string[] = [];
    for (const frame of c.frames) {
      const body = Buffer.from(parseDataFrame(frame).batches);
      const d = new Decoder(body);
      while (d.canReadInt64()) {
        const batch = await RecordBatchDecoder(d);
        for (const r of batch.records) decoded.push(r.value.toString());
      }
    }
    assert.deepEqual(decoded, values);
    c.close();
  });
});

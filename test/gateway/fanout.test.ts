/**
 * Delivery's two paths in-process, against a real log and a stand-in socket whose
 * buffered amount the test sets: gap on retention, fallback of a slow subscriber, rejoin.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { decodeBatches, encodeRecordBatch } from '../../engine/codec/index.ts';
import { LogManager } from '../../engine/index.ts';
import { Metrics } from '../../src/common/metrics.ts';
import { Fanout, type SubscriberSocket } from '../../src/gateway/fanout.ts';
import { parseDataFrame } from '../../src/gateway/frames.ts';
import { backpressureBytesMax } from '../../src/gateway/limits.ts';
import { tempDir } from '../helpers/server.ts';

class FakeConn implements SubscriberSocket {
  readonly id = 1;
  closed = false;
  bufferedAmount = 0;
  out: ({ json: any } | { offsets: number[] })[] = [];
  cork(fn: () => void): void {
    fn();
  }
  sendJson(o: object): void {
    this.out.push({ json: o });
  }
  sendError(code: string, message: string): void {
    this.out.push({ json: { op: 'error', code, message } });
  }
  sendBinary(frame: Uint8Array): number {
    const f = parseDataFrame(frame);
    this.out.push({ offsets: decodeBatches(f.batches).map((r) => r.offset) });
    return 1;
  }
  sendDataFragments(header: Uint8Array, batches: Uint8Array): number {
    return this.sendBinary(Buffer.concat([header, batches]));
  }
}

function offsetsFrom(conn: FakeConn, min: number): number[] {
  const all: number[] = [];
  for (const o of conn.out) if ('offsets' in o) all.push(...o.offsets.filter((x) => x >= min));
  return all;
}

test('retention overtaking a reader gives a gap message, then records from the start; a slow live subscriber falls back to disk and rejoins', async () => {
  const dir = tempDir();
  const log = await LogManager.open({ dataDir: dir, flush: 'never', segmentBytes: 64 * 1024, retentionCheckMs: 0 });
  try {
    await log.createTopic('t', { partitions: 1, retentionBytes: 128 * 1024 });
    const plog = log.partition('t', 0);
    const append = async (n: number) => {
      for (let i = 0; i < n; i++) await plog.append(encodeRecordBatch([{ value: Buffer.alloc(1000, i) }, { value: Buffer.alloc(1000, i) }]));
    };
    await append(200); // ~400 KB: several segments
    const metrics = new Metrics();
    const fanout = new Fanout(metrics);
    const conn = new FakeConn();
    const sub = fanout.get(plog).subscribe(conn, 0, () => assert.fail('the subscription must not end'));
    assert.ok(log.enforceRetention() > 0);
    const start = plog.startOffset;
    assert.ok(start > 0);

    sub.pump();
    assert.deepEqual(conn.out[0], { json: { op: 'gap', topic: 't', partition: 0, from: 0, to: start } });
    assert.deepEqual(offsetsFrom(conn, start), Array.from({ length: plog.hw - start }, (_, i) => start + i));
    assert.equal(sub.mode, 'live');

    // Live, then the socket backs up: the next commits are not sent, nothing is queued for it.
    conn.out.length = 0;
    await append(1);
    assert.equal(offsetsFrom(conn, 0).length, 2);
    conn.bufferedAmount = backpressureBytesMax + 1;
    const before = sub.next;
    await append(300);
    assert.equal(sub.mode, 'disk');
    assert.equal(offsetsFrom(conn, 0).length, 2, 'nothing sent while above the high-water mark');
    assert.equal(sub.next, before);

    // Retention overtakes it while it is slow: gap, then on from the new start.
    log.enforceRetention();
    const start2 = plog.startOffset;
    assert.ok(start2 > before);
    conn.out.length = 0;
    conn.bufferedAmount = 0;
    sub.pump();
    assert.deepEqual(conn.out[0], { json: { op: 'gap', topic: 't', partition: 0, from: before, to: start2 } });
    assert.deepEqual(offsetsFrom(conn, start2), Array.from({ length: plog.hw - start2 }, (_, i) => start2 + i));
    assert.equal(sub.mode, 'live', 'caught up: back on the live path');
    conn.out.length = 0;
    await append(1);
    assert.deepEqual(offsetsFrom(conn, 0), [plog.hw - 2, plog.hw - 1]);
    sub.close();
  } finally {
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

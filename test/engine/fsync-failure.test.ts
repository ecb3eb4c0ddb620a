/**
 * A failed fsync under `flush: always`: nothing unsynced may be acknowledged or shown, the
 * log is cut back to its last synced batch, and appends go on at the same offsets.
 * The failure is injected at the engine's storage seam (Segment.sync).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { decodeBatches, encodeRecordBatch } from '../../engine/codec/index.ts';
import { UnavailableError } from '../../engine/errors.ts';
import { installNativeCodecs } from '../../engine/native-codecs.ts';
import { PartitionLog } from '../../engine/partition-log.ts';
import { Segment } from '../../engine/segment.ts';

installNativeCodecs();
const te = new TextEncoder();
const batchOf = (tag: string, n = 3) => encodeRecordBatch(Array.from({ length: n }, (_, i) => ({ value: te.encode(`${tag}-${i}`) })), { codec: 'lz4' });

function valuesOf(log: PartitionLog): string[] {
  const out: string[] = [];
  for (let off = log.startOffset; ; ) {
    const r = log.read(off, 1 << 20);
    if (!r) break;
    for (const rec of decodeBatches(r.bytes, off)) out.push(new TextDecoder().decode(rec.value!));
    off = r.nextOffset;
  }
  return out;
}

test('regression: a failed fsync rejects every pending append, cuts the tail, and offsets are reused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-fsync-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Small segments, so the failed window spans a roll.
  const log = PartitionLog.open(dir, 't', 0, 'e', { flush: 'always', segmentBytes: 64 * 1024 });
  const seen: number[] = [];
  log.onCommit((_b, first) => seen.push(first));
  await log.append(batchOf('ok'));
  assert.equal(log.hw, 3);

  const realSync = Segment.prototype.sync;
  let failures = 1;
  Segment.prototype.sync = async function (this: Segment) {
    if (failures-- > 0) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    return realSync.call(this);
  };
  t.after(() => {
    Segment.prototype.sync = realSync;
  });
  const big = new Uint8Array(40 * 1024).fill(7);
  const doomed = [log.append(batchOf('lost-a')), log.append(encodeRecordBatch([{ value: big }, { value: big }])), log.append(batchOf('lost-b'))];
  const results = await Promise.allSettled(doomed);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.ok((r as PromiseRejectedResult).reason instanceof UnavailableError);
    assert.equal((r as PromiseRejectedResult).reason.code, 'UNAVAILABLE');
  }
  assert.equal(log.hw, 3, 'nothing unsynced became visible');
  assert.equal(log.nextOffset, 3, 'the log end went back to the last synced batch');
  assert.deepEqual(seen, [0]);

  const r = await log.append(batchOf('after'));
  assert.equal(r.baseOffset, 3, 'offsets of rejected appends are written again');
  assert.deepEqual(valuesOf(log), ['ok-0', 'ok-1', 'ok-2', 'after-0', 'after-1', 'after-2']);
  await log.close();

  const again = PartitionLog.open(dir, 't', 0, 'e', { flush: 'always', segmentBytes: 64 * 1024 });
  t.after(() => again.close());
  assert.equal(again.hw, 6);
  assert.deepEqual(valuesOf(again), ['ok-0', 'ok-1', 'ok-2', 'after-0', 'after-1', 'after-2']);
});

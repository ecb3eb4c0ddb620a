/**
 * The walk that validates a batch without allocating per record or header
 * (engine/codec/record-scan.ts) and the pieces it stands on: the LZ4 frame read block by
 * block, and xxHash32 over pieces. Each is checked against the whole-buffer version it
 * must agree with (lz4FrameDecode, xxhash32, decodeBatchRecords), on accepted and refused
 * input alike; then each limit is crossed by one byte, and the header bomb is refused at
 * its first record.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type RecordLimits,
  NO_RECORD_LIMITS,
  checkBatch,
  decodeBatchRecords,
  encodeRecordBatch,
  lz4FrameDecode,
  lz4FrameEncode,
  scanBatchRecords,
  validateBatch,
} from '../../../engine/codec/index.ts';
import { Lz4FrameReader } from '../../../engine/codec/lz4-frame.ts';
import { Xxhash32Stream, xxhash32 } from '../../../engine/codec/xxhash32.ts';
import { SluiceError } from '../../../engine/errors.ts';
import { headerBomb, rawRecord, wrapRecords } from '../../helpers/attack-batches.ts';
import { IMPLS, type Rng, buf, concat, lz4Frame, lz4pkg, makeBytes, seeded, selectImpl } from './helpers.ts';

const KiB = 1024;
/** An integer in [lo, hi]. */
const between = (rng: Rng, lo: number, hi: number): number => lo + rng.int(hi - lo + 1);
const te = new TextEncoder();

function readBlocks(frame: Uint8Array, maxBytes?: number): Uint8Array {
  const r = new Lz4FrameReader(frame, maxBytes);
  const parts: Uint8Array[] = [];
  for (let b = r.next(); b !== null; b = r.next()) parts.push(b.slice());
  assert.equal(r.next(), null, 'a finished reader stays finished');
  return concat(parts);
}

/** What `fn` throws, as code/reason, or 'ok' with its result. */
function outcome<T>(fn: () => T): { ok: T } | { code: string; reason: string } {
  try {
    return { ok: fn() };
  } catch (err) {
    if (!(err instanceof SluiceError)) throw err;
    return { code: err.code, reason: err.reason };
  }
}

function assertRefused(fn: () => unknown, code: string, reason: string, what = ''): void {
  const o = outcome(fn);
  assert.deepEqual('ok' in o ? 'accepted' : o, { code, reason }, what);
}

test('xxHash32 over pieces equals xxHash32 over the whole, whatever the cuts', async (t) => {
  await seeded(t, (rng) => {
    for (const n of [0, 1, 15, 16, 17, 31, 32, 33, 1000, 70_000]) {
      const data = rng.bytes(n);
      for (let round = 0; round < 20; round++) {
        const seed = round === 0 ? 0 : rng.u32();
        const h = new Xxhash32Stream(seed);
        for (let p = 0; p < n; ) {
          const k = Math.min(n - p, between(rng, 0, 40));
          h.update(data, p, p + k);
          p += k;
        }
        assert.equal(h.digest(), xxhash32(data, 0, n, seed), `${n} bytes, seed ${seed}`);
      }
    }
  });
});

for (const impl of IMPLS) {
  describe(`LZ4 frames read block by block (${impl} block codec)`, () => {
    test('the blocks concatenate to what lz4FrameDecode returns, and both refuse the same frames', async (t) => {
      selectImpl(impl);
      await seeded(t, (rng) => {
        const data = concat([makeBytes(rng.u32(), 200 * KiB, 'text'), rng.bytes(70 * KiB), makeBytes(rng.u32(), 90 * KiB, 'runs')]);
        const frames: [string, Uint8Array][] = [
          ['ours', lz4FrameEncode(data)],
          ['empty', lz4FrameEncode(new Uint8Array(0))],
          ['trailing bytes', concat([lz4FrameEncode(data), Uint8Array.of(1, 2, 3, 4)])],
          ['two frames', concat([lz4FrameEncode(data), lz4FrameEncode(data)])],
          ['cut in the last block', lz4FrameEncode(data).subarray(0, -9)],
          ['linked blocks', new Uint8Array(lz4pkg().encode(buf(data), { blockIndependence: false }))],
        ];
        for (const blockMaxSize of [64 * KiB, 256 * KiB, 4096 * KiB]) {
          for (const streamChecksum of [true, false]) {
            const f = new Uint8Array(lz4pkg().encode(buf(data), { blockMaxSize, streamChecksum }));
            frames.push([`lz4.encode ${blockMaxSize} checksum ${streamChecksum}`, f]);
            if (streamChecksum) {
              const bad = f.slice();
              bad[bad.length - 1] ^= 1;
              frames.push([`lz4.encode ${blockMaxSize} with a wrong content checksum`, bad]);
            }
          }
        }
        const small = makeBytes(3, 5000, 'text');
        frames.push(['declared size', lz4Frame([{ data: small, stored: true }], { contentSize: small.length })]);
        frames.push(['declared one byte long', lz4Frame([{ data: small, stored: true }], { contentSize: small.length + 1 })]);
        frames.push(['declared one byte short', lz4Frame([{ data: small, stored: true }], { contentSize: small.length - 1 })]);
        frames.push(['block checksums', lz4Frame([{ data: small, stored: true }], { blockChecksums: true })]);
        frames.push(['an empty block', lz4Frame([{ data: small, stored: true }, { data: new Uint8Array(0), stored: true }, { data: small, stored: true }])]);
        for (const [name, frame] of frames) {
          const whole = outcome(() => lz4FrameDecode(frame));
          const blocks = outcome(() => readBlocks(frame));
          if ('ok' in whole && 'ok' in blocks) assert.ok(Buffer.compare(buf(whole.ok), buf(blocks.ok)) === 0, `${name}: same bytes`);
          else assert.deepEqual(blocks, whole, `${name}: same outcome`);
        }
      });
    });

    test('a frame past maxBytes is refused by the caller’s error, without decoding it whole', () => {
      selectImpl(impl);
      const data = new Uint8Array(1024 * KiB); // zeros: compresses ~250x
      const frame = lz4FrameEncode(data);
      assert.ok(frame.length < 10 * KiB);
      const mine = new Error('mine');
      const r = new Lz4FrameReader(frame, 300 * KiB, () => mine);
      let blocks = 0;
      assert.throws(() => {
        while (r.next() !== null) blocks++;
      }, mine);
      assert.equal(blocks, 4, 'stopped at the block that crossed the limit');
      assert.ok(r.decodedBytes <= 300 * KiB + 64 * KiB);
      // A declared size past the limit is refused before any block.
      const declared = lz4Frame([{ data: data.subarray(0, 1000), stored: true }], { contentSize: 400 * KiB });
      assert.throws(() => new Lz4FrameReader(declared, 300 * KiB, () => mine), mine);
      assertRefused(() => readBlocks(frame, 300 * KiB), 'BAD_REQUEST', 'BAD_LZ4', 'without a caller error: BAD_LZ4');
    });
  });

  describe(`scanBatchRecords (${impl} codecs)`, () => {
    test('agrees with decodeBatchRecords on random batches, records crossing LZ4 blocks included', async (t) => {
      selectImpl(impl);
      await seeded(t, (rng) => {
        for (let round = 0; round < 60; round++) {
          const n = between(rng, 1, 40);
          const big = round % 5 === 0;
          const records = Array.from({ length: n }, (_, i) => ({
            key: between(rng, 0, 3) === 0 ? null : rng.bytes(between(rng, 0, 30)),
            value: between(rng, 0, 5) === 0 ? null : makeBytes(rng.u32(), big ? between(rng, 0, 150 * KiB) : between(rng, 0, 300), between(rng, 0, 1) ? 'text' : 'random'),
            headers: Array.from({ length: between(rng, 0, 4) }, (_, j) => ({ key: `h${j}-${'é'.repeat(between(rng, 0, 3))}`, value: between(rng, 0, 4) === 0 ? null : rng.bytes(between(rng, 0, 20)) })),
            timestamp: 1_700_000_000_000 + between(rng, -5000, 5000) + i,
          }));
          for (const codec of ['none', 'lz4'] as const) {
            const batch = encodeRecordBatch(records, { codec });
            const h = checkBatch(batch, 0);
            const decoded = decodeBatchRecords(batch, 0, h);
            const scan = scanBatchRecords(batch, 0, h);
            const ts = decoded.map((r) => r.timestamp);
            assert.equal(scan.maxTimestamp, Math.max(...ts));
            assert.equal(scan.minTimestamp, Math.min(...ts));
            const sizes = decoded.map((r) => (r.key?.length ?? 0) + (r.value?.length ?? 0) + r.headers.reduce((s, x) => s + te.encode(x.key).length + (x.value?.length ?? 0), 0));
            assert.equal(scan.largestRecordBytes, Math.max(...sizes), `${codec}: largest record`);
            // Exactly at the limits: accepted.
            const at: RecordLimits = { recordBytesMax: Math.max(...sizes), recordHeadersMax: Math.max(...records.map((r) => r.headers.length)), batchDecodedBytesMax: scan.decodedBytes };
            scanBatchRecords(batch, 0, h, at);
            // One over any of them: refused with its reason.
            assertRefused(() => scanBatchRecords(batch, 0, h, { ...at, recordBytesMax: at.recordBytesMax - 1 }), 'TOO_LARGE', 'RECORD_TOO_LARGE', `${codec}: record bytes - 1`);
            if (at.recordHeadersMax > 0) {
              assertRefused(() => scanBatchRecords(batch, 0, h, { ...at, recordHeadersMax: at.recordHeadersMax - 1 }), 'TOO_LARGE', 'TOO_MANY_HEADERS', `${codec}: headers - 1`);
            }
            assertRefused(() => scanBatchRecords(batch, 0, h, { ...at, batchDecodedBytesMax: at.batchDecodedBytesMax - 1 }), 'TOO_LARGE', 'BATCH_DECODED_TOO_LARGE', `${codec}: decoded bytes - 1`);
          }
        }
      });
    });

    test('key, value, header key and header value each count toward the record bytes', () => {
      selectImpl(impl);
      const limits: RecordLimits = { ...NO_RECORD_LIMITS, recordBytesMax: 100 };
      const b100 = new Uint8Array(100);
      const b101 = new Uint8Array(101);
      const shapes: [string, (b: Uint8Array) => Uint8Array][] = [
        ['key', (b) => rawRecord({ offsetDelta: 0, key: b })],
        ['value', (b) => rawRecord({ offsetDelta: 0, value: b })],
        ['header key', (b) => rawRecord({ offsetDelta: 0, headers: [[b, null]] })],
        ['header value', (b) => rawRecord({ offsetDelta: 0, headers: [[new Uint8Array(0), b]] })],
        ['key and value', (b) => rawRecord({ offsetDelta: 0, key: b.subarray(0, 50), value: b.subarray(50) })],
        ['many headers', (b) => rawRecord({ offsetDelta: 0, headers: Array.from({ length: b.length / 10 }, (_, i) => [b.subarray(i * 10, i * 10 + 5), b.subarray(i * 10 + 5, i * 10 + 10)] as [Uint8Array, Uint8Array]) })],
      ];
      for (const codec of ['none', 'lz4'] as const) {
        for (const [what, make] of shapes) {
          const ok = wrapRecords(make(b100), { codec, recordCount: 1, baseTimestamp: 1 });
          scanBatchRecords(ok, 0, checkBatch(ok, 0), limits);
          const over = wrapRecords(make(what === 'many headers' ? new Uint8Array(110) : b101), { codec, recordCount: 1, baseTimestamp: 1 });
          assertRefused(() => scanBatchRecords(over, 0, checkBatch(over, 0), limits), 'TOO_LARGE', 'RECORD_TOO_LARGE', `${codec} ${what}`);
        }
      }
    });

    test('regression: the LZ4 header bomb is refused at its first record, and within the limits it is walked without objects', () => {
      selectImpl(impl);
      // 33.5 M two-byte headers: 64 MiB of records in a frame of about 270 KB.
      const bomb = headerBomb(33_500_000);
      assert.ok(bomb.length < 400 * KiB, `${bomb.length} bytes`);
      const h = checkBatch(bomb, 0);
      assertRefused(() => scanBatchRecords(bomb, 0, h, { ...NO_RECORD_LIMITS, recordHeadersMax: 128 }), 'TOO_LARGE', 'TOO_MANY_HEADERS');
      assertRefused(() => scanBatchRecords(bomb, 0, h, { ...NO_RECORD_LIMITS, batchDecodedBytesMax: 16 * 1024 * KiB }), 'TOO_LARGE', 'BATCH_DECODED_TOO_LARGE');
      // A smaller bomb under no limits but the format's: a structurally valid batch.
      const small = headerBomb(100_000);
      const s = scanBatchRecords(small, 0, checkBatch(small, 0));
      assert.equal(s.decodedBytes, lz4FrameDecode(small.subarray(61)).length);
      assert.ok(s.decodedBytes > 200_000);
      assert.equal(validateBatch(small).recordCount, 1);
    });
  });
}

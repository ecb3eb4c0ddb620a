/**
 * The record-by-record builder writes exactly what encodeRecordBatch writes for the same
 * records (strings given as text are their UTF-8 bytes, as Buffer.from makes them), plain
 * byte for byte and LZ4 record for record, whatever the text: ASCII, any Unicode, lone
 * surrogates, lengths around the varint steps, long values.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type ProducerRecord, decodeBatches, encodeRecordBatch, validateBatch } from '../../../engine/codec/index.ts';
import { type RecordField, RecordBatchBuilder, writeUtf8 } from '../../../engine/codec/record-batch-builder.ts';
import { installNativeCodecs } from '../../../engine/native-codecs.ts';

const textArb = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  // Raw UTF-16 units: lone surrogates included.
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
  // Around the varint steps (63/64, 8191/8192 bytes) and past the native-encoding threshold.
  fc.constantFrom(63, 64, 65, 127, 128, 255, 256, 257, 8191, 8192, 8193).chain((n) => fc.constantFrom('a'.repeat(n), 'é'.repeat(n), `${'b'.repeat(n - 1)}€`)),
);
const fieldArb: fc.Arbitrary<RecordField> = fc.oneof(fc.constant(null), textArb, fc.uint8Array({ maxLength: 100 }));
const recordArb = fc.record({
  key: fieldArb,
  value: fieldArb,
  headers: fc.array(fc.tuple(textArb, fieldArb), { maxLength: 3 }),
});

const bytesOf = (f: RecordField): Uint8Array | null => (typeof f === 'string' ? Buffer.from(f, 'utf8') : f);

function asProducerRecord(r: { key: RecordField; value: RecordField; headers: [string, RecordField][] }): ProducerRecord {
  const rec: ProducerRecord = { key: bytesOf(r.key), value: bytesOf(r.value) };
  if (r.headers.length > 0) rec.headers = r.headers.map(([k, v]) => ({ key: k, value: bytesOf(v) }));
  return rec;
}

test('writeUtf8 writes what Buffer.from(s, "utf8") holds', () => {
  fc.assert(
    fc.property(textArb, (s) => {
      const buf = new Uint8Array(s.length * 3 + 8);
      const n = writeUtf8(buf, 3, s);
      assert.deepEqual(Buffer.from(buf.subarray(3, 3 + n)), Buffer.from(s, 'utf8'));
    }),
    { numRuns: 500 },
  );
});

test('a plain batch built record by record is byte for byte the batch encodeRecordBatch writes', () => {
  fc.assert(
    fc.property(fc.array(recordArb, { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 2 ** 45 }), (records, ts) => {
      const b = new RecordBatchBuilder(64);
      for (const r of records) b.add(r.key, r.value, r.headers);
      const built = b.seal('none', ts);
      assert.equal(b.count, 0, 'empty after sealing');
      const reference = encodeRecordBatch(records.map(asProducerRecord), { codec: 'none', timestamp: ts });
      assert.deepEqual(Buffer.from(built), Buffer.from(reference));
    }),
    { numRuns: 300 },
  );
});

test('an LZ4 batch built record by record holds the same records; a builder is reused across batches', () => {
  const b = new RecordBatchBuilder();
  fc.assert(
    fc.property(fc.array(recordArb, { minLength: 1, maxLength: 20 }), (records) => {
      for (const r of records) b.add(r.key, r.value, r.headers);
      const built = b.seal('lz4', 1_700_000_000_000);
      validateBatch(built);
      const reference = encodeRecordBatch(records.map(asProducerRecord), { codec: 'none', timestamp: 1_700_000_000_000 });
      assert.deepEqual(decodeBatches(built), decodeBatches(reference));
    }),
    { numRuns: 200 },
  );
});

test('sealing an empty builder is refused', () => {
  assert.throws(() => new RecordBatchBuilder().seal('none', 0), RangeError);
});

test("with the native codecs installed (Buffer's utf8Write) the text is written the same", () => {
  const natives = installNativeCodecs();
  assert.ok(natives.utf8, 'the native UTF-8 writer took');
  fc.assert(
    fc.property(textArb, (s) => {
      const buf = new Uint8Array(s.length * 3 + 8);
      const n = writeUtf8(buf, 5, s);
      assert.deepEqual(Buffer.from(buf.subarray(5, 5 + n)), Buffer.from(s, 'utf8'));
    }),
    { numRuns: 500 },
  );
});

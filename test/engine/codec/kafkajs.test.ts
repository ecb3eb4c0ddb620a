/**
 * Cross-decoding with kafkajs (protocol §2: "a standard Kafka record-batch decoder (for
 * example the one in the kafkajs package with an LZ4 codec) must decode them"):
 *  (a) kafkajs's RecordBatch decoder, with kafkajs-lz4, reads every field of our batches;
 *  (b) our decoder reads batches written by kafkajs's RecordBatch encoder, validateBatch
 *      accepts them, and our CRC equals the one kafkajs wrote (kafkajs never checks CRCs,
 *      so this is the only place a disagreement would show).
 * For codec none × lz4 and the portable × native CRC-32C / LZ4 code.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type Codec,
  type ProducerRecord,
  type RecordHeader,
  type StoredRecord,
  crc32c,
  decodeBatchRecords,
  decodeBatches,
  encodeRecordBatch,
  validateBatch,
} from '../../../engine/codec/index.ts';
import { type BatchInput, batchArb, encodeOptions, expected } from './arbitraries.ts';
import { IMPLS, buf, crcField, frameBlocks, kafka, seedFor, selectImpl } from './helpers.ts';

const CODECS: readonly Codec[] = ['none', 'lz4'];

type Bytes = string | null;
/** Buffers and Uint8Arrays as hex, so that either side compares by content. */
const hex = (b: Uint8Array | null): Bytes => (b === null ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex'));

/** kafkajs folds headers into an object: a repeated key becomes an array of its values. */
function foldHeaders(headers: readonly RecordHeader[]): Record<string, Bytes | Bytes[]> {
  const out: Record<string, Bytes | Bytes[]> = {};
  for (const { key, value } of headers) {
    const prev = out[key];
    out[key] = prev === undefined ? hex(value) : Array.isArray(prev) ? [...prev, hex(value)] : [prev, hex(value)];
  }
  return out;
}

function normalizeKafkaHeaders(headers: Record<string, any>): Record<string, Bytes | Bytes[]> {
  const out: Record<string, Bytes | Bytes[]> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v.map((x) => hex(x)) : hex(v);
  return out;
}

async function kafkaDecode(batch: Uint8Array): Promise<any> {
  const { Decoder, RecordBatchDecoder } = kafka();
  return RecordBatchDecoder(new Decoder(buf(batch)));
}

function assertKafkaSees(decoded: any, input: BatchInput, want: StoredRecord[]): void {
  const stamps = want.map((r) => r.timestamp);
  assert.equal(decoded.firstOffset, String(input.baseOffset), 'firstOffset');
  assert.equal(decoded.lastOffsetDelta, want.length - 1, 'lastOffsetDelta');
  assert.equal(decoded.firstTimestamp, String(Math.min(...stamps)), 'firstTimestamp');
  assert.equal(decoded.maxTimestamp, String(Math.max(...stamps)), 'maxTimestamp');
  assert.equal(decoded.partitionLeaderEpoch, 0);
  assert.equal(decoded.producerId, '-1');
  assert.equal(decoded.producerEpoch, -1);
  assert.equal(decoded.firstSequence, -1);
  assert.equal(decoded.inTransaction, false);
  assert.equal(decoded.isControlBatch, false);
  assert.equal(decoded.records.length, want.length, 'record count');
  decoded.records.forEach((r: any, i: number) => {
    const w = want[i];
    assert.equal(r.magicByte, 2);
    assert.equal(r.offset, String(w.offset), `record ${i} offset`);
    assert.equal(r.timestamp, String(w.timestamp), `record ${i} timestamp`);
    assert.equal(hex(r.key), hex(w.key), `record ${i} key`);
    assert.equal(hex(r.value), hex(w.value), `record ${i} value`);
    assert.deepEqual(normalizeKafkaHeaders(r.headers), foldHeaders(w.headers), `record ${i} headers`);
  });
}

/**
 * kafkajs takes headers as an object, and so writes them in Object.keys order (integer-like
 * keys first) with repeated keys grouped: the order a batch written by it holds.
 */
function kafkaHeaderObject(headers: readonly RecordHeader[]): Record<string, Buffer | Buffer[]> {
  const out: Record<string, Buffer | Buffer[]> = {};
  for (const { key, value } of headers) {
    const v = Buffer.from(value!);
    const prev = out[key];
    out[key] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function headersInKafkaOrder(headers: readonly RecordHeader[]): RecordHeader[] {
  const obj = kafkaHeaderObject(headers);
  return Object.keys(obj).flatMap((key) => {
    const v = obj[key];
    return (Array.isArray(v) ? v : [v]).map((value) => ({ key, value: new Uint8Array(value) }));
  });
}

async function kafkaEncode(input: BatchInput, codec: Codec): Promise<Uint8Array> {
  const { RecordBatch, Record, Long, Types } = kafka();
  const stamps = input.records.map((r) => r.timestamp ?? input.timestamp);
  const baseTs = Math.min(...stamps);
  const records = input.records.map((r, i) =>
    Record({
      offsetDelta: i,
      timestampDelta: stamps[i] - baseTs,
      key: r.key == null ? null : Buffer.from(r.key),
      value: r.value === null ? null : Buffer.from(r.value),
      headers: kafkaHeaderObject(r.headers ?? []),
    }),
  );
  const batch = await RecordBatch({
    compression: codec === 'lz4' ? Types.LZ4 : Types.None,
    firstOffset: Long.fromNumber(input.baseOffset),
    firstTimestamp: baseTs,
    maxTimestamp: Math.max(...stamps),
    partitionLeaderEpoch: 0,
    lastOffsetDelta: records.length - 1,
    producerId: Long.fromValue(-1),
    producerEpoch: -1,
    firstSequence: -1,
    records,
  });
  return new Uint8Array(batch.buffer);
}

/** The same records with every timestamp explicit and headers in the order kafkajs writes. */
function asKafkaWrites(input: BatchInput): BatchInput {
  const records: ProducerRecord[] = input.records.map((r) => ({
    ...r,
    timestamp: r.timestamp ?? input.timestamp,
    headers: headersInKafkaOrder(r.headers ?? []),
  }));
  return { ...input, records };
}

for (const impl of IMPLS) {
  for (const codec of CODECS) {
    describe(`kafkajs (codec ${codec}, ${impl} CRC-32C and LZ4)`, () => {
      test('(a) kafkajs decodes every field of the batches we write (property)', async (t) => {
        selectImpl(impl);
        await fc.assert(
          fc.asyncProperty(batchArb(), async (input) => {
            const batch = encodeRecordBatch(input.records, encodeOptions(input, codec));
            assertKafkaSees(await kafkaDecode(batch), input, expected(input));
          }),
          { seed: seedFor(t), numRuns: 40 },
        );
      });

      test('(b) we decode and validate the batches kafkajs writes, and agree on the CRC (property)', async (t) => {
        selectImpl(impl);
        const { crc32C } = kafka();
        await fc.assert(
          // kafkajs cannot write a null header value (it measures it with Buffer.byteLength).
          fc.asyncProperty(batchArb(false), async (input) => {
            const theirs = await kafkaEncode(input, codec);
            const h = validateBatch(theirs);
            assert.equal(h.codec, codec === 'lz4' ? 3 : 0);
            assert.equal(h.crc, crcField(theirs));
            assert.equal(crc32c(theirs, 21, theirs.length), crcField(theirs), 'our CRC equals the one kafkajs wrote');
            assert.equal(crc32C(buf(theirs.subarray(21))), crcField(theirs));
            const want = expected(asKafkaWrites(input));
            assert.deepEqual(decodeBatchRecords(theirs), want);
            assert.deepEqual(decodeBatches(theirs), want);
            if (codec === 'none') {
              // Same records, same fields: the same bytes.
              const w = asKafkaWrites(input);
              const ours = encodeRecordBatch(w.records, encodeOptions(w, codec));
              assert.deepEqual(ours, theirs, 'byte-identical to kafkajs');
            } else {
              // kafkajs-lz4 writes lz4.encode's defaults: 4 MiB blocks and a content checksum.
              const { flg, bd } = frameBlocks(theirs.subarray(61));
              assert.equal(flg, 0x64);
              assert.equal(bd, 0x70);
            }
          }),
          { seed: seedFor(t), numRuns: 40 },
        );
      });
    });
  }
}

/**
 * RecordBatch v2 round trips: encodeRecordBatch → validateBatch / decodeBatchRecords /
 * decodeBatches, for every codec (none, lz4) × implementation (portable, native), with
 * random keys, values (null, empty, up to ~300 KiB), headers (Unicode keys, null values),
 * timestamps and base offsets up to 2^53. Also the fixed header fields of protocol §2 and
 * the in-place rewrites of baseOffset and partitionLeaderEpoch that the CRC does not cover.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  BATCH_HEADER_BYTES,
  type Codec,
  type StoredRecord,
  batchSizeAt,
  checkBatch,
  crc32cPortable,
  decodeBatchRecords,
  decodeBatches,
  encodeRecordBatch,
  lz4FrameEncode,
  readBatchHeader,
  setBaseOffset,
  setPartitionLeaderEpoch,
  validateBatch,
} from '../../../engine/codec/index.ts';
import { type BatchInput, MAX_RECORDS, batchArb, encodeOptions, expected } from './arbitraries.ts';
import {
  IMPLS,
  assertCorrupt,
  concat,
  crcField,
  frameBlocks,
  kafka,
  makeBytes,
  rawBatch,
  rawRecord,
  rawRecordBody,
  resealCrc,
  seedFor,
  selectImpl,
} from './helpers.ts';

const CODECS: readonly Codec[] = ['none', 'lz4'];
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Batches written in the portable suites, read again once the native codecs are in. */
const writtenByPortable: { codec: Codec; batch: Uint8Array; want: StoredRecord[] }[] = [];

function checkHeader(batch: Uint8Array, input: BatchInput, codec: Codec): void {
  const h = validateBatch(batch);
  const stamps = input.records.map((r) => r.timestamp ?? input.timestamp);
  assert.deepEqual(h, {
    baseOffset: input.baseOffset,
    size: batch.length,
    partitionLeaderEpoch: 0,
    magic: 2,
    crc: crc32cPortable(batch, 21, batch.length),
    attributes: codec === 'lz4' ? 3 : 0,
    codec: codec === 'lz4' ? 3 : 0,
    lastOffsetDelta: input.records.length - 1,
    baseTimestamp: Math.min(...stamps),
    maxTimestamp: Math.max(...stamps),
    producerId: -1,
    producerEpoch: -1,
    baseSequence: -1,
    recordCount: input.records.length,
  });
  assert.equal(batchSizeAt(batch, 0), batch.length);
}

for (const impl of IMPLS) {
  for (const codec of CODECS) {
    describe(`record batch round trip (codec ${codec}, ${impl} CRC-32C and LZ4)`, () => {
      test('encode → validate → decode gives every field back (property)', (t) => {
        selectImpl(impl);
        fc.assert(
          fc.property(batchArb(), (input) => {
            const batch = encodeRecordBatch(input.records, encodeOptions(input, codec));
            checkHeader(batch, input, codec);
            const want = expected(input);
            assert.deepEqual(decodeBatchRecords(batch), want);
            assert.deepEqual(decodeBatches(batch), want);
            if (codec === 'lz4') frameBlocks(batch.subarray(BATCH_HEADER_BYTES));
            if (impl === 'portable' && writtenByPortable.length < 40) writtenByPortable.push({ codec, batch, want });
          }),
          { seed: seedFor(t), numRuns: 60 },
        );
      });

      test('decodeBatches reads a run of batches and skips records below minOffset (property)', (t) => {
        selectImpl(impl);
        fc.assert(
          fc.property(fc.array(batchArb(), { minLength: 1, maxLength: 4 }), fc.nat(), (inputs, cut) => {
            // Consecutive offsets, as a segment holds them.
            let next = Math.min(inputs[0].baseOffset, Number.MAX_SAFE_INTEGER - 4 * MAX_RECORDS);
            const batches: Uint8Array[] = [];
            const want: StoredRecord[] = [];
            for (const input of inputs) {
              const placed = { ...input, baseOffset: next };
              batches.push(encodeRecordBatch(placed.records, encodeOptions(placed, codec)));
              want.push(...expected(placed));
              next += input.records.length;
            }
            const run = concat(batches);
            assert.deepEqual(decodeBatches(run), want);
            const minOffset = want[0].offset + (cut % (want.length + 1));
            assert.deepEqual(
              decodeBatches(run, minOffset),
              want.filter((r) => r.offset >= minOffset),
            );
            let pos = 0;
            for (const b of batches) {
              assert.equal(batchSizeAt(run, pos), b.length);
              assert.equal(checkBatch(run, pos).size, b.length);
              pos += b.length;
            }
          }),
          { seed: seedFor(t), numRuns: 25 },
        );
      });

      test('setBaseOffset and setPartitionLeaderEpoch rewrite in place and keep the CRC valid (property)', (t) => {
        selectImpl(impl);
        const offsets = fc.oneof(
          fc.constantFrom(0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER - MAX_RECORDS),
          fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - MAX_RECORDS }),
        );
        fc.assert(
          fc.property(batchArb(), offsets, fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.nat(64), (input, offset, epoch, lead) => {
            const batch = encodeRecordBatch(input.records, encodeOptions(input, codec));
            // Somewhere inside a larger buffer, as in a segment.
            const seg = concat([new Uint8Array(lead).fill(0xee), batch, new Uint8Array(7).fill(0xdd)]);
            const crc = crcField(seg, lead);
            setBaseOffset(seg, lead, offset);
            setPartitionLeaderEpoch(seg, lead, epoch);
            assert.equal(crcField(seg, lead), crc, 'the CRC field is untouched');
            const h = checkBatch(seg, lead, lead + batch.length);
            assert.equal(h.baseOffset, offset);
            assert.equal(h.partitionLeaderEpoch, epoch);
            assert.equal(h.crc, crcField(batch), 'and still matches the bytes');
            const moved = seg.subarray(lead, lead + batch.length);
            validateBatch(moved);
            assert.deepEqual(
              decodeBatchRecords(moved),
              expected({ ...input, baseOffset: offset }),
            );
            assert.deepEqual([...seg.subarray(0, lead)], new Array<number>(lead).fill(0xee), 'bytes before are untouched');
            assert.deepEqual([...seg.subarray(lead + batch.length)], new Array<number>(7).fill(0xdd), 'bytes after are untouched');
          }),
          { seed: seedFor(t), numRuns: 40 },
        );
      });

      test('a 300 KiB value spans several LZ4 blocks and comes back whole', () => {
        selectImpl(impl);
        for (const fill of ['text', 'random', 'runs'] as const) {
          const value = makeBytes(99, 300 * 1024, fill);
          const batch = encodeRecordBatch([{ key: utf8('k'), value }, { value: null }], { codec, timestamp: 5 });
          if (codec === 'lz4') {
            const { blocks } = frameBlocks(batch.subarray(BATCH_HEADER_BYTES));
            assert.ok(blocks.length >= 5, `${fill}: ${blocks.length} blocks`);
            if (fill === 'random') assert.ok(blocks.some((b) => b.stored), 'random data is stored');
            else assert.ok(batch.length < value.length / 2, `${fill} compresses (${batch.length} bytes)`);
          }
          validateBatch(batch);
          const [a, b] = decodeBatchRecords(batch);
          assert.deepEqual(a.value, value);
          assert.equal(b.value, null);
        }
      });
    });
  }
}

describe('record batches written by the portable codec', () => {
  test('are read with the native codecs', () => {
    selectImpl('native');
    assert.ok(writtenByPortable.length > 0);
    for (const { batch, want } of writtenByPortable) {
      validateBatch(batch);
      assert.deepEqual(decodeBatchRecords(batch), want);
    }
  });
});

describe('record batch layout (protocol §2)', () => {
  test('fixed fields sit where the contract puts them', () => {
    const batch = encodeRecordBatch([{ key: null, value: utf8('v') }], { baseOffset: 0x0102030405, timestamp: 0x0a0b0c0d0e });
    const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    assert.equal(dv.getBigInt64(0), 0x0102030405n, 'baseOffset');
    assert.equal(dv.getInt32(8), batch.length - 12, 'batchLength counts the bytes after it');
    assert.equal(dv.getInt32(12), 0, 'partitionLeaderEpoch');
    assert.equal(dv.getInt8(16), 2, 'magic');
    assert.equal(dv.getUint32(17), crc32cPortable(batch, 21, batch.length), 'crc over attributes..end');
    assert.equal(dv.getInt16(21), 0, 'attributes');
    assert.equal(dv.getInt32(23), 0, 'lastOffsetDelta');
    assert.equal(dv.getBigInt64(27), 0x0a0b0c0d0en, 'baseTimestamp');
    assert.equal(dv.getBigInt64(35), 0x0a0b0c0d0en, 'maxTimestamp');
    assert.equal(dv.getBigInt64(43), -1n, 'producerId');
    assert.equal(dv.getInt16(51), -1, 'producerEpoch');
    assert.equal(dv.getInt32(53), -1, 'baseSequence');
    assert.equal(dv.getInt32(57), 1, 'recordCount');
    // length 7 (zig-zag 14) | attributes 0 | timestampDelta 0 | offsetDelta 0 | null key (-1 → 0x01) |
    // value length 1 (0x02) 'v' | no headers
    assert.deepEqual([...batch.subarray(61)], [0x0e, 0, 0, 0, 0x01, 0x02, 0x76, 0]);
    assert.equal(batch.length, 69);
  });

  test('the codec sits in attributes bits 0-2 and the record count stays outside the LZ4 frame', () => {
    const batch = encodeRecordBatch([{ value: utf8('a') }, { value: utf8('b') }], { codec: 'lz4', timestamp: 1 });
    const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    assert.equal(dv.getInt16(21) & 7, 3);
    assert.equal(dv.getInt32(57), 2);
    assert.deepEqual([...batch.subarray(61, 65)], [0x04, 0x22, 0x4d, 0x18], 'the records region is an LZ4 frame');
  });

  test('without a timestamp the batch takes the time of encoding', (t) => {
    t.mock.method(Date, 'now', () => 1_700_000_123_456);
    const batch = encodeRecordBatch([{ value: null }, { value: null, timestamp: 7 }]);
    const [a, b] = decodeBatchRecords(batch);
    assert.equal(a.timestamp, 1_700_000_123_456);
    assert.equal(b.timestamp, 7);
    assert.equal(readBatchHeader(batch, 0).baseTimestamp, 7, 'baseTimestamp is the smallest');
    assert.equal(readBatchHeader(batch, 0).maxTimestamp, a.timestamp);
  });

  test('an empty batch is refused with EMPTY_BATCH', () => {
    assertCorrupt(() => encodeRecordBatch([]), 'EMPTY_BATCH');
  });

  test('batchSizeAt needs the 12 bytes of baseOffset and batchLength', () => {
    const batch = encodeRecordBatch([{ value: null }], { timestamp: 1 });
    for (let n = 0; n < 12; n++) assert.equal(batchSizeAt(batch.subarray(0, n), 0), -1);
    assert.equal(batchSizeAt(batch.subarray(0, 12), 0), batch.length);
    assert.equal(batchSizeAt(concat([new Uint8Array(3), batch]), 3), batch.length);
  });
});

describe('validateBatch regressions', () => {
  const two = (): Uint8Array => concat([rawRecord({ offsetDelta: 0, value: utf8('a') }), rawRecord({ offsetDelta: 1, value: utf8('b') })]);

  test('regression: a recordCount above the records is BAD_COUNT, not BAD_VARINT', () => {
    // The reader used to run off the end looking for the missing record's length varint.
    for (const attributes of [0, 3]) {
      const body = attributes === 3 ? lz4FrameEncode(two()) : two();
      validateBatch(rawBatch(body, { recordCount: 2, attributes }));
      assertCorrupt(() => validateBatch(rawBatch(body, { recordCount: 3, attributes })), 'BAD_COUNT', `(codec ${attributes}, 3 of 2)`);
      assertCorrupt(() => validateBatch(rawBatch(body, { recordCount: 2 ** 31 - 1, attributes })), 'BAD_COUNT', `(codec ${attributes}, 2^31 - 1 of 2)`);
      assertCorrupt(() => validateBatch(rawBatch(body, { recordCount: 1, attributes })), 'BAD_COUNT', `(codec ${attributes}, 1 of 2)`);
    }
  });

  test('regression: attribute bits beyond the codec are refused, since Kafka clients read them', async () => {
    // Bit 3 says the timestamps are log-append time: kafkajs (like Kafka) then gives every
    // record the batch's maxTimestamp, where our decoder gave baseTimestamp + delta.
    const batch = encodeRecordBatch([{ value: utf8('a'), timestamp: 1000 }, { value: utf8('b'), timestamp: 2000 }], { codec: 'none' });
    batch[22] |= 0x08;
    resealCrc(batch);
    const { Decoder, RecordBatchDecoder } = kafka();
    const theirs = await RecordBatchDecoder(new Decoder(Buffer.from(batch)));
    assert.deepEqual(
      theirs.records.map((r: { timestamp: string }) => r.timestamp),
      ['2000', '2000'],
    );
    assertCorrupt(() => validateBatch(batch), 'BAD_ATTRIBUTES', '(log-append time)');
    // Bit 4 transactional, bit 5 control (never handed to a Kafka application), 6 and up unassigned.
    for (const bit of [0x08, 0x10, 0x20, 0x40, 0x80, 0x100, 0x4000, 0x8000]) {
      for (const codec of [0, 3]) {
        const b = rawBatch(codec === 3 ? lz4FrameEncode(two()) : two(), { recordCount: 2, attributes: codec | bit });
        const what = `(attributes 0x${(codec | bit).toString(16)})`;
        assertCorrupt(() => checkBatch(b, 0), 'BAD_ATTRIBUTES', what);
        assertCorrupt(() => validateBatch(b), 'BAD_ATTRIBUTES', what);
        assertCorrupt(() => decodeBatches(b), 'BAD_ATTRIBUTES', what);
      }
    }
  });

  test('regression: negative lengths other than -1 are refused, not read as null', async () => {
    // Only -1 means null. kafkajs takes any other negative length literally and steps
    // backwards through the record, so a batch we read as a null key broke kafkajs.
    const withLength = (field: 'key' | 'value' | 'header value', n: number): Uint8Array => {
      const body = rawRecordBody({ offsetDelta: 0, key: null, value: null, headers: [{ key: utf8('h'), value: null }] });
      // attributes | timestampDelta | offsetDelta | key | value | header count | 'h' length, 'h' | header value
      const at = { key: 3, value: 4, 'header value': 8 }[field];
      body[at] = n >= 0 ? n * 2 : -n * 2 - 1;
      return rawBatch(concat([Uint8Array.of(body.length * 2), body]), { recordCount: 1 });
    };
    const [r] = decodeBatchRecords(withLength('key', -1));
    assert.deepEqual(r, { offset: 0, timestamp: 1_700_000_000_000, key: null, value: null, headers: [{ key: 'h', value: null }] });
    const { Decoder, RecordBatchDecoder } = kafka();
    await assert.rejects(RecordBatchDecoder(new Decoder(Buffer.from(withLength('key', -2)))), 'kafkajs cannot read a key length of -2');
    for (const field of ['key', 'value', 'header value'] as const) {
      validateBatch(withLength(field, -1));
      for (const n of [-2, -3, -60]) assertCorrupt(() => validateBatch(withLength(field, n)), 'BAD_LENGTH', `(${field} length ${n})`);
    }
  });

  test('regression: timestamps beyond 2^53 are refused instead of rounded', async () => {
    const at = (baseTimestamp: number | bigint, timestampDelta = 0): Uint8Array =>
      rawBatch(rawRecord({ offsetDelta: 0, timestampDelta }), { recordCount: 1, baseTimestamp });
    // kafkajs reads 2^56 + 1 exactly; a double cannot hold it, and we used to round it.
    const { Decoder, RecordBatchDecoder } = kafka();
    const theirs = await RecordBatchDecoder(new Decoder(Buffer.from(at(2n ** 56n + 1n))));
    assert.equal(theirs.records[0].timestamp, '72057594037927937');
    assertCorrupt(() => validateBatch(at(2n ** 56n + 1n)), 'BAD_TIMESTAMP', '(2^56 + 1)');
    assertCorrupt(() => decodeBatches(at(2n ** 56n + 1n)), 'BAD_TIMESTAMP', '(decodeBatches, 2^56 + 1)');
    assertCorrupt(() => validateBatch(at(-(2n ** 60n))), 'BAD_TIMESTAMP', '(-2^60)');
    assertCorrupt(() => validateBatch(at(2n ** 53n)), 'BAD_TIMESTAMP', '(2^53)');
    assertCorrupt(() => validateBatch(at(Number.MAX_SAFE_INTEGER, 1)), 'BAD_TIMESTAMP', '(2^53 - 1 plus a delta of 1)');
    // Up to 2^53 - 1 either way is exact and accepted.
    for (const ts of [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, -1, 0]) {
      validateBatch(at(ts));
      assert.equal(decodeBatchRecords(at(ts))[0].timestamp, ts);
    }
    assert.equal(decodeBatchRecords(at(Number.MAX_SAFE_INTEGER - 5, 5))[0].timestamp, Number.MAX_SAFE_INTEGER);
    assert.equal(decodeBatchRecords(at(0, 2 ** 52 - 1))[0].timestamp, 2 ** 52 - 1);
  });
});

/**
 * Hostile input: whatever bytes arrive, checkBatch / validateBatch / decodeBatches either
 * accept them or throw a CorruptBatchError — never another exception, never a hang — and
 * what validateBatch accepts, kafkajs decodes to the same records (protocol §2: the stored
 * bytes are served unchanged and a standard Kafka decoder must read them).
 *
 * Corruptions that the CRC would catch are also tried with the CRC recomputed, so that
 * they reach the record checks. Randomized tests print their seed; replay one with
 * `SEED=<n> node --import tsx --test test/engine/codec/hostile.test.ts`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BATCH_HEADER_BYTES,
  type Codec,
  type ProducerRecord,
  type StoredRecord,
  checkBatch,
  decodeBatchRecords,
  decodeBatches,
  encodeRecordBatch,
  lz4FrameEncode,
  validateBatch,
} from '../../../engine/codec/index.ts';
import { CorruptBatchError } from '../../../engine/errors.ts';
import {
  IMPLS,
  type RawRecord,
  assertCorrupt,
  buf,
  concat,
  kafka,
  lz4Frame,
  lz4pkg,
  makeBytes,
  rawBatch,
  rawRecord,
  rawRecordBody,
  resealCrc,
  seeded,
  selectImpl,
} from './helpers.ts';

const CODECS: readonly Codec[] = ['none', 'lz4'];
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

const SMALL: ProducerRecord[] = [
  { key: utf8('k0'), value: utf8('value zero'), headers: [{ key: 'h', value: utf8('x') }], timestamp: 1_700_000_000_000 },
  { key: null, value: null, timestamp: 1_700_000_000_005 },
  { key: new Uint8Array(0), value: utf8('value two value two'), headers: [{ key: 'ü', value: null }] },
];

const small = (codec: Codec): Uint8Array => encodeRecordBatch(SMALL, { codec, baseOffset: 1000, timestamp: 1_700_000_000_001 });

/** Validates, or returns the CorruptBatchError; anything else thrown fails the test. */
function outcome(batch: Uint8Array, what: string): CorruptBatchError | null {
  try {
    validateBatch(batch);
    return null;
  } catch (e) {
    if (e instanceof CorruptBatchError) return e;
    const err = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    assert.fail(`${what}: expected a CorruptBatchError, got ${err}`);
  }
}

const hex = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('hex'));

/** A batch validateBatch accepted must decode, and kafkajs must see the same records. */
async function assertAcceptedIsReadable(batch: Uint8Array, what: string): Promise<StoredRecord[]> {
  const ours = decodeBatchRecords(batch);
  assert.deepEqual(decodeBatches(batch), ours, `${what}: decodeBatches`);
  const { Decoder, RecordBatchDecoder } = kafka();
  let theirs: any;
  try {
    theirs = await RecordBatchDecoder(new Decoder(buf(batch)));
  } catch (e) {
    assert.fail(`${what}: we accepted a batch kafkajs cannot decode (${(e as Error).message})`);
  }
  assert.equal(theirs.records.length, ours.length, `${what}: kafkajs record count`);
  theirs.records.forEach((r: any, i: number) => {
    assert.equal(r.offset, String(ours[i].offset), `${what}: record ${i} offset`);
    assert.equal(r.timestamp, String(ours[i].timestamp), `${what}: record ${i} timestamp`);
    assert.equal(hex(r.key), hex(ours[i].key), `${what}: record ${i} key`);
    assert.equal(hex(r.value), hex(ours[i].value), `${what}: record ${i} value`);
    const hs: [string, string | null][] = [];
    for (const [k, v] of Object.entries(r.headers)) for (const x of Array.isArray(v) ? v : [v]) hs.push([k, hex(x as Buffer | null)]);
    const want = ours[i].headers.map((h): [string, string | null] => [h.key, hex(h.value)]);
    assert.deepEqual(hs.sort(), want.sort(), `${what}: record ${i} headers`);
  });
  return ours;
}

/** Batches with one fault each, CRC resealed, and the reason validateBatch must give. */
const rec = (r: Partial<RawRecord> & { offsetDelta: number }): Uint8Array => rawRecord({ value: utf8('v'), ...r });
const three = (): Uint8Array => concat([rec({ offsetDelta: 0 }), rec({ offsetDelta: 1 }), rec({ offsetDelta: 2 })]);
const varint11 = Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);

const cases: [string, () => Uint8Array, string][] = [
  ['a well-formed batch (control)', () => rawBatch(three(), { recordCount: 3 }), ''],
  ['an 11-byte varint as the record length', () => rawBatch(concat([varint11, rawRecordBody({ offsetDelta: 0 })]), { recordCount: 1 }), 'BAD_VARINT'],
  [
    'an 11-byte varint as the timestamp delta',
    () => {
      const body = concat([Uint8Array.of(0), varint11, rawRecordBody({ offsetDelta: 0 }).subarray(2)]);
      return rawBatch(concat([Uint8Array.of(body.length * 2), body]), { recordCount: 1 });
    },
    'BAD_VARINT',
  ],
  [
    'a record length running past the end',
    () => {
      const body = rawRecordBody({ offsetDelta: 0 });
      return rawBatch(concat([Uint8Array.of((body.length + 1) * 2), body]), { recordCount: 1 });
    },
    'BAD_LENGTH',
  ],
  ['a negative record length', () => rawBatch(concat([Uint8Array.of(0x03), rawRecordBody({ offsetDelta: 0 })]), { recordCount: 1 }), 'BAD_LENGTH'],
  ['a record length of 0', () => rawBatch(concat([Uint8Array.of(0x00), rec({ offsetDelta: 0 })]), { recordCount: 1 }), 'BAD_LENGTH'],
  [
    'a record longer than its fields',
    () => {
      const body = concat([rawRecordBody({ offsetDelta: 0 }), Uint8Array.of(0)]);
      return rawBatch(concat([Uint8Array.of(body.length * 2), body]), { recordCount: 1 });
    },
    'BAD_LENGTH',
  ],
  [
    'a record shorter than its fields',
    () => {
      const body = rawRecordBody({ offsetDelta: 0 });
      return rawBatch(concat([Uint8Array.of((body.length - 1) * 2), body.subarray(0, -1)]), { recordCount: 1 });
    },
    'BAD_VARINT',
  ],
  ['offset deltas out of order (0, 2, 1)', () => rawBatch(concat([rec({ offsetDelta: 0 }), rec({ offsetDelta: 2 }), rec({ offsetDelta: 1 })]), { recordCount: 3 }), 'BAD_OFFSET_DELTA'],
  ['offset deltas starting at 1', () => rawBatch(concat([rec({ offsetDelta: 1 }), rec({ offsetDelta: 2 })]), { recordCount: 2 }), 'BAD_OFFSET_DELTA'],
  ['a repeated offset delta', () => rawBatch(concat([rec({ offsetDelta: 0 }), rec({ offsetDelta: 0 })]), { recordCount: 2 }), 'BAD_OFFSET_DELTA'],
  ['a negative offset delta', () => rawBatch(rec({ offsetDelta: -1 }), { recordCount: 1 }), 'BAD_OFFSET_DELTA'],
  ['recordCount one below the records', () => rawBatch(three(), { recordCount: 2 }), 'BAD_COUNT'],
  ['recordCount one above the records', () => rawBatch(three(), { recordCount: 4 }), 'BAD_COUNT'],
  ['recordCount far above the records', () => rawBatch(three(), { recordCount: 2 ** 31 - 1 }), 'BAD_COUNT'],
  ['recordCount 0', () => rawBatch(three(), { recordCount: 0 }), 'BAD_COUNT'],
  ['a negative recordCount', () => rawBatch(three(), { recordCount: -3 }), 'BAD_COUNT'],
  ['lastOffsetDelta disagreeing with recordCount', () => rawBatch(three(), { recordCount: 3, lastOffsetDelta: 3 }), 'BAD_COUNT'],
  ['a null header key', () => rawBatch(brokenHeaderKey(), { recordCount: 1 }), 'BAD_LENGTH'],
  ['a key length of -2', () => rawBatch(withLength('key', -2), { recordCount: 1 }), 'BAD_LENGTH'],
  ['a value length of -3', () => rawBatch(withLength('value', -3), { recordCount: 1 }), 'BAD_LENGTH'],
  ['the transactional attribute', () => rawBatch(three(), { recordCount: 3, attributes: 0x10 }), 'BAD_ATTRIBUTES'],
  ['the log-append-time attribute', () => rawBatch(three(), { recordCount: 3, attributes: 0x08 }), 'BAD_ATTRIBUTES'],
  ['a baseTimestamp of 2^56', () => rawBatch(three(), { recordCount: 3, baseTimestamp: 2n ** 56n }), 'BAD_TIMESTAMP'],
  ['a negative header count', () => rawBatch(withHeaderCount(-1), { recordCount: 1 }), 'BAD_LENGTH'],
  ['a header count beyond the record', () => rawBatch(withHeaderCount(1000), { recordCount: 1 }), 'BAD_LENGTH'],
  ['codec 1 (gzip)', () => rawBatch(three(), { recordCount: 3, attributes: 1 }), 'BAD_CODEC'],
  ['codec 2 (snappy)', () => rawBatch(three(), { recordCount: 3, attributes: 2 }), 'BAD_CODEC'],
  ['codec 4 (zstd)', () => rawBatch(three(), { recordCount: 3, attributes: 4 }), 'BAD_CODEC'],
  ['magic 1', () => rawBatch(three(), { recordCount: 3, magic: 1 }), 'BAD_MAGIC'],
  ['codec lz4 over plain records', () => rawBatch(three(), { recordCount: 3, attributes: 3 }), 'BAD_LZ4'],
  // 04 22 4D 18 read as records: length 2, attributes 0x22, timestampDelta 0x4d, then nothing left.
  ['codec none over an LZ4 frame', () => rawBatch(lz4FrameEncode(three()), { recordCount: 3 }), 'BAD_VARINT'],
  ['an LZ4 frame with too few records', () => rawBatch(lz4FrameEncode(three()), { recordCount: 4, attributes: 3 }), 'BAD_COUNT'],
  ['an LZ4 frame with too many records', () => rawBatch(lz4FrameEncode(three()), { recordCount: 2, attributes: 3 }), 'BAD_COUNT'],
  ['an LZ4 frame with linked blocks', () => rawBatch(lz4pkg().encode(buf(three()), { blockIndependence: false }), { recordCount: 3, attributes: 3 }), 'BAD_LZ4'],
  ['an LZ4 frame with bytes after its end', () => rawBatch(concat([lz4FrameEncode(three()), Uint8Array.of(1, 2, 3, 4)]), { recordCount: 3, attributes: 3 }), 'BAD_LZ4'],
];

function brokenHeaderKey(): Uint8Array {
  // One header whose key length is -1 (null), which Kafka does not allow.
  const body = concat([rawRecordBody({ offsetDelta: 0, value: utf8('v') }).subarray(0, -1), Uint8Array.of(0x02, 0x01, 0x01)]);
  return concat([Uint8Array.of(body.length * 2), body]);
}

function withLength(field: 'key' | 'value', n: number): Uint8Array {
  // attributes | timestampDelta | offsetDelta | key length | value length: one byte each here.
  const body = rawRecordBody({ offsetDelta: 0, key: null, value: null });
  body[field === 'key' ? 3 : 4] = n >= 0 ? n * 2 : -n * 2 - 1;
  return concat([Uint8Array.of(body.length * 2), body]);
}

function withHeaderCount(n: number): Uint8Array {
  const b = new Uint8Array(10);
  const z = n >= 0 ? n * 2 : -n * 2 - 1;
  let len = 0;
  for (let v = z; ; v = Math.floor(v / 128)) {
    b[len++] = v >= 128 ? (v % 128) | 0x80 : v;
    if (v < 128) break;
  }
  const body = concat([rawRecordBody({ offsetDelta: 0 }).subarray(0, -1), b.subarray(0, len)]);
  return concat([Uint8Array.of(body.length * 2), body]);
}

for (const impl of IMPLS) {
  describe(`hostile batches (${impl} CRC-32C and LZ4)`, () => {
    for (const codec of CODECS) {
      test(`codec ${codec}: cut at every length, every check refuses it`, async (t) => {
        selectImpl(impl);
        await seeded(t, (rng) => {
          const big = encodeRecordBatch([{ value: makeBytes(1, 70_000, 'text') }, { value: makeBytes(2, 3000, 'random') }], { codec });
          // Every length of the small batch; for the big one the edges and a random sample
          // (every cut inside it takes the same path).
          const bigCuts = Array.from({ length: big.length }, (_, n) => n).filter((n) => n < 200 || n > big.length - 200 || rng.int(100) === 0);
          const runs: [Uint8Array, number[]][] = [
            [small(codec), Array.from({ length: small(codec).length }, (_, n) => n)],
            [big, bigCuts],
          ];
          for (const [batch, cuts] of runs) {
            for (const n of cuts) {
              const cut = batch.subarray(0, n);
              const reasons = ['TRUNCATED'];
              assertCorrupt(() => checkBatch(cut, 0), reasons, `(checkBatch, cut at ${n})`);
              assertCorrupt(() => validateBatch(cut), reasons, `(validateBatch, cut at ${n})`);
              if (n > 0) assertCorrupt(() => decodeBatches(cut), reasons, `(decodeBatches, cut at ${n})`);
            }
          }
        });
      });

      test(`codec ${codec}: records cut at every length, with length and CRC resealed, are refused`, () => {
        selectImpl(impl);
        const batch = small(codec);
        for (let n = BATCH_HEADER_BYTES; n < batch.length; n++) {
          const cut = batch.slice(0, n);
          new DataView(cut.buffer).setInt32(8, n - 12);
          resealCrc(cut);
          const e = outcome(cut, `cut at ${n}`);
          assert.ok(e, `records cut at ${n} of ${batch.length} were accepted`);
          const want = codec === 'lz4' ? ['BAD_LZ4'] : ['BAD_LENGTH', 'BAD_VARINT', 'BAD_COUNT'];
          assert.ok(want.includes(e.reason), `cut at ${n}: ${e.reason} (${e.message})`);
        }
      });

      test(`codec ${codec}: every single-byte change is refused by the CRC, magic or length checks`, () => {
        selectImpl(impl);
        const batch = small(codec);
        for (let p = 0; p < batch.length; p++) {
          for (const mask of [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff]) {
            const bad = batch.slice();
            bad[p] ^= mask;
            const what = `(byte ${p} ^ 0x${mask.toString(16)})`;
            if (p < 8 || (p >= 12 && p < 16)) {
              // baseOffset and partitionLeaderEpoch sit outside the CRC on purpose (protocol §2:
              // the server assigns offsets by writing baseOffset in place).
              const h = validateBatch(bad);
              assert.equal(h.crc, validateBatch(batch).crc, what);
              continue;
            }
            const reasons = p >= 8 && p < 12 ? ['BAD_LENGTH', 'TRUNCATED', 'CRC_MISMATCH'] : p === 16 ? ['BAD_MAGIC'] : ['CRC_MISMATCH'];
            assertCorrupt(() => checkBatch(bad, 0), reasons, `(checkBatch) ${what}`);
            assertCorrupt(() => validateBatch(bad), reasons, `(validateBatch) ${what}`);
            assertCorrupt(() => decodeBatches(bad), reasons, `(decodeBatches) ${what}`);
          }
        }
      });

      test(`codec ${codec}: every single-bit flip with the CRC resealed is refused or decodes the same in kafkajs`, async () => {
        selectImpl(impl);
        const batch = small(codec);
        let refused = 0;
        for (let p = 21; p < batch.length; p++) {
          for (let bit = 0; bit < 8; bit++) {
            const bad = batch.slice();
            bad[p] ^= 1 << bit;
            resealCrc(bad);
            const what = `byte ${p} bit ${bit}`;
            if (outcome(bad, what)) refused++;
            else await assertAcceptedIsReadable(bad, what);
          }
        }
        assert.ok(refused > 0, 'some flips reach the record checks and fail them');
      });
    }

    test('crafted record-level faults (CRC resealed) are refused with their reason', async () => {
      selectImpl(impl);
      for (const [name, make, reason] of cases) {
        const batch = make();
        if (reason === '') {
          validateBatch(batch);
          await assertAcceptedIsReadable(batch, name);
          continue;
        }
        assertCorrupt(() => validateBatch(batch), reason, `(${name})`);
        // decodeBatches runs the same record checks.
        assertCorrupt(() => decodeBatches(batch), undefined, `(decodeBatches: ${name})`);
      }
    });

    test('random bytes are refused, random records behind a valid header refused or readable', async (t) => {
      selectImpl(impl);
      await seeded(t, async (rng) => {
        for (let i = 0; i < 2000; i++) {
          const junk = rng.bytes(rng.int(300));
          assertCorrupt(() => validateBatch(junk), undefined, `(random bytes ${i})`);
          if (junk.length > 0) assertCorrupt(() => decodeBatches(junk), undefined, `(decodeBatches, random bytes ${i})`);
        }
        // A valid header and CRC around random records: the record checks are all that is left.
        for (let i = 0; i < 3000; i++) {
          const body = i % 2 ? rng.bytes(rng.int(120)) : lz4Frame([{ data: rng.bytes(1 + rng.int(80)), stored: rng.int(2) === 0 }]);
          const batch = rawBatch(body, { recordCount: 1 + rng.int(4), attributes: i % 2 ? 0 : 3 });
          if (!outcome(batch, `random records ${i}`)) await assertAcceptedIsReadable(batch, `random records ${i}`);
        }
      });
    });

    test('random damage to random batches, CRC resealed, is refused or decodes the same in kafkajs', async (t) => {
      selectImpl(impl);
      await seeded(t, async (rng) => {
        for (let i = 0; i < 200; i++) {
          const records: ProducerRecord[] = Array.from({ length: 1 + rng.int(5) }, () => ({
            key: rng.int(3) === 0 ? null : rng.bytes(rng.int(10)),
            value: rng.int(4) === 0 ? null : makeBytes(rng.u32(), rng.int(300), rng.pick(['random', 'text', 'runs'] as const)),
            headers: Array.from({ length: rng.int(3) }, () => ({ key: rng.pick(['a', 'bb', 'ключ', '']), value: rng.int(3) ? rng.bytes(rng.int(5)) : null })),
            timestamp: 1_700_000_000_000 + rng.int(100_000),
          }));
          const batch = encodeRecordBatch(records, { codec: rng.pick(CODECS), baseOffset: rng.int(2 ** 31) });
          for (let k = 0; k < 20; k++) {
            const bad = batch.slice();
            const edits = 1 + rng.int(3);
            for (let e = 0; e < edits; e++) {
              const p = 21 + rng.int(bad.length - 21);
              bad[p] = rng.int(2) ? bad[p] ^ (1 << rng.int(8)) : rng.u32() & 0xff;
            }
            resealCrc(bad);
            const what = `batch ${i} damage ${k}`;
            if (!outcome(bad, what)) await assertAcceptedIsReadable(bad, what);
          }
        }
      });
    });
  });
}

describe('hostile batches: limits', () => {
  test('limits around the batch: maxBytes, lengths below the header, bytes after the batch', () => {
    const batch = rawBatch(three(), { recordCount: 3 });
    assert.equal(validateBatch(batch, 0, batch.length, batch.length).size, batch.length, 'exactly maxBytes is allowed');
    assertCorrupt(() => validateBatch(batch, 0, batch.length, batch.length - 1), 'BAD_LENGTH', '(one byte over maxBytes)');
    assertCorrupt(() => checkBatch(batch, 0, batch.length, batch.length - 1), 'BAD_LENGTH', '(checkBatch, one byte over maxBytes)');
    for (const length of [-(2 ** 31), -12, -1, 0, 48]) {
      const bad = batch.slice();
      new DataView(bad.buffer).setInt32(8, length);
      assertCorrupt(() => checkBatch(bad, 0), 'BAD_LENGTH', `(batchLength ${length})`);
    }
    const trailing = concat([batch, Uint8Array.of(0)]);
    checkBatch(trailing, 0);
    assertCorrupt(() => validateBatch(trailing), 'TRAILING_BYTES');
    assertCorrupt(() => decodeBatches(trailing), 'TRUNCATED', '(decodeBatches: a stray byte after the last batch)');
  });
});

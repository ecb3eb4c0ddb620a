/**
 * fast-check generators for records and batches, shared by the round-trip and the kafkajs
 * suites, and what a record is expected to decode to.
 */
import fc from 'fast-check';
import type { EncodeOptions, ProducerRecord, RecordHeader, StoredRecord } from '../../../engine/codec/index.ts';
import { type Fill, makeBytes } from './helpers.ts';

const KiB = 1024;

/** Up to ~300 KiB, so that an LZ4 batch spans several 64 KiB blocks. */
export const largeBytes = fc
  .record({
    seed: fc.integer({ min: 0, max: 0xffffffff }),
    length: fc.integer({ min: 1, max: 300 * KiB }),
    fill: fc.constantFrom<Fill>('random', 'text', 'runs'),
  })
  .map(({ seed, length, fill }) => makeBytes(seed, length, fill));

export const keyArb: fc.Arbitrary<Uint8Array | null | undefined> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40 }) },
);

export const valueArb: fc.Arbitrary<Uint8Array | null> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  { weight: 1, arbitrary: largeBytes },
);

/**
 * Header keys: any well-formed Unicode (a lone surrogate has no UTF-8 form), minus the names
 * of Object.prototype's members, which kafkajs's decoder (it folds headers into a plain
 * object) cannot tell from a missing key.
 */
export const headerKeyArb = fc
  .oneof(fc.string({ unit: 'grapheme', maxLength: 12 }), fc.string({ unit: 'grapheme-ascii', maxLength: 12 }))
  .filter((k) => !(k in Object.prototype));

export const headerArb = (nullValues = true): fc.Arbitrary<RecordHeader> =>
  fc.record({
    key: headerKeyArb,
    value: nullValues
      ? fc.oneof(fc.constant(null), fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 30 }))
      : fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 30 })),
  });

/** ms since the epoch, with Kafka's -1 (no timestamp) now and then. */
export const timestampArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(-1) },
  { weight: 3, arbitrary: fc.integer({ min: 1_600_000_000_000, max: 1_800_000_000_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 45 }) },
);

export const recordArb = (nullHeaderValues = true): fc.Arbitrary<ProducerRecord> =>
  fc.record(
    {
      key: keyArb,
      value: valueArb,
      headers: fc.array(headerArb(nullHeaderValues), { maxLength: 4 }),
      timestamp: timestampArb,
    },
    { requiredKeys: ['value'] },
  );

export const MAX_RECORDS = 12;

export const baseOffsetArb = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 0, max: 2 ** 31 }),
  fc.constantFrom(2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1),
  // Up to 2^53 - 1 for the batch's last record.
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - MAX_RECORDS }),
);

export interface BatchInput {
  records: ProducerRecord[];
  baseOffset: number;
  timestamp: number;
}

export const batchArb = (nullHeaderValues = true): fc.Arbitrary<BatchInput> =>
  fc.record({
    records: fc.array(recordArb(nullHeaderValues), { minLength: 1, maxLength: MAX_RECORDS }),
    baseOffset: baseOffsetArb,
    timestamp: timestampArb,
  });

export function encodeOptions(input: BatchInput, codec: 'none' | 'lz4'): EncodeOptions {
  return { codec, baseOffset: input.baseOffset, timestamp: input.timestamp };
}

/** What `records` encoded at `baseOffset` with batch timestamp `timestamp` decode to. */
export function expected(input: BatchInput): StoredRecord[] {
  return input.records.map((r, i) => ({
    offset: input.baseOffset + i,
    timestamp: r.timestamp ?? input.timestamp,
    key: r.key ?? null,
    value: r.value,
    headers: (r.headers ?? []).map((h) => ({ key: h.key, value: h.value })),
  }));
}

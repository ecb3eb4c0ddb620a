/**
 * The checks every front runs on what a producer sends (engine/produce-validation.ts):
 * each limit crossed by one, the header's maxTimestamp held to the records', and record
 * timestamps held to the server's clock plus the tolerance.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkBatch, encodeRecordBatch } from '../../engine/codec/index.ts';
import { SluiceError } from '../../engine/errors.ts';
import { installNativeCodecs } from '../../engine/native-codecs.ts';
import { type ProduceLimits, checkProducerRecord, produceLimitsDefault, producerRecordBytes, validateProducedBatch } from '../../engine/produce-validation.ts';
import { headerBomb, rawRecord, timedBatch, wrapRecords } from '../helpers/attack-batches.ts';

installNativeCodecs();
const te = new TextEncoder();
const NOW = 1_800_000_000_000;
const HOUR = 3600_000;

function refusal(fn: () => unknown): string {
  try {
    fn();
    return 'accepted';
  } catch (err) {
    assert.ok(err instanceof SluiceError, String(err));
    return `${err.code}/${err.reason}`;
  }
}

test('a good batch passes and reports its records', () => {
  for (const codec of ['none', 'lz4'] as const) {
    const b = encodeRecordBatch([{ value: te.encode('a'), timestamp: NOW - 5 }, { key: te.encode('k'), value: null, timestamp: NOW }], { codec });
    const { header, records } = validateProducedBatch(b, produceLimitsDefault, NOW);
    assert.equal(header.recordCount, 2);
    assert.equal(records.maxTimestamp, NOW);
    assert.equal(records.minTimestamp, NOW - 5);
  }
});

test('regression: a header maxTimestamp above the records’ largest is BAD_TIMESTAMP; one below it is corrected in place, CRC resealed', () => {
  for (const codec of ['none', 'lz4'] as const) {
    const ts = [NOW - 100, NOW - 50];
    assert.equal(refusal(() => validateProducedBatch(timedBatch(ts, { codec }), produceLimitsDefault, NOW)), 'accepted');
    // The year 2100 in the header, records of today: the attack on time retention.
    const y2100 = Date.UTC(2100, 0, 1);
    assert.equal(refusal(() => validateProducedBatch(timedBatch(ts, { codec, maxTimestamp: y2100 }), produceLimitsDefault, NOW)), 'BAD_REQUEST/BAD_TIMESTAMP');
    assert.equal(refusal(() => validateProducedBatch(timedBatch(ts, { codec, maxTimestamp: NOW - 49 }), produceLimitsDefault, NOW)), 'BAD_REQUEST/BAD_TIMESTAMP');
    // Below: what kafkajs writes when some messages carry a timestamp and others do not.
    const low = timedBatch(ts, { codec, maxTimestamp: NOW - 100 });
    const { header } = validateProducedBatch(low, produceLimitsDefault, NOW);
    assert.equal(header.maxTimestamp, NOW - 50);
    const again = checkBatch(low, 0);
    assert.equal(again.maxTimestamp, NOW - 50, 'rewritten in the bytes');
    assert.equal(again.crc, header.crc, 'and the CRC resealed');
  }
});

test('regression: a record further ahead of the server clock than the tolerance is TIMESTAMP_IN_FUTURE; exactly at it, or in the past, passes', () => {
  const limits: ProduceLimits = { ...produceLimitsDefault, timestampAheadMsMax: HOUR };
  assert.equal(refusal(() => validateProducedBatch(timedBatch([NOW, NOW + HOUR]), limits, NOW)), 'accepted');
  assert.equal(refusal(() => validateProducedBatch(timedBatch([NOW, NOW + HOUR + 1]), limits, NOW)), 'BAD_REQUEST/TIMESTAMP_IN_FUTURE');
  assert.equal(refusal(() => validateProducedBatch(timedBatch([Date.UTC(2100, 0, 1)]), limits, NOW)), 'BAD_REQUEST/TIMESTAMP_IN_FUTURE');
  assert.equal(refusal(() => validateProducedBatch(timedBatch([0, 1]), limits, NOW)), 'accepted');
});

test('regression: --max-record-bytes covers key + value + headers, in a batch and in a record built from JSON', () => {
  const limits: ProduceLimits = { ...produceLimitsDefault, recordBytesMax: 1024 };
  const big = new Uint8Array(1025);
  const cases: [string, Parameters<typeof encodeRecordBatch>[0][0]][] = [
    ['key', { key: big, value: null }],
    ['value', { value: big }],
    ['header value', { value: null, headers: [{ key: 'h', value: big.subarray(0, 1024) }] }],
    ['header key', { value: null, headers: [{ key: 'é'.repeat(513), value: null }] }],
    ['all together', { key: big.subarray(0, 400), value: big.subarray(0, 400), headers: [{ key: 'h', value: big.subarray(0, 224) }] }],
  ];
  for (const [what, rec] of cases) {
    assert.ok(producerRecordBytes(rec) > 1024, what);
    assert.equal(refusal(() => checkProducerRecord(rec, limits)), 'TOO_LARGE/RECORD_TOO_LARGE', `JSON: ${what}`);
    for (const codec of ['none', 'lz4'] as const) {
      const b = encodeRecordBatch([rec], { codec, timestamp: NOW });
      assert.equal(refusal(() => validateProducedBatch(b, limits, NOW)), 'TOO_LARGE/RECORD_TOO_LARGE', `${codec}: ${what}`);
    }
  }
  const exact = { key: big.subarray(0, 500), value: big.subarray(0, 500), headers: [{ key: 'ab', value: big.subarray(0, 22) }] };
  assert.equal(producerRecordBytes(exact), 1024);
  assert.equal(refusal(() => checkProducerRecord(exact, limits)), 'accepted');
  assert.equal(refusal(() => validateProducedBatch(encodeRecordBatch([exact], { timestamp: NOW }), limits, NOW)), 'accepted');
});

test('headers per record and decoded bytes per batch are bounded; the header bomb is TOO_LARGE', () => {
  const limits: ProduceLimits = { ...produceLimitsDefault, recordHeadersMax: 3 };
  const headers = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `h${i}`, value: null }));
  assert.equal(refusal(() => checkProducerRecord({ value: null, headers: headers(3) }, limits)), 'accepted');
  assert.equal(refusal(() => checkProducerRecord({ value: null, headers: headers(4) }, limits)), 'TOO_LARGE/TOO_MANY_HEADERS');
  assert.equal(refusal(() => validateProducedBatch(encodeRecordBatch([{ value: null, headers: headers(4) }], { timestamp: NOW }), limits, NOW)), 'TOO_LARGE/TOO_MANY_HEADERS');
  assert.equal(refusal(() => validateProducedBatch(headerBomb(33_500_000, NOW), produceLimitsDefault, NOW)), 'TOO_LARGE/TOO_MANY_HEADERS');
  assert.equal(refusal(() => validateProducedBatch(headerBomb(33_500_000, NOW), { ...produceLimitsDefault, recordHeadersMax: 1e9 }, NOW)), 'TOO_LARGE/BATCH_DECODED_TOO_LARGE');
  const plain = encodeRecordBatch([{ value: new Uint8Array(5000) }], { timestamp: NOW });
  assert.equal(refusal(() => validateProducedBatch(plain, { ...produceLimitsDefault, batchDecodedBytesMax: 4000 }, NOW)), 'TOO_LARGE/BATCH_DECODED_TOO_LARGE');
});

test('regression: a 60 MiB key or header value (LZ4, a few hundred KB of frame) is RECORD_TOO_LARGE before any of it is decoded', () => {
  const limits: ProduceLimits = { ...produceLimitsDefault, recordBytesMax: 1024 };
  const huge = new Uint8Array(60 * 1024 * 1024);
  for (const [what, rec] of [
    ['key', rawRecord({ offsetDelta: 0, key: huge })],
    ['header value', rawRecord({ offsetDelta: 0, headers: [[te.encode('h'), huge]] })],
  ] as const) {
    const batch = wrapRecords(rec, { codec: 'lz4', recordCount: 1, baseTimestamp: NOW });
    assert.ok(batch.length < 400 * 1024, `${what}: ${batch.length} bytes`);
    assert.equal(refusal(() => validateProducedBatch(batch, limits, NOW)), 'TOO_LARGE/RECORD_TOO_LARGE', what);
  }
});

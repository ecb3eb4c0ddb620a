/**
 * What every front checks before a producer's records may be appended, whatever the wire
 * they came on (a WebSocket PRODUCE frame, a JSON publish, an HTTP POST, a Kafka Produce
 * request): one function per shape, so that the limits mean the same thing everywhere.
 *
 * A batch (`validateProducedBatch`) is checked whole before anything is stored:
 * - its frame: length, magic, CRC-32C, count, codec, attributes (`checkBatch`);
 * - its records, walked without allocating per record or header (codec/record-scan.ts):
 *   their structure, key + value + headers per record, headers per record, decoded bytes
 *   per batch;
 * - its timestamps: no record may be further ahead of the server's clock than
 *   `timestampAheadMsMax` (a segment is deleted by time once its newest record is old
 *   enough, so one record dated 2100 would keep its segment, and every one after it, for
 *   ever), and the header's maxTimestamp, which retention and time lookups trust, must be
 *   the records' largest. One above it (the year 2100 over records of today) is refused; one
 *   below it is corrected in place, the CRC resealed, as the Kafka broker does: kafkajs
 *   writes the largest of the timestamps its caller gave and leaves out the records it
 *   stamped itself. Timestamps in the past are the producer's business and are taken as
 *   they are.
 *
 * A record built from JSON gets the same byte and header limits: the fronts measure its
 * fields and call `checkRecordHeaderCount` and `checkRecordBytes` (`checkProducerRecord`
 * does both for a ProducerRecord, and `producerRecordBytes` is what an HTTP read counts).
 * Nothing here reads the server's clock except through `now`, so tests can pass their own.
 */
import { type BatchHeader, type ProducerRecord, checkBatch, setMaxTimestamp } from './codec/record-batch.ts';
import { type RecordLimits, type RecordScan, scanBatchRecords } from './codec/record-scan.ts';
import { BadRequestError, CorruptBatchError, TooLargeError } from './errors.ts';
import { batchBytesMax, batchDecodedBytesDefault, recordBytesDefault, recordHeadersDefault, timestampAheadMsDefault } from './limits.ts';

export interface ProduceLimits extends RecordLimits {
  /** How far a record's timestamp may be ahead of the server's clock, in ms. */
  timestampAheadMsMax: number;
}

export const produceLimitsDefault: ProduceLimits = {
  recordBytesMax: recordBytesDefault,
  recordHeadersMax: recordHeadersDefault,
  batchDecodedBytesMax: batchDecodedBytesDefault,
  timestampAheadMsMax: timestampAheadMsDefault,
};

export interface ProducedBatch {
  header: BatchHeader;
  records: RecordScan;
}

/**
 * Checks one whole RecordBatch v2 a producer sent (`batch` holds exactly the batch); see
 * above. Throws TooLargeError for a limit crossed, CorruptBatchError / BadRequestError for
 * anything else, and changes nothing.
 */
export function validateProducedBatch(batch: Uint8Array, limits: ProduceLimits, now = Date.now()): ProducedBatch {
  if (batch.length > batchBytesMax) throw new TooLargeError(`batch of ${batch.length} bytes exceeds ${batchBytesMax}`);
  const header = checkBatch(batch, 0, batch.length, batchBytesMax);
  if (header.size !== batch.length) throw new CorruptBatchError('bytes after the batch', 'TRAILING_BYTES');
  return { header, records: validateProducedRecords(batch, header, limits, now) };
}

/**
 * The record and timestamp checks of `validateProducedBatch`, for a front that has checked
 * the batch frame itself (`checkBatch`, one batch exactly). May correct the header's
 * maxTimestamp in place (see above); `header` is updated to match.
 */
export function validateProducedRecords(batch: Uint8Array, header: BatchHeader, limits: ProduceLimits, now = Date.now()): RecordScan {
  const records = scanBatchRecords(batch, 0, header, limits);
  assertNotAhead(records.maxTimestamp, limits, now);
  if (header.maxTimestamp > records.maxTimestamp) {
    throw new CorruptBatchError(`the batch's maxTimestamp ${header.maxTimestamp} is above its records' largest, ${records.maxTimestamp}`, 'BAD_TIMESTAMP');
  }
  if (header.maxTimestamp < records.maxTimestamp) {
    setMaxTimestamp(batch, 0, records.maxTimestamp);
    header.maxTimestamp = records.maxTimestamp;
    header.crc = new DataView(batch.buffer, batch.byteOffset, batch.byteLength).getUint32(17);
  }
  return records;
}

/** Refuses a timestamp further ahead of `now` than the limit allows. */
export function assertNotAhead(timestamp: number, limits: Pick<ProduceLimits, 'timestampAheadMsMax'>, now = Date.now()): void {
  if (timestamp - now > limits.timestampAheadMsMax) {
    throw new BadRequestError(
      `a record timestamp ${timestamp} is ${timestamp - now} ms ahead of the server's clock, more than ${limits.timestampAheadMsMax}`,
      'TIMESTAMP_IN_FUTURE',
    );
  }
}

/** Bytes of `s` in UTF-8, without encoding it. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3; // a lone surrogate becomes U+FFFD, 3 bytes
  }
  return n;
}

/** Key + value + every header key and value of a record, in bytes. */
export function producerRecordBytes(rec: ProducerRecord): number {
  let n = (rec.key?.length ?? 0) + (rec.value?.length ?? 0);
  for (const h of rec.headers ?? []) n += utf8Length(h.key) + (h.value?.length ?? 0);
  return n;
}

/**
 * The byte and header limits for a record a front built itself (from JSON): the same
 * numbers `validateProducedBatch` applies to a producer's batch.
 */
export function checkProducerRecord(rec: ProducerRecord, limits: Pick<ProduceLimits, 'recordBytesMax' | 'recordHeadersMax'>): void {
  checkRecordHeaderCount(rec.headers?.length ?? 0, limits);
  checkRecordBytes(producerRecordBytes(rec), limits);
}

/** Headers on one record: more than `recordHeadersMax` is TooLargeError (TOO_MANY_HEADERS). */
export function checkRecordHeaderCount(headers: number, limits: Pick<ProduceLimits, 'recordHeadersMax'>): void {
  if (headers > limits.recordHeadersMax) {
    throw new TooLargeError(`the record has ${headers} headers, more than ${limits.recordHeadersMax}`, 'TOO_MANY_HEADERS');
  }
}

/**
 * Key + value + every header key and value of one record, in bytes, however the front
 * measured them (a JSON publish counts its strings' UTF-8 without encoding them): more
 * than `recordBytesMax` is TooLargeError (RECORD_TOO_LARGE).
 */
export function checkRecordBytes(bytes: number, limits: Pick<ProduceLimits, 'recordBytesMax'>): void {
  if (bytes > limits.recordBytesMax) {
    throw new TooLargeError(`the record holds ${bytes} bytes of key, value and headers, more than ${limits.recordBytesMax}`, 'RECORD_TOO_LARGE');
  }
}

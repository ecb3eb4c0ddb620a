/**
 * A walk over the records of a batch that allocates nothing per record or per header: it
 * reads every length and varint, checks each against the bounds the bytes themselves set
 * and against the caller's limits, and skips over keys, values and headers without making
 * a view, a string or an object of them. An LZ4 batch is decoded one block at a time into
 * one reused buffer (Lz4FrameReader), so the walk never holds more than a block of content:
 * a frame of a few hundred KiB that inflates to 64 MiB of two-byte headers costs one pass
 * over those bytes and no memory, and is refused at its first record when a limit says so.
 *
 * It checks what `decodeBatchRecords` checks, with the same reasons: record lengths inside
 * the content, varints inside their record, offset deltas 0..n-1, keys and values of length
 * -1 (null) or more, header keys not null, header counts inside the record, no bytes after
 * the last field of a record or after the last record, and timestamps that a JSON number
 * holds exactly. On top, the limits: bytes per record (key + value + header keys and values),
 * headers per record, and decoded bytes per batch, each refused as TOO_LARGE with a reason.
 *
 * Pure TypeScript on Uint8Array: the gateway, the engine and any other front share it.
 */
import { CorruptBatchError, TooLargeError } from '../errors.ts';
import { Lz4FrameReader, decodedBytesMax } from './lz4-frame.ts';
import { BATCH_HEADER_BYTES, type BatchHeader, CODEC_LZ4, CODEC_NONE, checkBatch } from './record-batch.ts';

export interface RecordLimits {
  /** Key + value + every header key and value of one record, in bytes. */
  recordBytesMax: number;
  /** Headers of one record. */
  recordHeadersMax: number;
  /** The records of one batch once decompressed (all of them for an uncompressed batch). */
  batchDecodedBytesMax: number;
}

/** No limit beyond what the format and the LZ4 hard cap allow. */
export const NO_RECORD_LIMITS: RecordLimits = {
  recordBytesMax: Number.MAX_SAFE_INTEGER,
  recordHeadersMax: Number.MAX_SAFE_INTEGER,
  batchDecodedBytesMax: decodedBytesMax,
};

export interface RecordScan {
  /** The largest record timestamp (baseTimestamp + delta). */
  maxTimestamp: number;
  /** The smallest record timestamp. */
  minTimestamp: number;
  /** Bytes of the records, decompressed. */
  decodedBytes: number;
  /** The largest key + value + headers of one record, in bytes. */
  largestRecordBytes: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Where LZ4 blocks are decoded: one 64 KiB buffer (the block size sluice and Kafka clients
 * write) kept for every scan, which is synchronous and never re-entered; a frame of larger
 * blocks gets its own buffer for the duration of its scan.
 */
const blockScratch = new Uint8Array(64 * 1024);

/**
 * The records' bytes as a stream of chunks (one for an uncompressed batch, one per LZ4 block
 * otherwise), read through a cursor at an absolute position `at`. Every read names the
 * position it may not pass (the end of the record being read, or none); running out of
 * chunks before that position means the record claims bytes the batch does not have.
 */
class RecordStream {
  private buf: Uint8Array;
  private pos = 0;
  /** Absolute position of buf[0]. */
  private base = 0;
  /** No chunk follows `buf`. */
  private last: boolean;

  constructor(
    first: Uint8Array,
    /** Null once the frame is read to its end (or for an uncompressed batch). */
    private reader: Lz4FrameReader | null,
  ) {
    this.buf = first;
    this.last = reader === null || reader.atLastBlock;
  }

  get at(): number {
    return this.base + this.pos;
  }

  /** The absolute end of the content when it is known (the current chunk is the last), else -1. */
  get knownEnd(): number {
    return this.last ? this.base + this.buf.length : -1;
  }

  private refill(): boolean {
    if (this.reader === null) return false;
    // Even after the last block, the reader is read to its end mark: that is where the
    // declared size, the content checksum and the bytes after the frame are checked.
    const next = this.reader.next();
    this.base += this.buf.length;
    this.pos = 0;
    if (next === null) {
      this.buf = EMPTY;
      this.last = true;
      this.reader = null;
      return false;
    }
    this.buf = next;
    this.last = this.reader.atLastBlock;
    return true;
  }

  /** True when every byte has been read (pulls the next chunk when this one is spent). */
  atEnd(): boolean {
    while (this.pos === this.buf.length) if (!this.refill()) return true;
    return false;
  }

  /** Ran out of content before `limit`: the record's length promised bytes that are not there. */
  private exhausted(limit: number): never {
    if (limit === Infinity) throw new CorruptBatchError('varint runs past the end of the records', 'BAD_VARINT');
    throw new CorruptBatchError('record length out of range', 'BAD_LENGTH');
  }

  byte(limit: number): number {
    if (this.at >= limit) throw new CorruptBatchError('record truncated', 'BAD_LENGTH');
    if (this.pos === this.buf.length && this.atEnd()) this.exhausted(limit);
    return this.buf[this.pos++];
  }

  /** A zig-zag varint that must end before `limit`. */
  varint(limit: number): number {
    let shift = 1;
    let z = 0;
    for (let i = 0; i < 10; i++) {
      if (this.at >= limit) throw new CorruptBatchError('varint runs past the end of the record', 'BAD_VARINT');
      if (this.pos === this.buf.length && this.atEnd()) this.exhausted(limit);
      const b = this.buf[this.pos++];
      z += (b & 0x7f) * shift;
      if (b < 0x80) {
        if (z > Number.MAX_SAFE_INTEGER) throw new CorruptBatchError('varint out of range', 'BAD_VARINT');
        return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      }
      shift *= 128;
    }
    throw new CorruptBatchError('varint longer than 10 bytes', 'BAD_VARINT');
  }

  /** Skips `n` bytes (already checked to end at or before `limit`). */
  skip(n: number, limit: number): void {
    while (n > 0) {
      if (this.pos === this.buf.length && this.atEnd()) this.exhausted(limit);
      const k = Math.min(n, this.buf.length - this.pos);
      this.pos += k;
      n -= k;
    }
  }
}

/**
 * A field's length, skipped over: -1 (null) counts 0 bytes; below -1, or past the record's
 * end, is corrupt; more than `bytesLeft` of the record's budget is refused before a byte of
 * it is decoded (a 60 MiB key in a 240 KB frame costs nothing to refuse).
 */
function fieldBytes(rs: RecordStream, end: number, i: number, what: string, nullable: boolean, bytesLeft: number, limits: RecordLimits): number {
  const n = rs.varint(end);
  if (n === -1 && nullable) return 0;
  if (n < 0) throw new CorruptBatchError(nullable ? `record ${i} ${what} length ${n}` : `record ${i} ${what} is null`, 'BAD_LENGTH');
  if (rs.at + n > end) throw new CorruptBatchError(`record ${i} ${what} runs past the end of the record`, 'BAD_LENGTH');
  if (n > bytesLeft) throw recordTooLarge(i, limits.recordBytesMax - bytesLeft + n, limits);
  rs.skip(n, end);
  return n;
}

/**
 * Called with each record's offset delta and timestamp as the walk passes it; returning
 * true stops the walk there (the records after it are then not checked).
 */
export type RecordVisitor = (offsetDelta: number, timestamp: number) => boolean | void;

/**
 * Walks every record of the (already checked: `checkBatch`) batch at `pos`; see above.
 * Throws CorruptBatchError for malformed records and TooLargeError for a limit crossed.
 */
export function scanBatchRecords(buf: Uint8Array, pos: number, h: BatchHeader, limits: RecordLimits = NO_RECORD_LIMITS, visit?: RecordVisitor): RecordScan {
  const body = buf.subarray(pos + BATCH_HEADER_BYTES, pos + h.size);
  const decodedMax = Math.min(limits.batchDecodedBytesMax, decodedBytesMax);
  const tooLarge = (bytes: number): Error =>
    new TooLargeError(`the batch's records decode to more than ${decodedMax} bytes (${bytes} so far)`, 'BATCH_DECODED_TOO_LARGE');
  let reader: Lz4FrameReader | null = null;
  let first: Uint8Array;
  if (h.codec === CODEC_LZ4) {
    reader = new Lz4FrameReader(body, decodedMax, tooLarge, blockScratch);
    first = reader.next() ?? EMPTY;
  } else if (h.codec === CODEC_NONE) {
    if (body.length > decodedMax) throw tooLarge(body.length);
    first = body;
  } else {
    throw new CorruptBatchError(`codec ${h.codec} is not supported`, 'BAD_CODEC');
  }
  const rs = new RecordStream(first, reader);
  let maxTimestamp = -Infinity;
  let minTimestamp = Infinity;
  let largest = 0;
  for (let i = 0; i < h.recordCount; i++) {
    if (rs.atEnd()) throw new CorruptBatchError(`recordCount ${h.recordCount} but ${i} records`, 'BAD_COUNT');
    const len = rs.varint(Infinity);
    const known = rs.knownEnd;
    if (len < 0 || (known >= 0 && rs.at + len > known)) throw new CorruptBatchError(`record ${i} length out of range`, 'BAD_LENGTH');
    const end = rs.at + len;
    rs.byte(end); // attributes: none defined for records
    const tsDelta = rs.varint(end);
    const offsetDelta = rs.varint(end);
    if (offsetDelta !== i) throw new CorruptBatchError(`record ${i} has offset delta ${offsetDelta}`, 'BAD_OFFSET_DELTA');
    const max = limits.recordBytesMax;
    let bytes = fieldBytes(rs, end, i, 'key', true, max, limits);
    bytes += fieldBytes(rs, end, i, 'value', true, max - bytes, limits);
    const hc = rs.varint(end);
    if (hc < 0 || hc > len) throw new CorruptBatchError(`record ${i} header count ${hc}`, 'BAD_LENGTH');
    if (hc > limits.recordHeadersMax) {
      throw new TooLargeError(`record ${i} has ${hc} headers, more than ${limits.recordHeadersMax}`, 'TOO_MANY_HEADERS');
    }
    for (let j = 0; j < hc; j++) {
      bytes += fieldBytes(rs, end, i, 'header key', false, max - bytes, limits);
      bytes += fieldBytes(rs, end, i, 'header value', true, max - bytes, limits);
    }
    if (rs.at !== end) throw new CorruptBatchError(`record ${i} has trailing bytes`, 'BAD_LENGTH');
    // Timestamps are JSON numbers on every wire (protocol §1): refuse what a double would round.
    const timestamp = h.baseTimestamp + tsDelta;
    if (!Number.isSafeInteger(timestamp) || !Number.isSafeInteger(h.baseTimestamp)) throw new CorruptBatchError(`record ${i} timestamp is beyond 2^53`, 'BAD_TIMESTAMP');
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    if (timestamp < minTimestamp) minTimestamp = timestamp;
    if (bytes > largest) largest = bytes;
    if (visit?.(i, timestamp) === true) return { maxTimestamp, minTimestamp, decodedBytes: rs.at, largestRecordBytes: largest };
  }
  if (!rs.atEnd()) throw new CorruptBatchError('bytes after the last record', 'BAD_COUNT');
  return { maxTimestamp, minTimestamp, decodedBytes: rs.at, largestRecordBytes: largest };
}

function recordTooLarge(i: number, bytes: number, limits: RecordLimits): TooLargeError {
  return new TooLargeError(`record ${i} holds more than ${limits.recordBytesMax} bytes of key, value and headers (${bytes} so far)`, 'RECORD_TOO_LARGE');
}

/**
 * The full check of a batch's bytes: `checkBatch`, then every record walked without being
 * decoded (`scanBatchRecords`: lengths, varints, offset deltas 0..n-1, count). Returns the
 * header. A batch a producer sent is checked by engine/produce-validation.ts, which adds
 * the configured limits and the timestamp checks.
 */
export function validateBatch(buf: Uint8Array, pos = 0, end = buf.length, maxBytes = 0x7fffffff): BatchHeader {
  const h = checkBatch(buf, pos, end, maxBytes);
  if (pos + h.size !== end) throw new CorruptBatchError('bytes after the batch', 'TRAILING_BYTES');
  scanBatchRecords(buf, pos, h);
  return h;
}

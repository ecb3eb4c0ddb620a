/**
 * Kafka RecordBatch v2 (magic 2), the one format sluice keeps on disk and sends on every wire.
 *
 *   0 baseOffset int64        | 8 batchLength int32 (bytes after this field)
 *  12 partitionLeaderEpoch i32 | 16 magic int8 = 2 | 17 crc uint32
 *  21 attributes int16 (bits 0-2 codec: 0 none, 3 lz4) | 23 lastOffsetDelta int32
 *  27 baseTimestamp int64 | 35 maxTimestamp int64 | 43 producerId int64 (-1)
 *  51 producerEpoch int16 (-1) | 53 baseSequence int32 (-1) | 57 recordCount int32
 *  61 records (an LZ4 frame of them when codec = 3)
 *
 * The CRC-32C covers bytes 21..end, so baseOffset and partitionLeaderEpoch can be rewritten
 * in place (the log assigns offsets that way) without touching the checksum.
 *
 * record: length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
 *         keyLength varint (-1 = null) | key | valueLength varint | value |
 *         headerCount varint | (keyLength varint | key utf8 | valueLength varint | value)*
 *
 * Pure TypeScript on Uint8Array/DataView: the engine, the gateway and the browser SDK all
 * use this one codec.
 */
import { CorruptBatchError } from '../errors.ts';
import { crc32c } from './crc32c.ts';
import { lz4FrameBound, lz4FrameDecode, lz4FrameEncodeInto } from './lz4-frame.ts';
import { Reader, varintSize, writeVarint } from './varint.ts';

export const MAGIC = 2;
export const CODEC_NONE = 0;
export const CODEC_LZ4 = 3;
export type Codec = 'none' | 'lz4';

/** baseOffset + batchLength: the bytes before what batchLength counts. */
export const LOG_OVERHEAD = 12;
export const BATCH_HEADER_BYTES = 61;
const CRC_START = 21;

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

export interface ProducerRecord {
  key?: Uint8Array | null;
  value: Uint8Array | null;
  headers?: RecordHeader[];
  /** ms since the epoch; the batch's timestamp when absent. */
  timestamp?: number;
}

export interface StoredRecord {
  offset: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
}

export interface BatchHeader {
  baseOffset: number;
  /** Whole batch bytes, LOG_OVERHEAD included. */
  size: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  codec: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function getInt64(dv: DataView, pos: number): number {
  return dv.getInt32(pos) * 4294967296 + dv.getUint32(pos + 4);
}

function setInt64(dv: DataView, pos: number, n: number): void {
  const hi = Math.floor(n / 4294967296);
  dv.setInt32(pos, hi);
  dv.setUint32(pos + 4, n - hi * 4294967296);
}

/** Writes `offset` as the batch's baseOffset, in place (outside the CRC). */
export function setBaseOffset(buf: Uint8Array, pos: number, offset: number): void {
  setInt64(view(buf), pos, offset);
}

/**
 * Rewrites maxTimestamp in place and reseals the CRC (which covers it): for a batch whose
 * header understates its records' newest timestamp, as the Kafka broker corrects it.
 */
export function setMaxTimestamp(buf: Uint8Array, pos: number, timestamp: number): void {
  const dv = view(buf);
  setInt64(dv, pos + 35, timestamp);
  const size = dv.getInt32(pos + 8) + LOG_OVERHEAD;
  dv.setUint32(pos + 17, crc32c(buf, pos + CRC_START, pos + size));
}

/** Rewrites partitionLeaderEpoch, in place (outside the CRC). */
export function setPartitionLeaderEpoch(buf: Uint8Array, pos: number, epoch: number): void {
  view(buf).setInt32(pos + 12, epoch);
}

export interface EncodeOptions {
  codec?: Codec;
  baseOffset?: number;
  /** The batch's base timestamp; Date.now() when absent. */
  timestamp?: number;
}

interface EncodedHeader {
  key: Uint8Array;
  value: Uint8Array | null;
}

/** Encodes records into one RecordBatch v2 with offsets baseOffset, baseOffset+1, ... */
export function encodeRecordBatch(records: readonly ProducerRecord[], opts: EncodeOptions = {}): Uint8Array {
  const n = records.length;
  if (n === 0) throw new CorruptBatchError('a batch holds at least one record', 'EMPTY_BATCH');
  const now = opts.timestamp ?? Date.now();
  let baseTs = Infinity;
  let maxTs = -Infinity;
  for (let i = 0; i < n; i++) {
    const ts = records[i].timestamp ?? now;
    if (ts < baseTs) baseTs = ts;
    if (ts > maxTs) maxTs = ts;
  }
  // Pass 1: each record's body size; header keys encoded once.
  const bodySizes = new Array<number>(n);
  let headerKeys: (EncodedHeader[] | null)[] | null = null;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    const key = r.key ?? null;
    const value = r.value;
    let s = 1 + varintSize((r.timestamp ?? now) - baseTs) + varintSize(i);
    s += key === null ? 1 : varintSize(key.length) + key.length;
    s += value === null ? 1 : varintSize(value.length) + value.length;
    const hs = r.headers;
    if (hs && hs.length > 0) {
      headerKeys ??= new Array(n).fill(null);
      const enc: EncodedHeader[] = hs.map((h) => ({ key: utf8.encode(h.key), value: h.value }));
      headerKeys[i] = enc;
      s += varintSize(enc.length);
      for (const h of enc) {
        s += varintSize(h.key.length) + h.key.length;
        s += h.value === null ? 1 : varintSize(h.value.length) + h.value.length;
      }
    } else {
      s += 1;
    }
    bodySizes[i] = s;
    total += varintSize(s) + s;
  }
  // Pass 2: write the records, straight behind the header when they are stored plain;
  // into a reused buffer when they are to be compressed (they do not outlive this call).
  const codec = opts.codec === 'lz4' ? CODEC_LZ4 : CODEC_NONE;
  let out: Uint8Array;
  let recs: Uint8Array;
  let p: number;
  if (codec === CODEC_NONE) {
    out = recs = new Uint8Array(BATCH_HEADER_BYTES + total);
    p = BATCH_HEADER_BYTES;
  } else {
    out = recs = scratch(0, total);
    p = 0;
  }
  const recordsStart = p;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    p = writeVarint(recs, p, bodySizes[i]);
    recs[p++] = 0;
    p = writeVarint(recs, p, (r.timestamp ?? now) - baseTs);
    p = writeVarint(recs, p, i);
    const key = r.key ?? null;
    if (key === null) recs[p++] = 1;
    else {
      p = writeVarint(recs, p, key.length);
      recs.set(key, p);
      p += key.length;
    }
    const value = r.value;
    if (value === null) recs[p++] = 1;
    else {
      p = writeVarint(recs, p, value.length);
      recs.set(value, p);
      p += value.length;
    }
    const enc = headerKeys?.[i];
    if (enc) {
      p = writeVarint(recs, p, enc.length);
      for (const h of enc) {
        p = writeVarint(recs, p, h.key.length);
        recs.set(h.key, p);
        p += h.key.length;
        if (h.value === null) recs[p++] = 1;
        else {
          p = writeVarint(recs, p, h.value.length);
          recs.set(h.value, p);
          p += h.value.length;
        }
      }
    } else {
      recs[p++] = 0;
    }
  }
  // Every byte was written: a reused buffer must never leak an earlier batch's bytes.
  if (p !== recordsStart + total) throw new Error(`encodeRecordBatch wrote ${p - recordsStart} of ${total} record bytes`);
  if (codec === CODEC_LZ4) out = compressRecords(recs.subarray(0, total));
  writeBatchHeader(out, n, baseTs, maxTs, codec, opts.baseOffset ?? 0);
  return out;
}

/**
 * The LZ4 frame of `records` behind room for the batch header, in a buffer of its own
 * size: compressed into a reused worst-case buffer, then one exact copy, so that the batch
 * does not pin the worst case. The header bytes are stale until `writeBatchHeader`.
 */
export function compressRecords(records: Uint8Array): Uint8Array {
  const frame = scratch(1, BATCH_HEADER_BYTES + lz4FrameBound(records.length));
  const end = lz4FrameEncodeInto(records, frame, BATCH_HEADER_BYTES);
  return frame.slice(0, end);
}

/**
 * Fills the 61-byte header of the batch `out` (whose records follow it, compressed or not)
 * and its CRC-32C: no producer id, sequence or transaction, as sluice writes every batch.
 */
export function writeBatchHeader(out: Uint8Array, recordCount: number, baseTimestamp: number, maxTimestamp: number, codec: number, baseOffset = 0): void {
  const dv = view(out);
  setInt64(dv, 0, baseOffset);
  dv.setInt32(8, out.length - LOG_OVERHEAD);
  dv.setInt32(12, 0);
  out[16] = MAGIC;
  dv.setInt16(21, codec);
  dv.setInt32(23, recordCount - 1);
  setInt64(dv, 27, baseTimestamp);
  setInt64(dv, 35, maxTimestamp);
  setInt64(dv, 43, -1);
  dv.setInt16(51, -1);
  dv.setInt32(53, -1);
  dv.setInt32(57, recordCount);
  dv.setUint32(17, crc32c(out, CRC_START, out.length));
}

/**
 * Two buffers reused by encodeRecordBatch (0: plain records before compression, 1: the
 * compressed batch before its exact copy), so the common batch allocates once, not three
 * times. Up to `scratchBytesMax` each; a larger batch gets fresh buffers. Encoding is
 * synchronous and does not re-enter, so one pair per realm is enough.
 */
const scratchBytesMax = 2 * 1024 * 1024;
const scratchBuffers = [new Uint8Array(0), new Uint8Array(0)];

function scratch(which: 0 | 1, bytes: number): Uint8Array {
  if (bytes > scratchBytesMax) return new Uint8Array(bytes);
  if (scratchBuffers[which].length < bytes) scratchBuffers[which] = new Uint8Array(Math.min(scratchBytesMax, Math.max(bytes, scratchBuffers[which].length * 2)));
  return scratchBuffers[which];
}

/**
 * The whole size of the batch at `pos` as its length field says, or -1 when fewer than
 * LOG_OVERHEAD bytes remain. Not validated: callers bound it before trusting it.
 */
export function batchSizeAt(buf: Uint8Array, pos: number, end = buf.length): number {
  if (pos + LOG_OVERHEAD > end) return -1;
  return view(buf).getInt32(pos + 8) + LOG_OVERHEAD;
}

/** Reads the fixed header at `pos` (bounds checked, nothing else). */
export function readBatchHeader(buf: Uint8Array, pos: number, end = buf.length): BatchHeader {
  if (pos + BATCH_HEADER_BYTES > end) throw new CorruptBatchError('batch header truncated', 'TRUNCATED');
  const dv = view(buf);
  const attributes = dv.getInt16(pos + 21);
  return {
    baseOffset: getInt64(dv, pos),
    size: dv.getInt32(pos + 8) + LOG_OVERHEAD,
    partitionLeaderEpoch: dv.getInt32(pos + 12),
    magic: dv.getInt8(pos + 16),
    crc: dv.getUint32(pos + 17),
    attributes,
    codec: attributes & 7,
    lastOffsetDelta: dv.getInt32(pos + 23),
    baseTimestamp: getInt64(dv, pos + 27),
    maxTimestamp: getInt64(dv, pos + 35),
    producerId: getInt64(dv, pos + 43),
    producerEpoch: dv.getInt16(pos + 51),
    baseSequence: dv.getInt32(pos + 53),
    recordCount: dv.getInt32(pos + 57),
  };
}

/**
 * The cheap check that recovery runs on every batch of a segment's tail: the length is
 * bounded first (`pos + size <= end`), then magic, then the CRC, then the count, codec and
 * attributes. Records are not decoded.
 */
export function checkBatch(buf: Uint8Array, pos: number, end = buf.length, maxBytes = 0x7fffffff): BatchHeader {
  const h = readBatchHeader(buf, pos, end);
  if (h.size < BATCH_HEADER_BYTES || h.size > maxBytes) throw new CorruptBatchError(`batch length ${h.size} out of range`, 'BAD_LENGTH');
  if (pos + h.size > end) throw new CorruptBatchError('batch truncated', 'TRUNCATED');
  if (h.magic !== MAGIC) throw new CorruptBatchError(`magic ${h.magic} is not 2`, 'BAD_MAGIC');
  if (crc32c(buf, pos + CRC_START, pos + h.size) !== h.crc) throw new CorruptBatchError('CRC-32C mismatch', 'CRC_MISMATCH');
  if (h.recordCount < 1 || h.lastOffsetDelta !== h.recordCount - 1) {
    throw new CorruptBatchError(`recordCount ${h.recordCount} disagrees with lastOffsetDelta ${h.lastOffsetDelta}`, 'BAD_COUNT');
  }
  if (h.codec !== CODEC_NONE && h.codec !== CODEC_LZ4) throw new CorruptBatchError(`codec ${h.codec} is not supported`, 'BAD_CODEC');
  // Bit 3 (log-append time), 4 (transactional), 5 (control) and up change how Kafka
  // clients read the records, or whether they show them at all; sluice writes none of them.
  if (h.attributes & ~7) throw new CorruptBatchError(`attributes 0x${h.attributes.toString(16)} beyond the codec`, 'BAD_ATTRIBUTES');
  return h;
}

/** Decodes every record of the (already checked) batch at `pos`. */
export function decodeBatchRecords(buf: Uint8Array, pos = 0, h: BatchHeader = readBatchHeader(buf, pos)): StoredRecord[] {
  const out: StoredRecord[] = [];
  forEachRecord(buf, pos, h, (r) => out.push(r));
  return out;
}

/** A length-prefixed field where -1 means null; any other negative length is corrupt. */
function nullableBytes(rr: Reader, i: number, what: string): Uint8Array | null {
  const n = rr.varint();
  if (n === -1) return null;
  if (n < 0) throw new CorruptBatchError(`record ${i} ${what} length ${n}`, 'BAD_LENGTH');
  return rr.bytes(n);
}

function forEachRecord(buf: Uint8Array, pos: number, h: BatchHeader, fn: (r: StoredRecord) => void): void {
  let recs = buf.subarray(pos + BATCH_HEADER_BYTES, pos + h.size);
  if (h.codec === CODEC_LZ4) recs = lz4FrameDecode(recs, recs.length * 3);
  else if (h.codec !== CODEC_NONE) throw new CorruptBatchError(`codec ${h.codec} is not supported`, 'BAD_CODEC');
  const rd = new Reader(recs, 0, recs.length);
  for (let i = 0; i < h.recordCount; i++) {
    if (rd.pos === recs.length) throw new CorruptBatchError(`recordCount ${h.recordCount} but ${i} records`, 'BAD_COUNT');
    const len = rd.varint();
    if (len < 0 || rd.pos + len > recs.length) throw new CorruptBatchError(`record ${i} length out of range`, 'BAD_LENGTH');
    const rr = new Reader(recs, rd.pos, rd.pos + len);
    rd.pos += len;
    rr.int8();
    const tsDelta = rr.varint();
    const offsetDelta = rr.varint();
    if (offsetDelta !== i) throw new CorruptBatchError(`record ${i} has offset delta ${offsetDelta}`, 'BAD_OFFSET_DELTA');
    const key = nullableBytes(rr, i, 'key');
    const value = nullableBytes(rr, i, 'value');
    const hc = rr.varint();
    if (hc < 0 || hc > len) throw new CorruptBatchError(`record ${i} header count ${hc}`, 'BAD_LENGTH');
    const headers: RecordHeader[] = [];
    for (let j = 0; j < hc; j++) {
      const hkl = rr.varint();
      if (hkl < 0) throw new CorruptBatchError('header key is null', 'BAD_LENGTH');
      const hk = utf8Decoder.decode(rr.bytes(hkl));
      headers.push({ key: hk, value: nullableBytes(rr, i, 'header value') });
    }
    if (rr.pos !== rr.end) throw new CorruptBatchError(`record ${i} has trailing bytes`, 'BAD_LENGTH');
    // Timestamps are JSON numbers on every wire (protocol §1): refuse what a double would round.
    const timestamp = h.baseTimestamp + tsDelta;
    if (!Number.isSafeInteger(timestamp) || !Number.isSafeInteger(h.baseTimestamp)) {
      throw new CorruptBatchError(`record ${i} timestamp is beyond 2^53`, 'BAD_TIMESTAMP');
    }
    fn({ offset: h.baseOffset + offsetDelta, timestamp, key, value, headers });
  }
  if (rd.pos !== recs.length) throw new CorruptBatchError('bytes after the last record', 'BAD_COUNT');
}

/**
 * Decodes every batch in a run of whole batches (a DATA frame body, a replay chunk, a
 * segment file). Each batch is CRC-checked. Records below `minOffset` are skipped.
 */
export function decodeBatches(buf: Uint8Array, minOffset = -Infinity): StoredRecord[] {
  const out: StoredRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const h = checkBatch(buf, pos, buf.length);
    if (h.baseOffset + h.lastOffsetDelta >= minOffset) {
      forEachRecord(buf, pos, h, (r) => {
        if (r.offset >= minOffset) out.push(r);
      });
    }
    pos += h.size;
  }
  return out;
}

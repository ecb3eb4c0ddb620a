/**
 * Record batches shaped like the attacks of issue 14, built from raw bytes (the codec's
 * encoder would refuse to build some of them, or take minutes building objects for them):
 * a header bomb (one record with millions of two-byte headers, LZ4-compressed to a few
 * hundred KiB), records with huge keys or header values, and batches whose header
 * timestamps say what the caller wants, true or not.
 */
import { BATCH_HEADER_BYTES, CODEC_LZ4, CODEC_NONE, crc32c, lz4FrameEncode } from '../../engine/codec/index.ts';
import { varintSize, writeVarint } from '../../engine/codec/varint.ts';

export interface RawBatchOptions {
  codec?: 'none' | 'lz4';
  recordCount: number;
  baseTimestamp?: number;
  /** Written as is, whatever the records say; the records' largest when absent. */
  maxTimestamp?: number;
  /** The records' largest timestamp when `maxTimestamp` is absent (default: baseTimestamp). */
  recordsMaxTimestamp?: number;
}

/** Wraps already-encoded records (`records`, plain) in a batch: compressed when asked, CRC sealed. */
export function wrapRecords(records: Uint8Array, o: RawBatchOptions): Uint8Array {
  const body = o.codec === 'lz4' ? lz4FrameEncode(records) : records;
  const out = new Uint8Array(BATCH_HEADER_BYTES + body.length);
  const dv = new DataView(out.buffer);
  const base = o.baseTimestamp ?? Date.now();
  dv.setBigInt64(0, 0n);
  dv.setInt32(8, out.length - 12);
  dv.setInt32(12, 0);
  out[16] = 2;
  dv.setInt16(21, o.codec === 'lz4' ? CODEC_LZ4 : CODEC_NONE);
  dv.setInt32(23, o.recordCount - 1);
  dv.setBigInt64(27, BigInt(base));
  dv.setBigInt64(35, BigInt(o.maxTimestamp ?? o.recordsMaxTimestamp ?? base));
  dv.setBigInt64(43, -1n);
  dv.setInt16(51, -1);
  dv.setInt32(53, -1);
  dv.setInt32(57, o.recordCount);
  out.set(body, BATCH_HEADER_BYTES);
  dv.setUint32(17, crc32c(out, 21, out.length));
  return out;
}

/** One record: timestamp delta, offset delta, key, value and headers as raw bytes. */
export function rawRecord(r: { offsetDelta: number; tsDelta?: number; key?: Uint8Array | null; value?: Uint8Array | null; headers?: [Uint8Array, Uint8Array | null][] }): Uint8Array {
  const key = r.key ?? null;
  const value = r.value === undefined ? null : r.value;
  const hs = r.headers ?? [];
  let body = 1 + varintSize(r.tsDelta ?? 0) + varintSize(r.offsetDelta);
  body += key === null ? 1 : varintSize(key.length) + key.length;
  body += value === null ? 1 : varintSize(value.length) + value.length;
  body += varintSize(hs.length);
  for (const [k, v] of hs) body += varintSize(k.length) + k.length + (v === null ? 1 : varintSize(v.length) + v.length);
  const out = new Uint8Array(varintSize(body) + body);
  let p = writeVarint(out, 0, body);
  out[p++] = 0;
  p = writeVarint(out, p, r.tsDelta ?? 0);
  p = writeVarint(out, p, r.offsetDelta);
  for (const f of [key, value]) {
    if (f === null) p = writeVarint(out, p, -1);
    else {
      p = writeVarint(out, p, f.length);
      out.set(f, p);
      p += f.length;
    }
  }
  p = writeVarint(out, p, hs.length);
  for (const [k, v] of hs) {
    p = writeVarint(out, p, k.length);
    out.set(k, p);
    p += k.length;
    if (v === null) p = writeVarint(out, p, -1);
    else {
      p = writeVarint(out, p, v.length);
      out.set(v, p);
      p += v.length;
    }
  }
  return out;
}

/**
 * The LZ4 header bomb: `count` records (one by default) with `headers` headers each of an
 * empty key and an empty value (two zero bytes each), compressed. 33.5 M headers decode to
 * 64 MiB and compress to about 270 KB. Built straight into one buffer: no object per header.
 */
export function headerBomb(headers: number, timestamp = Date.now(), count = 1): Uint8Array {
  const fieldsOf = (i: number): number => 1 + 1 + varintSize(i) + 1 + 1 + varintSize(headers) + 2 * headers;
  let total = 0;
  for (let i = 0; i < count; i++) total += varintSize(fieldsOf(i)) + fieldsOf(i);
  const records = new Uint8Array(total);
  let p = 0;
  for (let i = 0; i < count; i++) {
    p = writeVarint(records, p, fieldsOf(i));
    records[p++] = 0; // attributes
    records[p++] = 0; // timestamp delta
    p = writeVarint(records, p, i); // offset delta
    p = writeVarint(records, p, -1); // key null
    p = writeVarint(records, p, -1); // value null
    p = writeVarint(records, p, headers);
    // The rest is already zeros: header key length 0, header value length 0, for each.
    p += 2 * headers;
  }
  return wrapRecords(records, { codec: 'lz4', recordCount: count, baseTimestamp: timestamp });
}

/** A batch of `count` small records, timestamps `timestamps[i]` (one per record), maxTimestamp as given or true. */
export function timedBatch(timestamps: number[], o: { codec?: 'none' | 'lz4'; maxTimestamp?: number; value?: (i: number) => Uint8Array } = {}): Uint8Array {
  const base = Math.min(...timestamps);
  const parts = timestamps.map((ts, i) => rawRecord({ offsetDelta: i, tsDelta: ts - base, value: o.value?.(i) ?? new TextEncoder().encode(`at ${ts}`) }));
  const records = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let p = 0;
  for (const x of parts) {
    records.set(x, p);
    p += x.length;
  }
  return wrapRecords(records, { codec: o.codec, recordCount: timestamps.length, baseTimestamp: base, maxTimestamp: o.maxTimestamp, recordsMaxTimestamp: Math.max(...timestamps) });
}

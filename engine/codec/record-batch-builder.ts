/**
 * One RecordBatch v2 built record by record, for a server that gathers publishes as they
 * arrive: each record is written in its final byte form the moment it is added — strings
 * straight into the batch as UTF-8, with no Buffer or record object per field — so that
 * sealing the batch is the compression (or none), the header and the CRC.
 *
 *   buf: [61 bytes left for the header, written at seal] [record] [record] ...
 *
 * Every record gets the batch's timestamp (timestampDelta 0: sluice stamps a batch when it
 * seals it) and offsetDelta = its index. The record layout is record-batch.ts's.
 */
import { BATCH_HEADER_BYTES, CODEC_LZ4, CODEC_NONE, type Codec, compressRecords, writeBatchHeader } from './record-batch.ts';
import { varintSize, writeVarint } from './varint.ts';

/** A key, value or header value: UTF-8 text, bytes, or null. */
export type RecordField = string | Uint8Array | null;

/** Headers as name/value pairs (names are UTF-8 text). */
export type RecordHeaderFields = ReadonlyArray<readonly [string, RecordField]>;

const utf8 = new TextEncoder();

/** Writes `s` as UTF-8 at `pos` of `buf` (which has the room); returns the bytes written. */
export type Utf8Writer = (buf: Uint8Array, pos: number, s: string) => number;

/** The portable writer: TextEncoder.encodeInto. */
export const writeUtf8Portable: Utf8Writer = (buf, pos, s) => utf8.encodeInto(s, buf.subarray(pos)).written;

let nativeWriter: Utf8Writer = writeUtf8Portable;

/**
 * Registers a faster writer for strings (Node's Buffer utf8Write: ~55 ns for 100 ASCII
 * characters here, against ~90 ns for encodeInto); it must agree with the portable one.
 */
export function useUtf8Writer(fn: Utf8Writer): void {
  nativeWriter = fn;
}

/**
 * Strings up to this many UTF-16 units are tried by a JS loop first: ~2 ns a character
 * against a native call's ~40 ns fixed cost, so short keys and topics stay in JS.
 */
const jsEncodeCharsMax = 24;

/**
 * Writes `s` as UTF-8 at `pos` (the room, up to 3 bytes per UTF-16 unit, is there); returns
 * the bytes written. Lone surrogates become U+FFFD, as Buffer.from(s, 'utf8') does.
 */
export function writeUtf8(buf: Uint8Array, pos: number, s: string): number {
  const len = s.length;
  if (len > jsEncodeCharsMax) return nativeWriter(buf, pos, s);
  let i = 0;
  for (; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    buf[pos + i] = c;
  }
  if (i === len) return len;
  return i + nativeWriter(buf, pos + i, s.slice(i));
}

/** The most bytes a field can take: its length varint and its UTF-8 (or raw) bytes. */
function fieldBound(f: RecordField): number {
  if (f === null) return 1;
  return 5 + (typeof f === 'string' ? f.length * 3 : f.length);
}

/** The bytes a field takes if its text is ASCII: exact for the common case, a guess otherwise. */
function fieldGuess(f: RecordField): number {
  if (f === null) return 1;
  return varintSize(f.length) + f.length;
}

/** Writes a length-prefixed field (-1 = null); returns the position after it. */
function writeField(buf: Uint8Array, pos: number, f: RecordField): number {
  if (f === null) {
    buf[pos] = 1; // zig-zag -1
    return pos + 1;
  }
  if (typeof f !== 'string') {
    pos = writeVarint(buf, pos, f.length);
    buf.set(f, pos);
    return pos + f.length;
  }
  // The length prefix comes first but is known only after the text is written: room is
  // left for the ASCII length's prefix and the text moved in the rare case it is wrong.
  const k0 = varintSize(f.length);
  const n = writeUtf8(buf, pos + k0, f);
  const k = varintSize(n);
  if (k !== k0) buf.copyWithin(pos + k, pos + k0, pos + k0 + n);
  writeVarint(buf, pos, n);
  return pos + k + n;
}

export class RecordBatchBuilder {
  private buf: Uint8Array;
  private end = BATCH_HEADER_BYTES;
  /** Records added since the last seal. */
  count = 0;

  constructor(private readonly initialBytes = 4096) {
    this.buf = new Uint8Array(initialBytes);
  }

  /** Bytes of the records added so far, uncompressed. */
  get recordBytes(): number {
    return this.end - BATCH_HEADER_BYTES;
  }

  private reserve(bytes: number): void {
    if (this.end + bytes <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.end + bytes));
    grown.set(this.buf.subarray(0, this.end));
    this.buf = grown;
  }

  /** Appends one record (offsetDelta = its index in the batch). */
  add(key: RecordField, value: RecordField, headers?: RecordHeaderFields | null): void {
    let bound = 5 + 1 + 1 + 5 + fieldBound(key) + fieldBound(value) + 5;
    let guess = 2 + varintSize(this.count) + fieldGuess(key) + fieldGuess(value) + 1;
    if (headers) {
      for (const [k, v] of headers) {
        bound += 5 + k.length * 3 + fieldBound(v);
        guess += varintSize(k.length) + k.length + fieldGuess(v);
      }
      guess += varintSize(headers.length) - 1;
    }
    this.reserve(bound);
    const buf = this.buf;
    const start = this.end;
    // As for a field: room for the guessed body length's prefix, moved when it is wrong.
    const k0 = varintSize(guess);
    let p = start + k0;
    buf[p++] = 0; // attributes
    buf[p++] = 0; // timestampDelta 0
    p = writeVarint(buf, p, this.count);
    p = writeField(buf, p, key);
    p = writeField(buf, p, value);
    if (headers && headers.length > 0) {
      p = writeVarint(buf, p, headers.length);
      for (const [k, v] of headers) {
        p = writeField(buf, p, k);
        p = writeField(buf, p, v);
      }
    } else buf[p++] = 0;
    const body = p - start - k0;
    const k = varintSize(body);
    if (k !== k0) buf.copyWithin(start + k, start + k0, p);
    writeVarint(buf, start, body);
    this.end = start + k + body;
    this.count++;
  }

  /**
   * The batch of every record added since the last seal, stamped `timestamp`, compressed
   * with `codec`; the builder is empty afterwards. At least one record must have been added.
   */
  seal(codec: Codec, timestamp: number): Uint8Array {
    if (this.count === 0) throw new RangeError('a batch holds at least one record');
    let out: Uint8Array;
    if (codec === 'lz4') {
      out = compressRecords(this.buf.subarray(BATCH_HEADER_BYTES, this.end));
    } else if (this.end * 2 >= this.buf.length) {
      // Mostly full: hand the buffer over as the batch, and start a new one next time.
      out = this.buf.subarray(0, this.end);
      this.buf = new Uint8Array(Math.max(this.initialBytes, this.end));
    } else out = this.buf.slice(0, this.end);
    writeBatchHeader(out, this.count, timestamp, timestamp, codec === 'lz4' ? CODEC_LZ4 : CODEC_NONE);
    this.end = BATCH_HEADER_BYTES;
    this.count = 0;
    return out;
  }

  /** Forgets every record added since the last seal. */
  clear(): void {
    this.end = BATCH_HEADER_BYTES;
    this.count = 0;
  }
}

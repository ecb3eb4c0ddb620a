/**
 * Kafka's zig-zag varints (protobuf style, little-endian groups of 7 bits).
 * `varint` fields are int32 and `varlong` fields int64; both are handled as JS numbers,
 * which is exact up to 2^53 — far beyond any delta or length a batch holds.
 */
import { CorruptBatchError } from '../errors.ts';

/** Bytes that `writeVarint(n)` takes. */
export function varintSize(n: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  let size = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    size++;
  }
  return size;
}

/** Writes `n` zig-zag encoded at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  if (z < 0x80000000) {
    // Fast path for the 31-bit values that make up nearly every field.
    while (z >= 128) {
      buf[pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    buf[pos++] = z;
    return pos;
  }
  while (z >= 128) {
    buf[pos++] = (z % 128) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[pos++] = z;
  return pos;
}

/** A cursor over a byte range; reads throw CorruptBatchError instead of running past `end`. */
export class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    pos: number,
    readonly end: number,
  ) {
    this.pos = pos;
  }

  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    let shift = 1;
    let z = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw new CorruptBatchError('varint runs past the end of the record', 'BAD_VARINT');
      const b = buf[pos++];
      z += (b & 0x7f) * shift;
      if (b < 0x80) {
        this.pos = pos;
        if (z > Number.MAX_SAFE_INTEGER) throw new CorruptBatchError('varint out of range', 'BAD_VARINT');
        // zig-zag decode without 32-bit truncation
        return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      }
      shift *= 128;
    }
    throw new CorruptBatchError('varint longer than 10 bytes', 'BAD_VARINT');
  }

  /** `n` bytes as a view (no copy). */
  bytes(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) throw new CorruptBatchError('field runs past the end of the record', 'BAD_LENGTH');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  int8(): number {
    if (this.pos >= this.end) throw new CorruptBatchError('record truncated', 'BAD_LENGTH');
    return this.buf[this.pos++];
  }
}

/**
 * The primitive types of the Kafka protocol, read from and written to byte buffers:
 * big-endian fixed-width integers, unsigned varints (flexible versions' lengths and tags),
 * strings and byte arrays in their classic (int16/int32 length, -1 = null) and compact
 * (unsigned varint length + 1, 0 = null) forms, and UUIDs.
 *
 * A Reader never reads past its end: any field that would is a KafkaDecodeError, and the
 * connection that sent it is closed (a request whose framing cannot be trusted cannot be
 * answered). int64 fields are JS numbers: exact to 2^53, as offsets and timestamps are on
 * every sluice wire (contract §1); larger values lose their low bits and are then refused
 * by whoever checks them as offsets.
 *
 * A Writer grows its buffer as it goes, and may hold *external parts* between its own bytes:
 * byte views that are written to the socket as they are (no copy) and file ranges that go
 * out with sendfile(2). A Fetch response is such a sequence: fields, a partition's stored
 * batches straight from the segment file, more fields.
 */

export class KafkaDecodeError extends Error {
  override readonly name = 'KafkaDecodeError';
}

/** A byte range of a file, sent with sendfile(2) at its place in the response. */
export interface FileRange {
  readonly kind: 'file';
  readonly fd: number;
  readonly position: number;
  readonly length: number;
}

/** A response as it goes out: our bytes, views written without a copy, file ranges. */
export type Part = Buffer | FileRange;

const TEXT = new TextDecoder('utf-8', { fatal: false });

export class Reader {
  pos: number;
  readonly end: number;
  private readonly dv: DataView;

  constructor(
    readonly buf: Buffer,
    pos = 0,
    end = buf.length,
  ) {
    this.pos = pos;
    this.end = end;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): number {
    const at = this.pos;
    if (n < 0 || at + n > this.end) throw new KafkaDecodeError(`${what} runs past the end of the request (needs ${n} bytes at ${at}, ${this.end - at} left)`);
    this.pos = at + n;
    return at;
  }

  int8(): number {
    return this.dv.getInt8(this.need(1, 'int8'));
  }

  int16(): number {
    return this.dv.getInt16(this.need(2, 'int16'));
  }

  int32(): number {
    return this.dv.getInt32(this.need(4, 'int32'));
  }

  uint32(): number {
    return this.dv.getUint32(this.need(4, 'uint32'));
  }

  int64(): number {
    const at = this.need(8, 'int64');
    return this.dv.getInt32(at) * 4294967296 + this.dv.getUint32(at + 4);
  }

  float64(): number {
    return this.dv.getFloat64(this.need(8, 'float64'));
  }

  bool(): boolean {
    return this.buf[this.need(1, 'bool')] !== 0;
  }

  /** An unsigned varint of at most 32 bits (5 bytes), as flexible versions use for lengths and tags. */
  uvarint(): number {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.end) throw new KafkaDecodeError('unsigned varint runs past the end of the request');
      const b = this.buf[this.pos++];
      value += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (value > 0xffffffff) throw new KafkaDecodeError('unsigned varint is wider than 32 bits');
        return value;
      }
      mul *= 128;
    }
    throw new KafkaDecodeError('unsigned varint is longer than 5 bytes');
  }

  uuid(): Buffer {
    const at = this.need(16, 'uuid');
    return this.buf.subarray(at, at + 16);
  }

  /** A view of `n` bytes (no copy). */
  raw(n: number, what = 'bytes'): Buffer {
    const at = this.need(n, what);
    return this.buf.subarray(at, at + n);
  }

  private text(n: number): string {
    const at = this.need(n, 'string');
    return TEXT.decode(this.buf.subarray(at, at + n));
  }

  /** Classic string (int16 length); -1 is null. */
  string(): string | null {
    const n = this.int16();
    if (n === -1) return null;
    if (n < 0) throw new KafkaDecodeError(`string length ${n}`);
    return this.text(n);
  }

  /** Compact string (uvarint length + 1); 0 is null. */
  compactString(): string | null {
    const n = this.uvarint();
    if (n === 0) return null;
    return this.text(n - 1);
  }

  /** Classic bytes (int32 length); -1 is null. A view, no copy. */
  bytes(): Buffer | null {
    const n = this.int32();
    if (n === -1) return null;
    if (n < 0) throw new KafkaDecodeError(`bytes length ${n}`);
    return this.raw(n);
  }

  compactBytes(): Buffer | null {
    const n = this.uvarint();
    if (n === 0) return null;
    return this.raw(n - 1);
  }

  /** An array length: classic int32 (-1 null) or compact uvarint (0 null); bounded by the bytes left. */
  arrayLength(compact: boolean, minItemBytes: number): number {
    const n = compact ? this.uvarint() - 1 : this.int32();
    if (n < -1) throw new KafkaDecodeError(`array length ${n}`);
    // Each item takes at least minItemBytes: a count the remaining bytes cannot hold is a lie,
    // refused before anything is allocated for it.
    if (n > 0 && n * minItemBytes > this.end - this.pos) throw new KafkaDecodeError(`array of ${n} items cannot fit in the ${this.end - this.pos} bytes left`);
    return n;
  }
}

const WRITER_START_BYTES = 256;

export class Writer {
  private buf: Buffer;
  private dv: DataView;
  pos = 0;
  /** Where the bytes not yet moved to `parts` begin. */
  private cut = 0;
  private readonly parts: Part[] = [];
  /** Bytes of external parts (views and file ranges). */
  private externalBytes = 0;

  constructor(startBytes = WRITER_START_BYTES) {
    this.buf = Buffer.allocUnsafe(startBytes);
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.dv = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  int8(v: number): void {
    this.room(1);
    this.dv.setInt8(this.pos, v);
    this.pos += 1;
  }

  int16(v: number): void {
    this.room(2);
    this.dv.setInt16(this.pos, v);
    this.pos += 2;
  }

  int32(v: number): void {
    this.room(4);
    this.dv.setInt32(this.pos, v);
    this.pos += 4;
  }

  uint32(v: number): void {
    this.room(4);
    this.dv.setUint32(this.pos, v);
    this.pos += 4;
  }

  int64(v: number): void {
    this.room(8);
    const hi = Math.floor(v / 4294967296);
    this.dv.setInt32(this.pos, hi);
    this.dv.setUint32(this.pos + 4, v - hi * 4294967296);
    this.pos += 8;
  }

  float64(v: number): void {
    this.room(8);
    this.dv.setFloat64(this.pos, v);
    this.pos += 8;
  }

  bool(v: boolean): void {
    this.room(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  uvarint(v: number): void {
    this.room(5);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  uuid(v: Uint8Array | null): void {
    this.room(16);
    if (v && v.length === 16) this.buf.set(v, this.pos);
    else this.buf.fill(0, this.pos, this.pos + 16);
    this.pos += 16;
  }

  raw(v: Uint8Array): void {
    this.room(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  string(v: string | null): void {
    if (v === null) return this.int16(-1);
    const n = Buffer.byteLength(v);
    this.int16(n);
    this.room(n);
    this.pos += this.buf.write(v, this.pos, 'utf8');
  }

  compactString(v: string | null): void {
    if (v === null) return this.uvarint(0);
    const n = Buffer.byteLength(v);
    this.uvarint(n + 1);
    this.room(n);
    this.pos += this.buf.write(v, this.pos, 'utf8');
  }

  bytes(v: Uint8Array | null): void {
    if (v === null) return this.int32(-1);
    this.int32(v.length);
    this.raw(v);
  }

  compactBytes(v: Uint8Array | null): void {
    if (v === null) return this.uvarint(0);
    this.uvarint(v.length + 1);
    this.raw(v);
  }

  arrayLength(n: number | null, compact: boolean): void {
    if (compact) this.uvarint(n === null ? 0 : n + 1);
    else this.int32(n === null ? -1 : n);
  }

  /** Bytes that go out as they are (a mapped segment's view): no copy into this buffer. */
  external(part: Buffer | FileRange): void {
    this.parts.push(this.buf.subarray(this.cut, this.pos));
    this.parts.push(part);
    this.cut = this.pos;
    this.externalBytes += part.length;
  }

  /** Total bytes written, external parts included. */
  get length(): number {
    return this.pos + this.externalBytes;
  }

  /** Everything written, in order. The writer must not be used afterwards. */
  finish(): Part[] {
    const out = this.parts;
    out.push(this.buf.subarray(this.cut, this.pos));
    return out.filter((p) => p.length > 0);
  }

  /** The bytes written, when no external part was added (requests built in tests and benches). */
  bytesOnly(): Buffer {
    if (this.externalBytes > 0 || this.parts.length > 0) throw new Error('the writer holds external parts');
    return this.buf.subarray(0, this.pos);
  }
}

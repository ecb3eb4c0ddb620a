/**
 * LZ4 frames (lz4/doc/lz4_Frame_format.md) as Kafka writes them inside a record batch:
 *
 *   magic 04 22 4D 18 | FLG | BD | [content size u64] | [dict id] | HC
 *   blocks: size u32 LE (bit 31 set = stored uncompressed) | data | [block checksum]
 *   end mark 00 00 00 00 | [content checksum]
 *
 * We write version 1, independent blocks of at most 64 KiB, no checksums (the batch CRC
 * already covers every byte). We read any frame with independent blocks; a frame with
 * linked blocks or a dictionary is refused, as the wire contract says. Checksums that a
 * frame carries are verified and nothing may follow its end: the bytes we accept are
 * stored and served unchanged, and kafkajs's LZ4 codec refuses a frame that fails either.
 */
import { CorruptBatchError } from '../errors.ts';
import { type Lz4BlockCodec, compressBound, portableLz4 } from './lz4-block.ts';
import { Xxhash32Stream, xxhash32 } from './xxhash32.ts';

const MAGIC = 0x184d2204;
const BLOCK_MAX = 64 * 1024;
const BD_64K = 4 << 4;
const FLG_V1_INDEPENDENT = 0x60;
const STORED = 0x80000000;

let block: Lz4BlockCodec = portableLz4;

/** Registers a faster block codec (native lz4 in Node). */
export function useLz4BlockCodec(codec: Lz4BlockCodec): void {
  block = codec;
}

const headerChecksum = ((): number => {
  const d = new Uint8Array([FLG_V1_INDEPENDENT, BD_64K]);
  return (xxhash32(d) >>> 8) & 0xff;
})();

/** Bytes `lz4FrameEncodeInto` may write for `n` bytes of input. */
export function lz4FrameBound(n: number): number {
  const full = Math.floor(n / BLOCK_MAX);
  const rest = n - full * BLOCK_MAX;
  return 7 + full * (4 + compressBound(BLOCK_MAX)) + (rest > 0 || n === 0 ? 4 + compressBound(rest) : 0) + 4;
}

/** Compresses `src` into a whole LZ4 frame. */
export function lz4FrameEncode(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(lz4FrameBound(src.length));
  return out.subarray(0, lz4FrameEncodeInto(src, out, 0));
}

/**
 * Writes the frame of `src` into `dst` from `pos` (which must leave `lz4FrameBound` bytes)
 * and returns where it ends. Blocks are compressed in place: no scratch copy, and the
 * caller can put the frame where it will stay (behind a batch header).
 */
export function lz4FrameEncodeInto(src: Uint8Array, dst: Uint8Array, pos: number): number {
  if (dst.length - pos < lz4FrameBound(src.length)) throw new RangeError('lz4 frame: output too small');
  dst[pos] = 0x04;
  dst[pos + 1] = 0x22;
  dst[pos + 2] = 0x4d;
  dst[pos + 3] = 0x18;
  dst[pos + 4] = FLG_V1_INDEPENDENT;
  dst[pos + 5] = BD_64K;
  dst[pos + 6] = headerChecksum;
  let op = pos + 7;
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  for (let ip = 0; ip < src.length; ip += BLOCK_MAX) {
    const chunk = src.subarray(ip, Math.min(ip + BLOCK_MAX, src.length));
    const n = block.compress(chunk, dst.subarray(op + 4, op + 4 + compressBound(chunk.length)));
    if (n > 0 && n < chunk.length) {
      dv.setUint32(op, n, true);
      op += 4 + n;
    } else {
      dv.setUint32(op, (chunk.length | STORED) >>> 0, true);
      dst.set(chunk, op + 4);
      op += 4 + chunk.length;
    }
  }
  dv.setUint32(op, 0, true);
  return op + 4;
}

const BLOCK_SIZES = [0, 0, 0, 0, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];

/**
 * The most bytes one frame may decompress to. LZ4 can expand ~255x, so a 1 MiB batch could
 * otherwise ask for 255 MiB; no batch sluice accepts holds more than this.
 */
export const decodedBytesMax = 64 * 1024 * 1024;

interface FrameHeader {
  blockMax: number;
  blockChecksum: boolean;
  contentChecksum: boolean;
  /** The declared content size, -1 when the frame does not declare one. */
  size: number;
  /** Where the first block starts. */
  ip: number;
}

function fail(what: string): never {
  throw new CorruptBatchError(`lz4 frame: ${what}`, 'BAD_LZ4');
}

/** Checks the frame descriptor: magic, version, independent blocks, no dictionary, its checksum. */
function readFrameHeader(src: Uint8Array, dv: DataView, maxBytes: number): FrameHeader {
  if (src.length < 7 || dv.getUint32(0, true) !== MAGIC) fail('bad magic');
  const flg = src[4];
  const bd = src[5];
  if (flg >>> 6 !== 1) fail('unsupported version');
  if ((flg & 0x20) === 0) fail('linked blocks are not supported');
  if (flg & 0x01) fail('dictionaries are not supported');
  const blockMax = BLOCK_SIZES[(bd >>> 4) & 7];
  if (!blockMax) fail('bad block size');
  let ip = 6;
  let size = -1;
  if (flg & 0x08) {
    if (src.length < 15) fail('truncated header');
    size = dv.getUint32(6, true) + dv.getUint32(10, true) * 4294967296;
    ip += 8;
  }
  if (((xxhash32(src, 4, ip) >>> 8) & 0xff) !== src[ip]) fail('header checksum mismatch');
  ip++;
  // A declared size bounds the output but is never trusted for an allocation: a frame of
  // a few bytes can claim terabytes.
  if (size > maxBytes) fail(`declared content size ${size} exceeds ${maxBytes}`);
  return { blockMax, blockChecksum: (flg & 0x10) !== 0, contentChecksum: (flg & 0x04) !== 0, size, ip };
}

/** Decompresses a whole LZ4 frame; `expect` is a size hint for the output. */
export function lz4FrameDecode(src: Uint8Array, expect = src.length * 4, maxBytes = decodedBytesMax): Uint8Array {
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const { blockMax, blockChecksum, contentChecksum, size, ip: start } = readFrameHeader(src, dv, maxBytes);
  let ip = start;
  const limit = size >= 0 ? size : maxBytes;
  let out = new Uint8Array(Math.min(limit, Math.max(expect, 64)));
  let op = 0;
  const ensure = (n: number): void => {
    if (op + n > limit) fail(size >= 0 ? 'content larger than its declared size' : `content exceeds ${maxBytes} bytes`);
    if (op + n <= out.length) return;
    const grown = new Uint8Array(Math.min(limit, Math.max(out.length * 2, op + n)));
    grown.set(out.subarray(0, op));
    out = grown;
  };
  for (;;) {
    if (ip + 4 > src.length) fail('truncated block');
    const word = dv.getUint32(ip, true);
    ip += 4;
    if (word === 0) break;
    const n = word & 0x7fffffff;
    if (n > blockMax || ip + n > src.length) fail('block length out of range');
    if (word & STORED) {
      ensure(n);
      out.set(src.subarray(ip, ip + n), op);
      op += n;
    } else {
      // Room for a whole block, or for what the declared size leaves.
      const room = Math.min(blockMax, limit - op);
      ensure(room);
      const w = block.decompress(src.subarray(ip, ip + n), out.subarray(op, op + room));
      if (w < 0) fail('corrupt block');
      op += w;
    }
    ip += n;
    if (blockChecksum) {
      if (ip + 4 > src.length) fail('truncated block checksum');
      if (dv.getUint32(ip, true) !== xxhash32(src, ip - n, ip)) fail('block checksum mismatch');
      ip += 4;
    }
  }
  if (size >= 0 && op !== size) fail('content size mismatch');
  if (contentChecksum) {
    if (ip + 4 > src.length) fail('truncated frame');
    if (dv.getUint32(ip, true) !== xxhash32(out, 0, op)) fail('content checksum mismatch');
    ip += 4;
  }
  if (ip !== src.length) fail('bytes after the end of the frame');
  return out.subarray(0, op);
}

/**
 * Reads a frame block by block, never holding more of its content than one block: each
 * `next()` returns the next block's decoded bytes, or null after the end mark once the
 * declared size, the content checksum and the frame's end are checked. A returned block is
 * valid until the following `next()`: a stored block is a view of `src`, a compressed one is
 * decoded into one buffer the reader reuses (of the frame's block size, at most 4 MiB).
 * This is how a batch is validated without inflating it whole (a few hundred KiB of frame
 * can claim tens of MiB of content).
 */
export class Lz4FrameReader {
  private readonly dv: DataView;
  private readonly header: FrameHeader;
  private ip: number;
  private total = 0;
  private done = false;
  private scratch: Uint8Array | null = null;
  private readonly hash: Xxhash32Stream | null;

  /**
   * `maxBytes`: the most content the frame may hold. Past it, `tooLarge()` is thrown when
   * given (a limit of the caller's), else a BAD_LZ4 CorruptBatchError. `scratch`: a buffer
   * to decode blocks into, used when it holds a whole block (a caller that reads one frame
   * at a time can keep one for all of them).
   */
  constructor(
    private readonly src: Uint8Array,
    private readonly maxBytes = decodedBytesMax,
    private readonly tooLarge?: (bytes: number) => Error,
    scratch?: Uint8Array,
  ) {
    this.dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    // The declared size is checked against the caller's limit here, with the caller's error.
    this.header = readFrameHeader(src, this.dv, Math.max(maxBytes, decodedBytesMax));
    if (this.header.size > maxBytes) this.overflow(this.header.size);
    this.ip = this.header.ip;
    this.hash = this.header.contentChecksum ? new Xxhash32Stream() : null;
    if (scratch && scratch.length >= this.header.blockMax) this.scratch = scratch;
  }

  /** Content bytes decoded so far. */
  get decodedBytes(): number {
    return this.total;
  }

  /** True when the block last returned is the frame's last (its end mark follows). */
  get atLastBlock(): boolean {
    return this.done || (this.ip + 4 <= this.src.length && this.dv.getUint32(this.ip, true) === 0);
  }

  private overflow(bytes: number): never {
    if (this.tooLarge) throw this.tooLarge(bytes);
    fail(`content exceeds ${this.maxBytes} bytes`);
  }

  next(): Uint8Array | null {
    if (this.done) return null;
    const { src, dv } = this;
    const { blockMax, size } = this.header;
    for (;;) {
      if (this.ip + 4 > src.length) fail('truncated block');
      const word = dv.getUint32(this.ip, true);
      this.ip += 4;
      if (word === 0) {
        this.finish();
        return null;
      }
      const n = word & 0x7fffffff;
      if (n > blockMax || this.ip + n > src.length) fail('block length out of range');
      const from = this.ip;
      let content: Uint8Array;
      if (word & STORED) {
        content = src.subarray(from, from + n);
      } else {
        this.scratch ??= new Uint8Array(blockMax);
        const w = block.decompress(src.subarray(from, from + n), this.scratch.subarray(0, blockMax));
        if (w < 0) fail('corrupt block');
        content = this.scratch.subarray(0, w);
      }
      this.ip += n;
      if (this.header.blockChecksum) {
        if (this.ip + 4 > src.length) fail('truncated block checksum');
        if (dv.getUint32(this.ip, true) !== xxhash32(src, from, this.ip)) fail('block checksum mismatch');
        this.ip += 4;
      }
      this.total += content.length;
      if (size >= 0 && this.total > size) fail('content larger than its declared size');
      if (this.total > this.maxBytes) this.overflow(this.total);
      this.hash?.update(content);
      // An empty block is legal; the caller wants bytes, so read on.
      if (content.length > 0) return content;
    }
  }

  private finish(): void {
    this.done = true;
    if (this.header.size >= 0 && this.total !== this.header.size) fail('content size mismatch');
    if (this.hash) {
      if (this.ip + 4 > this.src.length) fail('truncated frame');
      if (this.dv.getUint32(this.ip, true) !== this.hash.digest()) fail('content checksum mismatch');
      this.ip += 4;
    }
    if (this.ip !== this.src.length) fail('bytes after the end of the frame');
  }
}

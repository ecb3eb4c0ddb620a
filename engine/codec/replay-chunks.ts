/**
 * The chunk framing of the TCP replay port (wire contract §4), written once for the replay
 * server, the SDK's replay client and the tests:
 *
 *   chunk   u32 headerLength | header JSON (UTF-8) | body
 *   data    {"ok":true,"bytes":N,"first":baseOffsetOfFirstBatch} + N bytes of whole batches,
 *           with "gap":{"from","to"} when offsets from..to-1 were lost to storage damage
 *           and skipped (the bytes then start at `to`)
 *   end     {"ok":true,"end":true,"bytes":0,"next":offset,"hw":offset}
 *   error   {"ok":false,"code","message"}
 *
 * Pure TypeScript on Uint8Array, like the rest of the codec.
 */
import { SluiceError } from '../errors.ts';

export type ChunkHeader =
  | { ok: true; end?: undefined; bytes: number; first: number; gap?: { from: number; to: number } }
  | { ok: true; end: true; bytes: 0; next: number; hw: number }
  | { ok: false; code: string; message: string };

export interface Chunk {
  header: ChunkHeader;
  /** The body (empty for end and error headers). */
  body: Uint8Array;
}

/** A header longer than this means the stream is out of step (the server's are < 200 bytes). */
export const chunkHeaderBytesMax = 64 * 1024;

/** The stream cannot be read on: a header too long, not JSON, or not a chunk header (a server that broke the contract). */
export class ChunkFramingError extends SluiceError<'INTERNAL'> {
  constructor(message: string) {
    super('INTERNAL', message, 'PROTOCOL');
    this.name = 'ChunkFramingError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `u32 length | JSON` of one header; the body, if any, follows it on the wire. */
export function encodeChunkHeader(header: ChunkHeader): Uint8Array {
  const json = encoder.encode(JSON.stringify(header));
  const out = new Uint8Array(4 + json.length);
  new DataView(out.buffer).setUint32(0, json.length);
  out.set(json, 4);
  return out;
}

function isChunkHeader(h: unknown): h is ChunkHeader {
  if (typeof h !== 'object' || h === null) return false;
  const o = h as Record<string, unknown>;
  if (o.ok === false) return typeof o.code === 'string';
  if (o.ok !== true || !Number.isSafeInteger(o.bytes) || (o.bytes as number) < 0) return false;
  return o.end === true ? Number.isSafeInteger(o.next) && Number.isSafeInteger(o.hw) : Number.isSafeInteger(o.first);
}

/**
 * Reads chunks out of a byte stream that arrives in pieces: `push` what the socket gave,
 * then call `next` until it returns null (a chunk is not whole yet). Throws
 * ChunkFramingError when the bytes cannot be chunks.
 */
export class ChunkReader {
  private pieces: Uint8Array[] = [];
  private buffered = 0;
  private header: ChunkHeader | null = null;

  /** Bytes received and not yet returned in a chunk. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.pieces.push(bytes);
    this.buffered += bytes.length;
  }

  next(): Chunk | null {
    if (this.header === null) {
      if (this.buffered < 4) return null;
      const head = this.peek(4);
      const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
      if (len > chunkHeaderBytesMax) throw new ChunkFramingError(`a replay header of ${len} bytes: the stream is out of step`);
      if (this.buffered < 4 + len) return null;
      this.take(4);
      let parsed: unknown;
      try {
        parsed = JSON.parse(decoder.decode(this.take(len)));
      } catch {
        throw new ChunkFramingError('a replay header that is not JSON: the stream is out of step');
      }
      if (!isChunkHeader(parsed)) throw new ChunkFramingError(`not a replay chunk header: ${JSON.stringify(parsed).slice(0, 200)}`);
      this.header = parsed;
    }
    const n = this.header.ok ? this.header.bytes : 0;
    if (this.buffered < n) return null;
    const chunk = { header: this.header, body: n === 0 ? new Uint8Array(0) : this.take(n) };
    this.header = null;
    return chunk;
  }

  /** The first `n` buffered bytes without consuming them (n <= buffered). */
  private peek(n: number): Uint8Array {
    const first = this.pieces[0];
    if (first.length >= n) return first.subarray(0, n);
    const out = this.take(n);
    this.pieces.unshift(out);
    this.buffered += n;
    return out;
  }

  /** Consumes the first `n` buffered bytes (n <= buffered): a view when they lie in one piece. */
  private take(n: number): Uint8Array {
    const first = this.pieces[0];
    let out: Uint8Array;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.pieces.shift();
      else this.pieces[0] = first.subarray(n);
    } else {
      out = new Uint8Array(n);
      let done = 0;
      while (done < n) {
        const b = this.pieces[0];
        const k = Math.min(b.length, n - done);
        out.set(b.subarray(0, k), done);
        done += k;
        if (k === b.length) this.pieces.shift();
        else this.pieces[0] = b.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}

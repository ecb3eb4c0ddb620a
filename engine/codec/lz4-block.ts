/**
 * The LZ4 block format (lz4/doc/lz4_Block_format.md) in portable TypeScript: sequences of
 * token | literal length+ | literals | match offset (u16 LE) | match length+; the last
 * sequence is literals only, the last 5 bytes are always literals and a match never starts
 * within the last 12 bytes.
 *
 * Node processes register the native `lz4` bindings instead (engine/native-codecs.ts); this
 * one serves the browser SDK and any process where the addon is missing.
 */

export interface Lz4BlockCodec {
  /** Compresses `src` into `dst` (at least `compressBound(src.length)` long); 0 = did not fit. */
  compress(src: Uint8Array, dst: Uint8Array): number;
  /** Decompresses `src` into `dst`; the bytes written, or a negative number for bad input. */
  decompress(src: Uint8Array, dst: Uint8Array): number;
}

export function compressBound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

const MIN_MATCH = 4;
const LAST_LITERALS = 5;
const MF_LIMIT = 12;
const HASH_LOG = 14;
/** Copies shorter than this are done byte by byte in decompressBlockPortable. */
const SHORT_COPY = 32;

function writeLength(dst: Uint8Array, pos: number, len: number): number {
  while (len >= 255) {
    dst[pos++] = 255;
    len -= 255;
  }
  dst[pos++] = len;
  return pos;
}

export function compressBlockPortable(src: Uint8Array, dst: Uint8Array): number {
  const n = src.length;
  const table = new Int32Array(1 << HASH_LOG).fill(-1);
  let anchor = 0;
  let op = 0;
  let ip = 0;
  const matchLimit = n - MF_LIMIT;
  const dstEnd = dst.length;
  const read32 = (i: number): number => src[i] | (src[i + 1] << 8) | (src[i + 2] << 16) | (src[i + 3] << 24);
  while (ip < matchLimit) {
    const seq = read32(ip);
    const h = Math.imul(seq, 2654435761) >>> (32 - HASH_LOG);
    const ref = table[h];
    table[h] = ip;
    if (ref < 0 || ip - ref > 0xffff || read32(ref) !== seq) {
      ip++;
      continue;
    }
    let len = MIN_MATCH;
    const maxLen = n - LAST_LITERALS - ip;
    while (len < maxLen && src[ref + len] === src[ip + len]) len++;
    const litLen = ip - anchor;
    if (op + 1 + litLen + Math.ceil(litLen / 255) + 2 + Math.ceil(len / 255) + 1 > dstEnd) return 0;
    const token = op++;
    dst[token] = (Math.min(litLen, 15) << 4) | Math.min(len - MIN_MATCH, 15);
    if (litLen >= 15) op = writeLength(dst, op, litLen - 15);
    dst.set(src.subarray(anchor, ip), op);
    op += litLen;
    const off = ip - ref;
    dst[op++] = off & 0xff;
    dst[op++] = off >>> 8;
    if (len - MIN_MATCH >= 15) op = writeLength(dst, op, len - MIN_MATCH - 15);
    ip += len;
    anchor = ip;
  }
  const litLen = n - anchor;
  if (op + 1 + litLen + Math.ceil(litLen / 255) + 1 > dstEnd) return 0;
  dst[op++] = Math.min(litLen, 15) << 4;
  if (litLen >= 15) op = writeLength(dst, op, litLen - 15);
  dst.set(src.subarray(anchor, n), op);
  return op + litLen;
}

export function decompressBlockPortable(src: Uint8Array, dst: Uint8Array): number {
  let ip = 0;
  let op = 0;
  const ie = src.length;
  const oe = dst.length;
  while (ip < ie) {
    const token = src[ip++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= ie) return -1;
        b = src[ip++];
        lit += b;
      } while (b === 255);
    }
    if (ip + lit > ie || op + lit > oe) return -1;
    // Most literal runs and matches are a few bytes: a plain loop beats the subarray and
    // the native call of set()/copyWithin() there (2.5x on 100-byte records in Chromium).
    if (lit < SHORT_COPY) {
      for (const stop = ip + lit; ip < stop; ) dst[op++] = src[ip++];
    } else {
      dst.set(src.subarray(ip, ip + lit), op);
      ip += lit;
      op += lit;
    }
    if (ip === ie) return op; // the last sequence has literals only
    if (ip + 2 > ie) return -1;
    const off = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (off === 0 || off > op) return -1;
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (ip >= ie) return -1;
        b = src[ip++];
        len += b;
      } while (b === 255);
    }
    len += MIN_MATCH;
    if (op + len > oe) return -1;
    let m = op - off;
    if (len < SHORT_COPY || off < len) {
      // Also the overlapping match, whose copy must see the bytes it has just written.
      for (const stop = op + len; op < stop; ) dst[op++] = dst[m++];
    } else {
      dst.copyWithin(op, m, m + len);
      op += len;
    }
  }
  return op;
}

export const portableLz4: Lz4BlockCodec = {
  compress: compressBlockPortable,
  decompress: decompressBlockPortable,
};

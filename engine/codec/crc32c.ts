/**
 * CRC-32C (Castagnoli), as the RecordBatch v2 checksum. The portable implementation is
 * slicing-by-8 over eight 256-entry tables; Node processes swap in a native one through
 * `useCrc32c` (engine/native-codecs.ts), the browser keeps this.
 */

const POLY = 0x82f63b78;
const T = new Uint32Array(8 * 256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[i] = c;
}
for (let i = 0; i < 256; i++) {
  for (let s = 1; s < 8; s++) T[s * 256 + i] = (T[(s - 1) * 256 + i] >>> 8) ^ T[T[(s - 1) * 256 + i] & 0xff];
}

/** Portable CRC-32C of `buf[start, end)`. */
export function crc32cPortable(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0xffffffff;
  let i = start;
  const fast = end - ((end - start) & 7);
  while (i < fast) {
    const a = crc ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
    crc =
      T[7 * 256 + (a & 0xff)] ^
      T[6 * 256 + ((a >>> 8) & 0xff)] ^
      T[5 * 256 + ((a >>> 16) & 0xff)] ^
      T[4 * 256 + (a >>> 24)] ^
      T[3 * 256 + buf[i + 4]] ^
      T[2 * 256 + buf[i + 5]] ^
      T[256 + buf[i + 6]] ^
      T[buf[i + 7]];
    i += 8;
  }
  while (i < end) crc = T[(crc ^ buf[i++]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export type Crc32cFn = (buf: Uint8Array, start: number, end: number) => number;

let impl: Crc32cFn = crc32cPortable;

/** CRC-32C of `buf[start, end)` with the fastest implementation registered. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  return impl(buf, start, end);
}

/** Registers a faster implementation; it must agree with `crc32cPortable` bit for bit. */
export function useCrc32c(fn: Crc32cFn): void {
  impl = fn;
}

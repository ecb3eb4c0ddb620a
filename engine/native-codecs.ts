/**
 * Swaps the codec's portable CRC-32C and LZ4 block code for native ones in Node processes:
 * @node-rs/crc32 (~6 GB/s against ~1.5 GB/s) and the `lz4` addon's block functions. Each
 * is checked against the portable version on a sample before it is trusted, and skipped
 * (the portable one stays) when it is missing or disagrees.
 */
import { createRequire } from 'node:module';
import { crc32cPortable, useCrc32c } from './codec/crc32c.ts';
import { type Lz4BlockCodec, compressBound, decompressBlockPortable } from './codec/lz4-block.ts';
import { useLz4BlockCodec } from './codec/lz4-frame.ts';

const require = createRequire(import.meta.url);

export interface NativeCodecs {
  crc32c: boolean;
  lz4: boolean;
}

let installed: NativeCodecs | null = null;

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function tryCrc(): boolean {
  try {
    const { crc32c } = require('@node-rs/crc32') as { crc32c(b: Buffer, init?: number): number };
    const fn = (buf: Uint8Array, start: number, end: number): number => crc32c(asBuffer(buf.subarray(start, end))) >>> 0;
    const sample = new Uint8Array(1000).map((_, i) => (i * 31) & 0xff);
    if (fn(sample, 3, 997) !== crc32cPortable(sample, 3, 997)) return false;
    useCrc32c(fn);
    return true;
  } catch {
    return false;
  }
}

function tryLz4(): boolean {
  try {
    const lz4 = require('lz4') as {
      encodeBlock(src: Buffer, dst: Buffer): number;
      decodeBlock(src: Buffer, dst: Buffer): number;
    };
    const codec: Lz4BlockCodec = {
      compress: (src, dst) => lz4.encodeBlock(asBuffer(src), asBuffer(dst)),
      decompress: (src, dst) => lz4.decodeBlock(asBuffer(src), asBuffer(dst)),
    };
    const sample = new TextEncoder().encode('sluice '.repeat(300) + 'tail bytes');
    const packed = new Uint8Array(compressBound(sample.length));
    const n = codec.compress(sample, packed);
    const back = new Uint8Array(sample.length);
    if (n <= 0 || decompressBlockPortable(packed.subarray(0, n), back) !== sample.length) return false;
    if (Buffer.compare(back, sample) !== 0) return false;
    useLz4BlockCodec(codec);
    return true;
  } catch {
    return false;
  }
}

/** Installs the native codecs once per process; returns which ones took. */
export function installNativeCodecs(): NativeCodecs {
  installed ??= { crc32c: tryCrc(), lz4: tryLz4() };
  return installed;
}

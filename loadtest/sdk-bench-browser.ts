/**
 * The browser half of sdk-bench.ts: bundled by esbuild and loaded in Chromium. It decodes
 * the DATA frames the Node half prepared, once with the portable LZ4 block codec (what the
 * SDK bundle ships) and once with lz4js's block decoder plugged in, and reports records/s.
 */
import { lz4FrameDecode, portableLz4, useLz4BlockCodec } from '../engine/codec/index.ts';
import { decodeData, parseDataFrame } from '../src/client/frames.ts';
// @ts-expect-error lz4js ships no types
import * as lz4js from 'lz4js';

const lz4jsCodec = {
  compress: (): number => 0,
  decompress: (src: Uint8Array, dst: Uint8Array): number => (lz4js as { decompressBlock(s: Uint8Array, d: Uint8Array, si: number, sl: number, di: number): number }).decompressBlock(src, dst, 0, src.length, 0),
};

function splitFrames(all: Uint8Array): Uint8Array[] {
  const dv = new DataView(all.buffer, all.byteOffset, all.byteLength);
  const out: Uint8Array[] = [];
  for (let p = 0; p < all.length; ) {
    const n = dv.getUint32(p);
    out.push(all.subarray(p + 4, p + 4 + n));
    p += 4 + n;
  }
  return out;
}

function decodeAll(frames: Uint8Array[]): number {
  let n = 0;
  for (const f of frames) n += decodeData(parseDataFrame(f), 0).length;
  return n;
}

function measure(frames: Uint8Array[], rounds: number): { recordsPerSec: number; records: number } {
  decodeAll(frames); // warm-up
  let best = Infinity;
  let records = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    records = decodeAll(frames);
    best = Math.min(best, performance.now() - t0);
  }
  return { recordsPerSec: Math.round((records * 1000) / best), records };
}

/** Only the LZ4 frames, to compare the block decoders alone (MB/s of decompressed output). */
function lz4Only(frames: Uint8Array[], rounds: number): number {
  const bodies = frames.map((f) => {
    const df = parseDataFrame(f);
    return df.batches.subarray(61, df.batches.length);
  });
  let best = Infinity;
  let bytes = 0;
  for (let r = 0; r < rounds + 1; r++) {
    const t0 = performance.now();
    bytes = 0;
    for (const b of bodies) bytes += lz4FrameDecode(b, b.length * 4).length;
    if (r > 0) best = Math.min(best, performance.now() - t0);
  }
  return Math.round(bytes / 1000 / best);
}

export async function run(rounds: number): Promise<Record<string, number>> {
  const frames = splitFrames(new Uint8Array(await (await fetch('/frames.bin')).arrayBuffer()));
  // Alternate the two codecs (the JIT warms up over the first runs; the machine is shared)
  // and keep each one's best.
  const best = { portable: 0, lz4js: 0, portableMBs: 0, lz4jsMBs: 0 };
  let records = 0;
  for (let i = 0; i < 3; i++) {
    useLz4BlockCodec(portableLz4);
    const p = measure(frames, rounds);
    records = p.records;
    best.portable = Math.max(best.portable, p.recordsPerSec);
    best.portableMBs = Math.max(best.portableMBs, lz4Only(frames, rounds));
    useLz4BlockCodec(lz4jsCodec);
    best.lz4js = Math.max(best.lz4js, measure(frames, rounds).recordsPerSec);
    best.lz4jsMBs = Math.max(best.lz4jsMBs, lz4Only(frames, rounds));
  }
  useLz4BlockCodec(portableLz4);
  return {
    records,
    portableRecordsPerSec: best.portable,
    lz4jsRecordsPerSec: best.lz4js,
    portableLz4MBs: best.portableMBs,
    lz4jsLz4MBs: best.lz4jsMBs,
  };
}

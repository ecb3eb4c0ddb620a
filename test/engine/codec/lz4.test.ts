/**
 * LZ4: our frames read by the `lz4` package (what kafkajs-lz4 uses) and by lz4js (the
 * browser's), the `lz4` package's frames read by ours, the portable block compressor and
 * decompressor against the native ones in both directions, and frames that must be refused.
 * Frame tests run once per implementation of the block codec (portable, native).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { lz4FrameDecode, lz4FrameEncode } from '../../../engine/codec/index.ts';
import { compressBlockPortable, compressBound, decompressBlockPortable } from '../../../engine/codec/lz4-block.ts';
import { xxhash32 } from '../../../engine/codec/xxhash32.ts';
import {
  type Fill,
  IMPLS,
  assertCorrupt,
  buf,
  concat,
  expectCorrupt,
  frameBlocks,
  lz4Frame,
  lz4pkg,
  makeBytes,
  require,
  seedFor,
  seeded,
  selectImpl,
} from './helpers.ts';

const KiB = 1024;
const BLOCK = 64 * KiB;

const lz4js = require('lz4js') as { decompress(src: Uint8Array): Uint8Array };
const xxhashjs = require('xxhashjs') as { h32(data: Buffer, seed: number): { toNumber(): number } };

/** Inputs every frame test goes through: sizes around the block size and the match limits. */
function samples(seed: number): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = [['empty', new Uint8Array(0)]];
  for (const n of [1, 5, 12, 13, 100]) out.push([`${n} bytes of text`, makeBytes(seed + n, n, 'text')]);
  for (const fill of ['text', 'random', 'runs'] as Fill[]) {
    for (const n of [BLOCK - 1, BLOCK, BLOCK + 1, 300 * KiB]) out.push([`${n} bytes of ${fill}`, makeBytes(seed ^ n, n, fill)]);
  }
  return out;
}

const same = (a: Uint8Array, b: Uint8Array, what: string): void => {
  assert.equal(a.length, b.length, `${what}: length`);
  assert.ok(Buffer.compare(buf(a), buf(b)) === 0, `${what}: bytes differ`);
};

/** One frame per block of `data`, each block compressed (natively) or stored. */
function blocksOf(data: Uint8Array, blockSize = BLOCK): { data: Uint8Array; stored: boolean }[] {
  const blocks = [];
  for (let p = 0; p < data.length; p += blockSize) {
    const chunk = data.subarray(p, Math.min(data.length, p + blockSize));
    const dst = Buffer.alloc(compressBound(chunk.length));
    const n = lz4pkg().encodeBlock(buf(chunk), dst);
    blocks.push(n > 0 && n < chunk.length ? { data: new Uint8Array(dst.subarray(0, n)), stored: false } : { data: chunk, stored: true });
  }
  return blocks;
}

for (const impl of IMPLS) {
  describe(`lz4 frames (${impl} block codec)`, () => {
    test('our frames: independent 64 KiB blocks, read back by us, by lz4.decode and by lz4js', async (t) => {
      selectImpl(impl);
      await seeded(t, (rng) => {
        for (const [name, data] of samples(rng.u32())) {
          const frame = lz4FrameEncode(data);
          const { flg, bd, blocks } = frameBlocks(frame);
          assert.equal(flg, 0x60, `${name}: FLG = version 1, independent blocks, no checksums`);
          assert.equal(bd, 0x40, `${name}: BD = 64 KiB blocks`);
          assert.equal(blocks.length, Math.ceil(data.length / BLOCK), `${name}: block count`);
          same(lz4FrameDecode(frame), data, `${name}: ours`);
          same(lz4pkg().decode(buf(frame)), data, `${name}: lz4.decode`);
          same(lz4js.decompress(frame), data, `${name}: lz4js`);
        }
      });
    });

    test('incompressible data is written as stored blocks', async (t) => {
      selectImpl(impl);
      await seeded(t, (rng) => {
        const data = rng.bytes(3 * BLOCK + 777);
        const { blocks } = frameBlocks(lz4FrameEncode(data));
        assert.deepEqual(
          blocks.map((b) => [b.stored, b.data.length]),
          [[true, BLOCK], [true, BLOCK], [true, BLOCK], [true, 777]],
        );
        assert.deepEqual(concat(blocks.map((b) => b.data)), data);
        // Mixed: stored and compressed blocks in one frame.
        const mixed = concat([data.subarray(0, BLOCK), makeBytes(1, BLOCK, 'text'), data.subarray(0, 10)]);
        const m = frameBlocks(lz4FrameEncode(mixed)).blocks;
        assert.deepEqual(m.map((b) => b.stored), [true, false, true]);
        same(lz4FrameDecode(lz4FrameEncode(mixed)), mixed, 'mixed frame');
        same(lz4pkg().decode(buf(lz4FrameEncode(mixed))), mixed, 'mixed frame through lz4.decode');
      });
    });

    test('the empty input is a header and an end mark', () => {
      selectImpl(impl);
      const frame = lz4FrameEncode(new Uint8Array(0));
      assert.deepEqual([...frame.subarray(0, 6)], [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]);
      assert.equal(frame[6], (xxhash32(Uint8Array.of(0x60, 0x40)) >>> 8) & 0xff, 'header checksum');
      assert.deepEqual([...frame.subarray(7)], [0, 0, 0, 0]);
      assert.equal(lz4FrameDecode(frame).length, 0);
      assert.equal(lz4pkg().decode(buf(frame)).length, 0);
    });

    test('frames written by lz4.encode are read (block sizes 64 KiB to 4 MiB, content checksum on or off)', async (t) => {
      selectImpl(impl);
      await seeded(t, (rng) => {
        const data = concat([makeBytes(rng.u32(), 200 * KiB, 'text'), rng.bytes(70 * KiB), makeBytes(rng.u32(), 90 * KiB, 'runs')]);
        for (const blockMaxSize of [64 * KiB, 256 * KiB, 1024 * KiB, 4096 * KiB]) {
          for (const streamChecksum of [true, false]) {
            const frame = lz4pkg().encode(buf(data), { blockMaxSize, streamChecksum });
            assert.equal(frame[4] & 0x20, 0x20, 'lz4.encode writes independent blocks by default');
            same(lz4FrameDecode(frame), data, `blockMaxSize ${blockMaxSize}, streamChecksum ${streamChecksum}`);
          }
        }
        // Its defaults: 4 MiB blocks and a content checksum.
        const frame = lz4pkg().encode(buf(data));
        assert.equal(frame[4], 0x64);
        assert.equal(frame[5], 0x70);
        same(lz4FrameDecode(frame), data, 'lz4.encode defaults');
      });
    });

    test('regression: frames that declare their content size are read, and the size is never trusted for an allocation', async (t) => {
      selectImpl(impl);
      await seeded(t, (rng) => {
        // Compressed blocks used to be refused unless a whole block's room remained below
        // the declared size, so any such frame ending in a compressed block failed.
        for (const data of [
          new Uint8Array(0),
          makeBytes(rng.u32(), 36, 'text'),
          concat([makeBytes(rng.u32(), 150 * KiB, 'text'), rng.bytes(10 * KiB), makeBytes(rng.u32(), 5000, 'runs')]),
        ]) {
          const frame = lz4Frame(blocksOf(data), { contentSize: data.length });
          same(lz4pkg().decode(buf(frame)), data, `lz4.decode, ${data.length} bytes declared`);
          same(lz4FrameDecode(frame), data, `${data.length} bytes declared`);
          if (data.length > 0) {
            assertCorrupt(() => lz4FrameDecode(lz4Frame(blocksOf(data), { contentSize: data.length - 1 })), 'BAD_LZ4', '(declared one byte short)');
            assertCorrupt(() => lz4FrameDecode(lz4Frame(blocksOf(data), { contentSize: data.length + 1 })), 'BAD_LZ4', '(declared one byte long)');
          }
        }
        // A few bytes claiming terabytes: refused as BAD_LZ4, not a RangeError from the allocation.
        const small = blocksOf(makeBytes(1, 36, 'text'));
        for (const claimed of [2 ** 32, 2 ** 40, 2 ** 53 - 1]) {
          assertCorrupt(() => lz4FrameDecode(lz4Frame(small, { contentSize: claimed })), 'BAD_LZ4', `(${claimed} bytes declared)`);
        }
      });
    });

    test('regression: checksums are verified and nothing may follow the end mark, as lz4.decode (kafkajs-lz4) insists', () => {
      selectImpl(impl);
      // The batch bytes we accept are stored and served as they are, and kafkajs must be
      // able to decode them: a frame its LZ4 codec refuses has to be refused here first.
      const data = concat([makeBytes(11, BLOCK, 'text'), makeBytes(12, BLOCK, 'text'), makeBytes(13, 3000, 'random')]);
      const blocks = blocksOf(data);
      assert.deepEqual(blocks.map((b) => b.stored), [false, false, true]);
      const accept = (name: string, frame: Uint8Array): void => {
        same(lz4pkg().decode(buf(frame)), data, `lz4.decode reads ${name}`);
        same(lz4FrameDecode(frame), data, `we read ${name}`);
      };
      const refuse = (name: string, frame: Uint8Array): void => {
        assert.throws(() => lz4pkg().decode(buf(frame)), `lz4.decode refuses ${name}`);
        assertCorrupt(() => lz4FrameDecode(frame), 'BAD_LZ4', `(${name})`);
      };
      accept('block checksums', lz4Frame(blocks, { blockChecksums: true }));
      accept('a content checksum', lz4Frame(blocks, { content: data }));
      accept('both checksums', lz4Frame(blocks, { blockChecksums: true, content: data }));
      const badBlock = lz4Frame(blocks, { blockChecksums: true });
      const lastBlockChecksum = badBlock.length - 8;
      badBlock[lastBlockChecksum] ^= 1;
      refuse('a wrong block checksum', badBlock);
      refuse('a wrong content checksum', lz4Frame(blocks, { contentChecksum: (xxhash32(data) ^ 0x100) >>> 0 }));
      refuse('a content checksum of the compressed bytes', lz4Frame(blocks, { contentChecksum: xxhash32(concat(blocks.map((b) => b.data))) }));
      refuse('bytes after the end mark', lz4Frame(blocks, { trailer: Uint8Array.of(1, 2, 3, 4, 5) }));
      refuse('bytes after the content checksum', lz4Frame(blocks, { content: data, trailer: Uint8Array.of(9, 8, 7, 6) }));
      // lz4.decode lets fewer than 4 stray bytes pass; being stricter costs no one anything.
      assertCorrupt(() => lz4FrameDecode(lz4Frame(blocks, { trailer: Uint8Array.of(0) })), 'BAD_LZ4', '(a zero byte after the end mark)');
      assertCorrupt(() => lz4FrameDecode(lz4Frame(blocks, { content: data, trailer: Uint8Array.of(0x04, 0x22) })), 'BAD_LZ4', '(half a magic)');
      // Two frames back to back: lz4.decode reads both, Kafka's Java reader only the first.
      // Decoders that disagree on a batch must never see it.
      const twice = concat([lz4Frame(blocks), lz4Frame(blocks)]);
      same(lz4pkg().decode(buf(twice)), concat([data, data]), 'lz4.decode reads concatenated frames');
      assertCorrupt(() => lz4FrameDecode(twice), 'BAD_LZ4', '(two frames)');
      // lz4.encode's own block checksums cover the wrong bytes; lz4.decode refuses them.
      refuse('lz4.encode with blockChecksum', lz4pkg().encode(buf(data), { blockChecksum: true }));
    });

    test('linked-block frames are refused with BAD_LZ4', () => {
      selectImpl(impl);
      const data = makeBytes(7, 100 * KiB, 'text');
      const linked = lz4pkg().encode(buf(data), { blockIndependence: false });
      assert.equal(linked[4] & 0x20, 0, 'lz4.encode wrote a linked-block frame');
      assertCorrupt(() => lz4FrameDecode(linked), 'BAD_LZ4');
      // The flag alone is enough, even when the blocks happen not to refer to each other.
      assertCorrupt(() => lz4FrameDecode(lz4Frame(blocksOf(data), { flg: 0x40 })), 'BAD_LZ4');
    });

    test('malformed frame headers are refused with BAD_LZ4', () => {
      selectImpl(impl);
      const blocks = blocksOf(makeBytes(3, 1000, 'text'));
      const good = lz4Frame(blocks);
      same(lz4FrameDecode(good), makeBytes(3, 1000, 'text'), 'the well-formed frame');
      const cases: [string, Uint8Array][] = [
        ['bad magic', concat([Uint8Array.of(0x05), good.subarray(1)])],
        ['version 0', lz4Frame(blocks, { flg: 0x20 })],
        ['version 2', lz4Frame(blocks, { flg: 0xa0 })],
        ['a dictionary id', lz4Frame(blocks, { flg: 0x61 })],
        ['block size index 3', lz4Frame(blocks, { bd: 0x30 })],
        ['block size index 0', lz4Frame(blocks, { bd: 0x00 })],
        ['a wrong header checksum', lz4Frame(blocks, { badHeaderChecksum: true })],
        ['a 64 KiB + 1 block in a 64 KiB frame', lz4Frame([{ data: new Uint8Array(BLOCK + 1), stored: true }])],
        ['a block running past the end', good.subarray(0, good.length - 5)],
        ['no end mark', good.subarray(0, good.length - 4)],
        ['nothing', new Uint8Array(0)],
      ];
      for (const [name, frame] of cases) assertCorrupt(() => lz4FrameDecode(frame), 'BAD_LZ4', `(${name})`);
    });

    test('a frame cut at every length is refused with BAD_LZ4', () => {
      selectImpl(impl);
      // Small blocks keep this quick: compressed, compressed, stored, then the end mark.
      const data = concat([makeBytes(5, 2000, 'text'), makeBytes(6, 300, 'random')]);
      const frame = lz4Frame(blocksOf(data, 1000));
      assert.deepEqual(frameBlocks(frame).blocks.map((b) => b.stored), [false, false, true]);
      same(lz4FrameDecode(frame), data, 'the whole frame');
      for (let n = 0; n < frame.length; n++) assertCorrupt(() => lz4FrameDecode(frame.subarray(0, n)), 'BAD_LZ4', `(cut at ${n})`);
      const ours = lz4FrameEncode(makeBytes(7, 3000, 'text'));
      for (let n = 0; n < ours.length; n++) assertCorrupt(() => lz4FrameDecode(ours.subarray(0, n)), 'BAD_LZ4', `(ours cut at ${n})`);
    });

    test('random damage inside a frame decodes or throws BAD_LZ4, nothing else', async (t) => {
      selectImpl(impl);
      await seeded(t, (rng) => {
        const data = concat([makeBytes(rng.u32(), 3000, 'text'), makeBytes(rng.u32(), 3000, 'runs')]);
        const frame = lz4FrameEncode(data);
        for (let i = 0; i < 3000; i++) {
          const bad = frame.slice();
          const flips = 1 + rng.int(3);
          for (let k = 0; k < flips; k++) bad[7 + rng.int(bad.length - 7)] ^= 1 << rng.int(8);
          try {
            lz4FrameDecode(bad);
          } catch (e) {
            expectCorrupt(e, 'BAD_LZ4');
          }
        }
        // A compressed block of random bytes.
        for (let i = 0; i < 2000; i++) {
          const junk = lz4Frame([{ data: rng.bytes(1 + rng.int(200)), stored: false }]);
          try {
            lz4FrameDecode(junk);
          } catch (e) {
            expectCorrupt(e, 'BAD_LZ4');
          }
        }
      });
    });

    test('overlapping matches (offset shorter than the match) copy what they have just written', () => {
      selectImpl(impl);
      const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
      const cases: [string, number[], string][] = [
        // token 1 literal / match 15+0+4 = 19 at offset 1, then the last 5 literals.
        ['offset 1', [0x1f, ...ascii('a'), 0x01, 0x00, 0x00, 0x50, ...ascii('bcdef')], 'a'.repeat(20) + 'bcdef'],
        // 2 literals, match 15+5+4 = 24 at offset 2.
        ['offset 2', [0x2f, ...ascii('ab'), 0x02, 0x00, 0x05, 0x50, ...ascii('vwxyz')], 'ab'.repeat(13) + 'vwxyz'],
        // 3 literals, match 3+4 = 7 at offset 3, another match 4+4 = 8 at offset 5.
        ['offset 3 then 5', [0x33, ...ascii('xyz'), 0x03, 0x00, 0x04, 0x05, 0x00, 0x50, ...ascii('12345')], 'xyzxyzxyzx' + 'zxyzxzxy' + '12345'],
      ];
      for (const [name, block, want] of cases) {
        const data = new TextEncoder().encode(want);
        const out = new Uint8Array(want.length + 100);
        assert.equal(decompressBlockPortable(Uint8Array.from(block), out), want.length, `${name}: portable length`);
        same(out.subarray(0, want.length), data, `${name}: portable`);
        const nat = Buffer.alloc(want.length + 100);
        assert.equal(lz4pkg().decodeBlock(Buffer.from(block), nat), want.length, `${name}: native length`);
        same(nat.subarray(0, want.length), data, `${name}: native`);
        const frame = lz4Frame([{ data: Uint8Array.from(block), stored: false }]);
        same(lz4FrameDecode(frame), data, `${name}: frame`);
        same(lz4pkg().decode(buf(frame)), data, `${name}: lz4.decode`);
      }
      // Long runs compress into overlapping matches; both directions must agree.
      const runs = makeBytes(42, 50_000, 'runs');
      same(lz4FrameDecode(lz4FrameEncode(runs)), runs, 'runs round trip');
      same(lz4pkg().decode(buf(lz4FrameEncode(runs))), runs, 'runs through lz4.decode');
    });
  });
}

describe('lz4 blocks: portable against native', () => {
  const input = fc
    .record({
      seed: fc.integer({ min: 0, max: 0xffffffff }),
      length: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: BLOCK })),
      fill: fc.constantFrom<Fill>('text', 'random', 'runs'),
    })
    .map(({ seed, length, fill }) => makeBytes(seed, length, fill));

  test('the portable compressor is read by the native decompressor', (t) => {
    fc.assert(
      fc.property(input, (data) => {
        const dst = new Uint8Array(compressBound(data.length));
        const n = compressBlockPortable(data, dst);
        assert.ok(n > 0 && n <= dst.length, 'fits in compressBound');
        const out = Buffer.alloc(data.length);
        assert.equal(lz4pkg().decodeBlock(buf(dst.subarray(0, n)), out), data.length);
        same(out, data, 'native decode of portable block');
        const back = new Uint8Array(data.length);
        assert.equal(decompressBlockPortable(dst.subarray(0, n), back), data.length);
        same(back, data, 'portable decode of portable block');
      }),
      { seed: seedFor(t), numRuns: 300 },
    );
  });

  test('the native compressor is read by the portable decompressor', (t) => {
    fc.assert(
      fc.property(input, (data) => {
        const dst = Buffer.alloc(lz4pkg().encodeBound(data.length));
        const n = lz4pkg().encodeBlock(buf(data), dst);
        assert.ok(n > 0, 'native compress');
        const out = new Uint8Array(data.length);
        assert.equal(decompressBlockPortable(dst.subarray(0, n), out), data.length);
        same(out, data, 'portable decode of native block');
      }),
      { seed: seedFor(t), numRuns: 300 },
    );
  });

  test('the portable compressor reports 0 when the output does not fit', () => {
    const data = makeBytes(9, 5000, 'random');
    assert.equal(compressBlockPortable(data, new Uint8Array(100)), 0);
    assert.equal(compressBlockPortable(data, new Uint8Array(4999)), 0);
  });

  test('the portable decompressor refuses bad blocks with a negative result', () => {
    const out = new Uint8Array(100);
    assert.ok(decompressBlockPortable(Uint8Array.of(0x10), out) < 0, 'literal runs past the input');
    assert.ok(decompressBlockPortable(Uint8Array.of(0x1f, 0x61, 0x02, 0x00, 0x00), out) < 0, 'offset beyond the output');
    assert.ok(decompressBlockPortable(Uint8Array.of(0x1f, 0x61, 0x00, 0x00, 0x00), out) < 0, 'offset 0');
    assert.ok(decompressBlockPortable(Uint8Array.of(0x1f, 0x61, 0x01, 0x00, 0xff), out) < 0, 'length runs past the input');
    assert.ok(decompressBlockPortable(Uint8Array.of(0x1f, 0x61, 0x01, 0x00, 0xff, 0x00), new Uint8Array(10)) < 0, 'output too small');
    assert.ok(decompressBlockPortable(Uint8Array.of(0x1f, 0x61, 0x01), out) < 0, 'half an offset');
  });
});

describe('xxhash32', () => {
  test('agrees with xxhashjs on random data, lengths and seeds', async (t) => {
    await seeded(t, (rng) => {
      for (let i = 0; i < 500; i++) {
        const n = i < 100 ? i : rng.int(i < 490 ? 2000 : 200_000);
        const data = rng.bytes(n);
        const seed = i % 2 ? 0 : rng.u32();
        assert.equal(xxhash32(data, 0, n, seed), xxhashjs.h32(buf(data), seed).toNumber(), `length ${n}, seed ${seed}`);
        const s = rng.int(n + 1);
        const e = s + rng.int(n - s + 1);
        assert.equal(xxhash32(data, s, e), xxhashjs.h32(buf(data.subarray(s, e)), 0).toNumber(), `range [${s}, ${e})`);
      }
    });
  });
});

test('lz4FrameDecode refuses a frame that decompresses past its byte cap', () => {
  const big = new Uint8Array(1024 * 1024); // compresses ~250x
  const frame = lz4FrameEncode(big);
  assert.ok(frame.length < 16 * 1024);
  assert.equal(lz4FrameDecode(frame, 0, big.length).length, big.length);
  assert.throws(() => lz4FrameDecode(frame, 0, big.length - 1), (e: Error & { reason?: string }) => e.reason === 'BAD_LZ4');
});

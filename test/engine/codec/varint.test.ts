/**
 * Zig-zag varints: the sizes and bytes kafkajs writes, round trips over the whole range the
 * reader accepts ([-2^52, 2^52 - 1]: zig-zag values up to 2^53 - 1), and every way a hostile varint can be malformed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Reader, varintSize, writeVarint } from '../../../engine/codec/varint.ts';
import { assertCorrupt, kafka, seedFor } from './helpers.ts';

const EDGES = [
  0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, 2 ** 20, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 32, 2 ** 35,
  -(2 ** 35), 2 ** 49, -(2 ** 52), 2 ** 52 - 1, 1_700_000_000_000,
];

function encode(n: number): Uint8Array {
  const b = new Uint8Array(10);
  const end = writeVarint(b, 0, n);
  assert.equal(end, varintSize(n), `varintSize(${n})`);
  return b.subarray(0, end);
}

function decode(b: Uint8Array): number {
  const r = new Reader(b, 0, b.length);
  const n = r.varint();
  assert.equal(r.pos, b.length, 'the reader stops right after the varint');
  return n;
}

function kafkajsVarlong(n: number): Uint8Array {
  const { Encoder, Long } = kafka();
  return new Uint8Array(new Encoder().writeVarLong(Long.fromNumber(n)).buffer);
}

describe('varint', () => {
  test('edge values round-trip and match kafkajs byte for byte', () => {
    const { Encoder } = kafka();
    for (const n of EDGES) {
      const b = encode(n);
      assert.equal(decode(b), n, `round trip of ${n}`);
      assert.deepEqual(b, kafkajsVarlong(n), `varlong bytes of ${n}`);
      if (n >= -(2 ** 31) && n < 2 ** 31) assert.deepEqual(b, new Uint8Array(new Encoder().writeVarInt(n).buffer), `varint bytes of ${n}`);
    }
    assert.deepEqual(encode(-1), Uint8Array.of(0x01), 'a null length is the byte 0x01');
    assert.deepEqual(encode(0), Uint8Array.of(0x00));
  });

  test('random values round-trip and match kafkajs (property)', (t) => {
    const { Encoder } = kafka();
    const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    const int53 = fc.integer({ min: -(2 ** 52), max: 2 ** 52 - 1 });
    fc.assert(
      fc.property(int32, int53, (a, b) => {
        assert.deepEqual(encode(a), new Uint8Array(new Encoder().writeVarInt(a).buffer));
        assert.equal(decode(encode(a)), a);
        assert.deepEqual(encode(b), kafkajsVarlong(b));
        assert.equal(decode(encode(b)), b);
      }),
      { seed: seedFor(t), numRuns: 2000 },
    );
  });

  test('the reader refuses malformed varints with BAD_VARINT', () => {
    const cont = (n: number): number[] => new Array<number>(n).fill(0x80);
    // 11 bytes: ten continuation bytes, then a terminator.
    assertCorrupt(() => decode(Uint8Array.from([...cont(10), 0x00])), 'BAD_VARINT', '(11-byte varint)');
    assertCorrupt(() => decode(Uint8Array.from([...cont(10), 0x01])), 'BAD_VARINT', '(11-byte varint)');
    // Ten continuation bytes and nothing after them.
    assertCorrupt(() => decode(Uint8Array.from(cont(10))), 'BAD_VARINT', '(unterminated)');
    // Truncated at every length.
    const long = encode(-(2 ** 52));
    for (let n = 0; n < long.length; n++) assertCorrupt(() => decode(long.subarray(0, n)), 'BAD_VARINT', `(cut at ${n})`);
    // The end of the reader's range counts, not the end of the buffer.
    const r = new Reader(Uint8Array.of(0x80, 0x01), 0, 1);
    assertCorrupt(() => r.varint(), 'BAD_VARINT', '(runs past the range)');
    // Ten bytes that decode beyond 2^53.
    assertCorrupt(() => decode(Uint8Array.from([...new Array<number>(9).fill(0xff), 0x01])), 'BAD_VARINT', '(2^64 - 1)');
    // 2^52 zig-zags to 2^53, one past the last exact integer.
    assertCorrupt(() => decode(encode(2 ** 52)), 'BAD_VARINT', '(2^52)');
    // Non-minimal encodings are tolerated, as in Kafka's own reader.
    assert.equal(decode(Uint8Array.of(0x80, 0x80, 0x00)), 0);
  });

  test('bytes() and int8() refuse to run past the range with BAD_LENGTH', () => {
    const data = Uint8Array.of(1, 2, 3, 4, 5);
    const r = new Reader(data, 1, 4);
    assert.deepEqual(r.bytes(2), Uint8Array.of(2, 3));
    assertCorrupt(() => r.bytes(2), 'BAD_LENGTH');
    assertCorrupt(() => r.bytes(-1), 'BAD_LENGTH');
    assert.equal(r.int8(), 4);
    assertCorrupt(() => r.int8(), 'BAD_LENGTH');
    assert.deepEqual(r.bytes(0), new Uint8Array(0));
  });
});

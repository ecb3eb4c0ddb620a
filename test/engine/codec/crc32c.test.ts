/**
 * CRC-32C: known vectors (RFC 3720 appendix B.4 and the usual check value) for the
 * portable and the native implementation, and the two agreeing with each other and with
 * kafkajs's CRC-32C on random data, odd ranges and unaligned views.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32c, crc32cPortable } from '../../../engine/codec/index.ts';
import { IMPLS, buf, kafka, seeded, selectImpl } from './helpers.ts';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const range = (n: number, f: (i: number) => number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => f(i));

const VECTORS: [string, Uint8Array, number][] = [
  ['empty', new Uint8Array(0), 0x00000000],
  ['"a"', ascii('a'), 0xc1d04330],
  ['"123456789" (the check value)', ascii('123456789'), 0xe3069283],
  ['32 zero bytes', new Uint8Array(32), 0x8a9136aa],
  ['32 bytes of 0xff', new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ['32 ascending bytes 00..1f', range(32, (i) => i), 0x46dd794e],
  ['32 descending bytes 1f..00', range(32, (i) => 31 - i), 0x113fdb5c],
  [
    'an iSCSI read PDU (RFC 3720 B.4)',
    Uint8Array.from([
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]),
    0xd9963a56,
  ],
];

for (const impl of IMPLS) {
  describe(`crc32c (${impl})`, () => {
    test('known vectors', () => {
      selectImpl(impl);
      for (const [name, data, want] of VECTORS) {
        assert.equal(crc32c(data), want, name);
        // The same bytes in the middle of a larger buffer, through start/end and through a view.
        const padded = new Uint8Array(data.length + 13).fill(0xa5);
        padded.set(data, 5);
        assert.equal(crc32c(padded, 5, 5 + data.length), want, `${name} as a range`);
        assert.equal(crc32c(padded.subarray(5, 5 + data.length)), want, `${name} as an unaligned view`);
      }
    });
  });
}

describe('crc32c agreement', () => {
  test('portable, native and kafkajs agree on random data and odd ranges', async (t) => {
    selectImpl('native');
    const { crc32C } = kafka();
    await seeded(t, (rng) => {
      for (let i = 0; i < 400; i++) {
        const n = rng.pick([0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 4096, 4099]) + rng.int(i < 380 ? 64 : 200_000);
        const data = rng.bytes(n);
        const start = rng.int(Math.min(n, 17) + 1);
        const end = n - rng.int(Math.min(n - start, 17) + 1);
        const want = crc32cPortable(data, start, end);
        assert.equal(crc32c(data, start, end), want, `native, length ${n}, [${start}, ${end})`);
        assert.equal(crc32C(buf(data.subarray(start, end))), want, `kafkajs, length ${n}, [${start}, ${end})`);
        const view = data.subarray(start, end);
        assert.equal(crc32cPortable(view), want, 'portable over a view');
        assert.equal(crc32c(view), want, 'native over a view');
      }
    });
  });
});

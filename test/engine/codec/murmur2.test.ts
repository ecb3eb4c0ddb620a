/**
 * murmur2 and partitionForKey: keyed records must land on the partition a Kafka client
 * would pick (protocol §1), so both are compared with Kafka's known values and with
 * kafkajs's default (Java-compatible) partitioner on random keys.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { murmur2, partitionForKey } from '../../../engine/codec/index.ts';
import { buf, kafka, seedFor } from './helpers.ts';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('murmur2', () => {
  test("Kafka's Utils.murmur2 values", () => {
    // Values of org.apache.kafka.common.utils.Utils.murmur2 over the UTF-8 bytes.
    const known: [string, number][] = [
      ['1', -1993445489],
      ['12', 126087238],
      ['123', -267702483],
      ['1234', -1614185708],
      ['12345', -1188365604],
    ];
    for (const [key, want] of known) assert.equal(murmur2(utf8(key)), want, JSON.stringify(key));
  });

  test('equals kafkajs on random keys of every tail length (property)', (t) => {
    const { murmur2: theirs } = kafka();
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength: 300 })), (key) => {
        assert.equal(murmur2(key), theirs(buf(key)));
      }),
      { seed: seedFor(t), numRuns: 3000 },
    );
    assert.equal(murmur2(new Uint8Array(0)), theirs(Buffer.alloc(0)), 'the empty key');
  });

  test('reads only its view of a larger buffer', () => {
    const big = utf8('xx12345yy');
    assert.equal(murmur2(big.subarray(2, 7)), murmur2(utf8('12345')));
  });
});

describe('partitionForKey', () => {
  test("equals kafkajs's default partitioner on random keys and partition counts (property)", (t) => {
    const { defaultPartitioner } = kafka();
    const partitioner = defaultPartitioner();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 1000 }), (key, partitions) => {
        const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0 }));
        const want = partitioner({ topic: 't', partitionMetadata, message: { key: buf(key) } });
        const got = partitionForKey(key, partitions);
        assert.equal(got, want);
        assert.ok(got >= 0 && got < partitions);
      }),
      { seed: seedFor(t), numRuns: 3000 },
    );
  });

  test('a negative hash is made positive with & 0x7fffffff, not Math.abs', () => {
    // murmur2("1") is negative: -1993445489 & 0x7fffffff = 154038159.
    assert.equal(partitionForKey(utf8('1'), 1_000_000_000), 154038159);
    assert.equal(partitionForKey(utf8('1'), 7), 154038159 % 7);
  });
});

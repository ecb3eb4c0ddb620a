/**
 * Kafka's default partitioner: murmur2 (seed 0x9747b28c) of the key bytes, made positive
 * with `& 0x7fffffff`, modulo the partition count; keyed records land where a Kafka client
 * would put them.
 */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const len = data.length;
  let h = 0x9747b28c ^ len;
  const len4 = len >>> 2;
  for (let i = 0; i < len4; i++) {
    const o = i * 4;
    let k = data[o] | (data[o + 1] << 8) | (data[o + 2] << 16) | (data[o + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = len & ~3;
  const rem = len & 3;
  if (rem === 3) h ^= data[tail + 2] << 16;
  if (rem >= 2) h ^= data[tail + 1] << 8;
  if (rem >= 1) {
    h ^= data[tail];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

export function partitionForKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

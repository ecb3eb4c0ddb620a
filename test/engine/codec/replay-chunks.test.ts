/** The replay chunk framing: round trips through any split of the byte stream, and refusals. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Chunk, ChunkFramingError, ChunkReader, type ChunkHeader, chunkHeaderBytesMax, encodeChunkHeader } from '../../../engine/codec/replay-chunks.ts';
import { int, rng } from '../../helpers/random.ts';

function wire(chunks: { header: ChunkHeader; body?: Uint8Array }[]): Uint8Array {
  const parts = chunks.flatMap((c) => [encodeChunkHeader(c.header), c.body ?? new Uint8Array(0)]);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

test('chunks come back whole whatever the pieces the stream arrives in', () => {
  const random = rng(0x5eed);
  const sent = [
    { header: { ok: true, bytes: 5, first: 0 } as ChunkHeader, body: new Uint8Array([1, 2, 3, 4, 5]) },
    { header: { ok: true, bytes: 300, first: 7 } as ChunkHeader, body: new Uint8Array(300).map((_, i) => i & 0xff) },
    { header: { ok: false, code: 'UNKNOWN_TOPIC', message: 'gone' } as ChunkHeader },
    { header: { ok: true, end: true, bytes: 0, next: 9, hw: 12 } as ChunkHeader },
  ];
  const bytes = wire(sent);
  for (let round = 0; round < 200; round++) {
    const reader = new ChunkReader();
    const got: Chunk[] = [];
    for (let pos = 0; pos < bytes.length; ) {
      const n = int(random, 1, 40);
      reader.push(bytes.subarray(pos, pos + n));
      pos += n;
      for (let c = reader.next(); c !== null; c = reader.next()) got.push(c);
    }
    assert.equal(got.length, sent.length);
    got.forEach((c, i) => {
      assert.deepEqual(c.header, sent[i].header);
      assert.deepEqual([...c.body], [...(sent[i].body ?? [])]);
    });
    assert.equal(reader.bufferedBytes, 0);
  }
});

test('a header too long, not JSON, or not a chunk header is a framing error', () => {
  const tooLong = new Uint8Array(8);
  new DataView(tooLong.buffer).setUint32(0, chunkHeaderBytesMax + 1);
  const notJson = new Uint8Array([0, 0, 0, 3, 0x7b, 0x7b, 0x7b]);
  const notHeader = wire([{ header: { nope: 1 } as unknown as ChunkHeader }]);
  for (const bad of [tooLong, notJson, notHeader]) {
    const reader = new ChunkReader();
    reader.push(bad);
    assert.throws(() => reader.next(), ChunkFramingError);
  }
});

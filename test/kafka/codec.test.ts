/**
 * The schema-driven codec (src/kafka/protocol/): every message at every version it speaks
 * round-trips, byte layouts match the protocol's published encodings (classic and compact
 * strings and arrays, nullable fields, tagged fields, header v2), unknown tags are skipped,
 * and truncated or lying input is a KafkaDecodeError, never a crash or a huge allocation.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { API_TABLE, readHeaderRest, readHeaderStart } from '../../src/kafka/protocol/header.ts';
import { MESSAGES } from '../../src/kafka/protocol/messages.ts';
import { type FieldDef, compile, inRange, message, field, array } from '../../src/kafka/protocol/schema.ts';
import { KafkaDecodeError, Reader, Writer } from '../../src/kafka/protocol/wire.ts';
import { rng } from '../helpers/random.ts';

const r = rng(12345);
const int = (n: number) => Math.floor(r() * n);

function value(f: FieldDef, version: number): unknown {
  if (f.array) return Array.from({ length: int(3) }, () => value({ ...f, array: false }, version));
  if (typeof f.type !== 'string') {
    const o: Record<string, unknown> = {};
    for (const g of f.type) if (inRange(g.versions, version)) o[g.name] = value(g, version);
    return o;
  }
  switch (f.type) {
    case 'int8':
      return int(256) - 128;
    case 'int16':
      return int(65536) - 32768;
    case 'int32':
      return int(2 ** 32) | 0;
    case 'int64':
      return int(2 ** 53) - 2 ** 52;
    case 'bool':
      return r() < 0.5;
    case 'uuid':
      return Buffer.from(Array.from({ length: 16 }, () => int(256)));
    case 'string':
      return inRange(f.nullable, version) && r() < 0.2 ? null : `s${int(1000)}é`;
    default:
      return inRange(f.nullable, version) && r() < 0.2 ? null : Buffer.from(Array.from({ length: int(50) }, () => int(256)));
  }
}

/** Tagged fields are written only when not default: compare what the version carries. */
function visible(fields: readonly FieldDef[], version: number, o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (!inRange(f.versions, version)) continue;
    const v = o[f.name];
    if (typeof f.type !== 'string' && v !== null && v !== undefined) {
      out[f.name] = f.array ? (v as Record<string, unknown>[]).map((x) => visible(f.type as FieldDef[], version, x)) : visible(f.type, version, v as Record<string, unknown>);
    } else out[f.name] = Buffer.isBuffer(v) ? v.toString('hex') : v;
  }
  return out;
}

describe('Kafka codec', () => {
  test('every request and response round-trips at every version sluice speaks', () => {
    let checked = 0;
    for (const [apiKey, { request, response }] of MESSAGES) {
      const entry = API_TABLE.get(apiKey)!;
      for (let v = entry.minVersion; v <= entry.maxVersion; v++) {
        for (const def of [request, response]) {
          for (let round = 0; round < 5; round++) {
            const o: Record<string, unknown> = {};
            for (const f of def.fields) if (inRange(f.versions, v)) o[f.name] = value(f, v);
            const codec = compile(def, v);
            const w = new Writer();
            codec.write(w, o);
            const bytes = Buffer.concat(w.finish().map((p) => p as Buffer));
            const rd = new Reader(bytes);
            const back = codec.read(rd);
            assert.equal(rd.remaining, 0, `${def.name} v${v}: bytes left over`);
            assert.deepEqual(visible(def.fields, v, back), visible(def.fields, v, o), `${def.name} v${v}`);
            checked++;
          }
        }
      }
    }
    assert.ok(checked > 500);
  });

  test('an ApiVersions v3 request as librdkafka sends it: header v2 and compact strings', () => {
    // size | apiKey 18 | version 3 | correlation 1 | clientId "rdkafka" (int16 length: the
    // header's clientId stays classic) | no header tags | "librdkafka" | "2.0.2" | no tags
    const body = Buffer.from([
      0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x07, ...Buffer.from('rdkafka'), 0x00,
      0x0b, ...Buffer.from('librdkafka'), 0x06, ...Buffer.from('2.0.2'), 0x00,
    ]);
    const rd = new Reader(body);
    const h = readHeaderStart(rd);
    assert.deepEqual(h, { apiKey: 18, apiVersion: 3, correlationId: 1 });
    assert.equal(readHeaderRest(rd, true), 'rdkafka');
    const req = API_TABLE.get(18)!.requests.get(3)!.read(rd);
    assert.deepEqual(req, { clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.0.2' });
    assert.equal(rd.remaining, 0);
  });

  test('classic and compact encodings of the same value', () => {
    const def = message('T', 0, '0-1', '1+', [field('s', 'string', '0+', { nullable: '0+' }), array('xs', 'int32', '0+', { nullable: '0+' }), field('b', 'bytes', '0+')]);
    const bytesOf = (v: number, o: Record<string, unknown>) => {
      const w = new Writer();
      compile(def, v).write(w, o);
      return w.bytesOnly().toString('hex');
    };
    assert.equal(bytesOf(0, { s: 'ab', xs: [1], b: Buffer.from([9]) }), '00026162' + '0000000100000001' + '0000000109');
    assert.equal(bytesOf(1, { s: 'ab', xs: [1], b: Buffer.from([9]) }), '03616202000000010209' + '00');
    assert.equal(bytesOf(0, { s: null, xs: null, b: Buffer.alloc(0) }), 'ffff' + 'ffffffff' + '00000000');
    assert.equal(bytesOf(1, { s: null, xs: null, b: Buffer.alloc(0) }), '00' + '00' + '01' + '00');
  });

  test('tagged fields: known ones are read, unknown ones skipped, defaults not written', () => {
    const def = message('T', 0, '0', '0+', [field('a', 'int32', '0+'), field('t', 'int32', '0+', { tag: 3, tagged: '0+', default: -1 })]);
    const codec = compile(def, 0);
    const w = new Writer();
    codec.write(w, { a: 7, t: -1 });
    assert.equal(w.bytesOnly().toString('hex'), '0000000700', 'a default tagged field is not written');
    const w2 = new Writer();
    codec.write(w2, { a: 7, t: 5 });
    assert.equal(w2.bytesOnly().toString('hex'), '0000000701030400000005');
    // An unknown tag 9 before nothing else, then the known tag: both fine, in order.
    const withUnknown = Buffer.from('00000007' + '02' + '0304' + '00000005' + '0902' + 'abcd', 'hex');
    assert.deepEqual(codec.read(new Reader(withUnknown)), { a: 7, t: 5 });
    // Tags out of order are refused.
    const disorder = Buffer.from('00000007' + '02' + '0902abcd' + '030400000005', 'hex');
    assert.throws(() => codec.read(new Reader(disorder)), KafkaDecodeError);
  });

  test('truncated input and lying counts are KafkaDecodeErrors, with no allocation for the lie', () => {
    const metadata = API_TABLE.get(3)!.requests.get(4)!;
    const w = new Writer();
    metadata.write(w, { topics: [{ name: 'abc' }], allowAutoTopicCreation: true });
    const good = w.bytesOnly();
    for (let cut = 0; cut < good.length; cut++) assert.throws(() => metadata.read(new Reader(good.subarray(0, cut))), KafkaDecodeError, `cut at ${cut}`);
    const lie = Buffer.from(good);
    lie.writeInt32BE(2_000_000_000, 0);
    assert.throws(() => metadata.read(new Reader(lie)), /cannot fit/);
    // A compact string longer than what is left.
    const rd = new Reader(Buffer.from([0x7f, 0x61]));
    assert.throws(() => rd.compactString(), KafkaDecodeError);
    // An unsigned varint of more than five bytes.
    assert.throws(() => new Reader(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])).uvarint(), KafkaDecodeError);
  });

  test('records of 4 KiB and more are written as their own part (no copy), smaller ones inline', () => {
    const fetch = API_TABLE.get(1)!.responses.get(11)!;
    const big = Buffer.alloc(8192, 1);
    const small = Buffer.alloc(100, 2);
    const body = (records: Buffer) => ({ throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: [{ topic: 't', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 1, lastStableOffset: 1, logStartOffset: 0, abortedTransactions: null, preferredReadReplica: -1, records }] }] });
    const w = new Writer();
    fetch.write(w, body(big));
    const parts = w.finish();
    assert.ok(parts.includes(big), 'the records buffer itself is a part');
    const w2 = new Writer();
    fetch.write(w2, body(small));
    assert.equal(w2.finish().length, 1);
    // A file range is a part of its own too, counted in the length.
    const w3 = new Writer();
    fetch.write(w3, { ...body(small), responses: [{ topic: 't', partitions: [{ ...body(small).responses[0].partitions[0], records: { kind: 'file', fd: 3, position: 10, length: 5000 } }] }] });
    const len = w3.length;
    const p3 = w3.finish();
    assert.equal(p3.length, 2);
    assert.equal(p3.reduce((n, p) => n + p.length, 0), len);
  });
});

/**
 * Question: what does the schema-driven Kafka codec (src/kafka/protocol/schema.ts) cost next to
 * codecs written by hand for one API and one version, on the paths that run per request?
 *
 *   produce-request-v7    decode a Produce request: one topic, one partition, its records
 *                         (a view of the request, never copied or decoded here)
 *   fetch-response-v11    encode a Fetch answer: one topic, one partition, records as a file
 *                         range (the sendfile part)
 *   metadata-response-v4  encode Metadata for 100 topics of 3 partitions (the big answer)
 * Both sides produce the same bytes (checked before timing). Reported: ns per operation and
 * the ratio. The cost that matters is next to what a request does anyway: a 1 MB produce
 * batch's CRC-32C (~100 us native) and record walk, an fsync (~ms), a sendfile of a MiB.
 *
 * Usage: npm run bench:kafka-codec. Bounded: a few seconds.
 */
import { API_TABLE } from '../src/kafka/protocol/header.ts';
import { type FileRange, Reader, Writer } from '../src/kafka/protocol/wire.ts';
import { machine } from './lib/machine.ts';
import { formatTable, num } from './lib/table.ts';

const produceV7 = API_TABLE.get(0)!.requests.get(7)!;
const fetchV11 = API_TABLE.get(1)!.responses.get(11)!;
const metadataV4 = API_TABLE.get(3)!.responses.get(4)!;

// --- inputs ---------------------------------------------------------------------------------
const records = Buffer.alloc(1_000_000, 7);
const produceBody = { transactionalId: null, acks: -1, timeoutMs: 30000, topicData: [{ name: 'orders', partitionData: [{ index: 0, records }] }] };
const wp = new Writer();
produceV7.write(wp, produceBody);
const produceBytes = Buffer.concat(wp.finish() as Buffer[]);

const range: FileRange = { kind: 'file', fd: 9, position: 123456, length: 1 << 20 };
const fetchBody = {
  throttleTimeMs: 0,
  errorCode: 0,
  sessionId: 0,
  responses: [{ topic: 'orders', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 123456789, lastStableOffset: 123456789, logStartOffset: 0, abortedTransactions: null, preferredReadReplica: -1, records: range }] }],
};

const metadataBody = {
  throttleTimeMs: 0,
  brokers: [{ nodeId: 0, host: '127.0.0.1', port: 9092, rack: null }],
  clusterId: 'sluice',
  controllerId: 0,
  topics: Array.from({ length: 100 }, (_, t) => ({
    errorCode: 0,
    name: `topic-${t}`,
    isInternal: false,
    partitions: Array.from({ length: 3 }, (_, p) => ({ errorCode: 0, partitionIndex: p, leaderId: 0, leaderEpoch: 0, replicaNodes: [0], isrNodes: [0], offlineReplicas: [] })),
  })),
};

// --- hand-written equivalents (this benchmark only) -------------------------------------------
function handDecodeProduceV7(buf: Buffer) {
  let p = 0;
  const tl = buf.readInt16BE(p);
  p += 2;
  const transactionalId = tl < 0 ? null : buf.toString('utf8', p, p + tl);
  p += Math.max(0, tl);
  const acks = buf.readInt16BE(p);
  const timeoutMs = buf.readInt32BE(p + 2);
  p += 6;
  const nt = buf.readInt32BE(p);
  p += 4;
  const topicData = [];
  for (let i = 0; i < nt; i++) {
    const nl = buf.readInt16BE(p);
    p += 2;
    const name = buf.toString('utf8', p, p + nl);
    p += nl;
    const np = buf.readInt32BE(p);
    p += 4;
    const partitionData = [];
    for (let j = 0; j < np; j++) {
      const index = buf.readInt32BE(p);
      const rl = buf.readInt32BE(p + 4);
      p += 8;
      const recs = rl < 0 ? null : buf.subarray(p, p + rl);
      p += Math.max(0, rl);
      partitionData.push({ index, records: recs });
    }
    topicData.push({ name, partitionData });
  }
  return { transactionalId, acks, timeoutMs, topicData };
}

function handEncodeFetchV11(body: typeof fetchBody): (Buffer | FileRange)[] {
  const t = body.responses[0];
  const p = t.partitions[0];
  const out = Buffer.allocUnsafe(4 + 2 + 4 + 4 + 2 + Buffer.byteLength(t.topic) + 4 + 4 + 2 + 8 + 8 + 8 + 4 + 4 + 4);
  let o = 0;
  o = out.writeInt32BE(body.throttleTimeMs, o);
  o = out.writeInt16BE(body.errorCode, o);
  o = out.writeInt32BE(body.sessionId, o);
  o = out.writeInt32BE(1, o);
  o = out.writeInt16BE(Buffer.byteLength(t.topic), o);
  o += out.write(t.topic, o);
  o = out.writeInt32BE(1, o);
  o = out.writeInt32BE(p.partitionIndex, o);
  o = out.writeInt16BE(p.errorCode, o);
  o = writeI64(out, p.highWatermark, o);
  o = writeI64(out, p.lastStableOffset, o);
  o = writeI64(out, p.logStartOffset, o);
  o = out.writeInt32BE(-1, o);
  o = out.writeInt32BE(p.preferredReadReplica, o);
  o = out.writeInt32BE(p.records.length, o);
  return [out.subarray(0, o), p.records];
}

function writeI64(b: Buffer, v: number, o: number): number {
  const hi = Math.floor(v / 4294967296);
  b.writeInt32BE(hi, o);
  b.writeUInt32BE(v - hi * 4294967296, o + 4);
  return o + 8;
}

function handEncodeMetadataV4(body: typeof metadataBody): Buffer {
  const w = Buffer.allocUnsafe(64 * 1024);
  let o = 0;
  const str = (s: string | null) => {
    if (s === null) return (o = w.writeInt16BE(-1, o));
    o = w.writeInt16BE(Buffer.byteLength(s), o);
    o += w.write(s, o);
  };
  o = w.writeInt32BE(body.throttleTimeMs, o);
  o = w.writeInt32BE(body.brokers.length, o);
  for (const b of body.brokers) {
    o = w.writeInt32BE(b.nodeId, o);
    str(b.host);
    o = w.writeInt32BE(b.port, o);
    str(b.rack);
  }
  str(body.clusterId);
  o = w.writeInt32BE(body.controllerId, o);
  o = w.writeInt32BE(body.topics.length, o);
  for (const t of body.topics) {
    o = w.writeInt16BE(t.errorCode, o);
    str(t.name);
    o = w.writeInt8(t.isInternal ? 1 : 0, o);
    o = w.writeInt32BE(t.partitions.length, o);
    for (const p of t.partitions) {
      o = w.writeInt16BE(p.errorCode, o);
      o = w.writeInt32BE(p.partitionIndex, o);
      o = w.writeInt32BE(p.leaderId, o);
      o = w.writeInt32BE(p.replicaNodes.length, o);
      for (const r of p.replicaNodes) o = w.writeInt32BE(r, o);
      o = w.writeInt32BE(p.isrNodes.length, o);
      for (const r of p.isrNodes) o = w.writeInt32BE(r, o);
    }
  }
  return w.subarray(0, o);
}

// --- both sides agree ---------------------------------------------------------------------------
function same(a: unknown, b: unknown, what: string): void {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${what}: the two codecs disagree`);
}
const schemaProduce = produceV7.read(new Reader(produceBytes)) as typeof produceBody;
same({ ...schemaProduce, topicData: schemaProduce.topicData.map((t) => ({ ...t, partitionData: t.partitionData.map((p) => ({ index: p.index, n: p.records.length })) })) }, { ...handDecodeProduceV7(produceBytes), topicData: handDecodeProduceV7(produceBytes).topicData.map((t) => ({ ...t, partitionData: t.partitionData.map((p) => ({ index: p.index, n: p.records!.length })) })) }, 'produce');
const wf = new Writer();
fetchV11.write(wf, fetchBody);
same((wf.finish()[0] as Buffer).toString('hex'), (handEncodeFetchV11(fetchBody)[0] as Buffer).toString('hex'), 'fetch');
const wm = new Writer();
metadataV4.write(wm, metadataBody);
same(wm.bytesOnly().toString('hex'), handEncodeMetadataV4(metadataBody).toString('hex'), 'metadata');

// --- timing -------------------------------------------------------------------------------------
function time(fn: () => unknown, ms = 400): number {
  for (let i = 0; i < 2000; i++) fn(); // warm-up: JIT
  let n = 0;
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(ms * 1e6);
  let now = t0;
  while (now < end) {
    for (let i = 0; i < 200; i++) fn();
    n += 200;
    now = process.hrtime.bigint();
  }
  return Number(now - t0) / n;
}

const cases: [string, () => unknown, () => unknown][] = [
  ['produce-request-v7 (decode)', () => produceV7.read(new Reader(produceBytes)), () => handDecodeProduceV7(produceBytes)],
  [
    'fetch-response-v11 (encode)',
    () => {
      const w = new Writer();
      fetchV11.write(w, fetchBody);
      return w.finish();
    },
    () => handEncodeFetchV11(fetchBody),
  ],
  [
    'metadata-response-v4, 100 topics (encode)',
    () => {
      const w = new Writer();
      metadataV4.write(w, metadataBody);
      return w.finish();
    },
    () => handEncodeMetadataV4(metadataBody),
  ],
];
const rows: string[][] = [];
for (const [name, schema, hand] of cases) {
  const s: number[] = [];
  const h: number[] = [];
  for (let round = 0; round < 5; round++) {
    s.push(time(schema));
    h.push(time(hand));
  }
  const ms = s.sort((a, b) => a - b)[2];
  const mh = h.sort((a, b) => a - b)[2];
  rows.push([name, num(ms), num(mh), (ms / mh).toFixed(2)]);
}
process.stdout.write(`Kafka codec: schema-driven vs hand-written, ns per operation (median of 5 rounds of 400 ms)\nmachine: ${machine()}\n\n${formatTable(['case', 'schema ns/op', 'hand ns/op', 'schema / hand'], rows)}\n`);

/**
 * Hostile input on the Kafka port, bounded and reproducible (`SEED=<n> npm test -- kafka/hostile`):
 * the request size limit (--max-frame-bytes), sizes below a header, unknown API keys,
 * unsupported versions (ApiVersions answered with UNSUPPORTED_VERSION, the rest closed),
 * malformed bodies, the per-request and per-group limits, and a seeded fuzz of at least
 * 20,000 random and mutated requests over several connections while an honest producer
 * keeps producing: the server stays up, nothing lands outside the data directory, every
 * partition reads back dense, and every acked batch of the honest producer is stored byte
 * for byte at its acked offset.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeRecordBatch, readBatchHeader } from '../../engine/codec/index.ts';
import * as limits from '../../src/kafka/limits.ts';
import { API_TABLE } from '../../src/kafka/protocol/header.ts';
import { MESSAGES } from '../../src/kafka/protocol/messages.ts';
import { type FieldDef, inRange } from '../../src/kafka/protocol/schema.ts';
import { type ServerProcess, startServer, tempDir } from '../helpers/server.ts';
import { type Rng, assertAlive, assertNothingEscaped, readBack, seeded } from '../hostile/helpers.ts';
import { type Body, RawKafka, encodeRequest } from './helpers.ts';

const FRAME_BYTES = 256 * 1024;

function sizeOnly(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

describe('Kafka port limits', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ args: ['--max-frame-bytes', String(FRAME_BYTES)] });
  });
  after(async () => {
    await srv?.stop();
  });

  const closes = async (bytes: Buffer, what: string) => {
    const raw = await RawKafka.connect(srv.kafkaPort);
    raw.write(bytes);
    assert.equal(await raw.frame(), null, `${what}: no answer`);
    assert.ok(raw.closed, `${what}: closed`);
  };

  test('a request over --max-frame-bytes closes the connection before its body is read', async () => {
    await closes(sizeOnly(FRAME_BYTES + 1), 'one byte over');
    // Exactly at the limit is read (and, being garbage, refused as malformed).
    const at = Buffer.alloc(4 + FRAME_BYTES);
    at.writeInt32BE(FRAME_BYTES, 0);
    at.writeInt16BE(18, 4);
    at.writeInt16BE(0, 6);
    at.writeInt32BE(7, 8);
    at.writeInt16BE(-1, 12);
    const raw = await RawKafka.connect(srv.kafkaPort);
    raw.write(at);
    const f = await raw.frame();
    assert.ok(f !== null && f.readInt32BE(0) === 7, 'an ApiVersions v0 of exactly the limit is answered');
    raw.close();
  });

  test('sizes below a header, unknown APIs and unsupported versions close the connection', async () => {
    await closes(sizeOnly(-5), 'negative size');
    await closes(Buffer.concat([sizeOnly(4), Buffer.alloc(4)]), 'size 4');
    await closes(encodeRequest(18, 0, 1, {}).fill(0x7f, 4, 6), 'API key 32639');
    const describeConfigs = Buffer.from(encodeRequest(18, 0, 1, {}));
    describeConfigs.writeInt16BE(32, 4);
    await closes(describeConfigs, 'DescribeConfigs, not offered');
    const fetch13 = Buffer.from(encodeRequest(3, 0, 1, { topics: [] }));
    fetch13.writeInt16BE(1, 4);
    fetch13.writeInt16BE(13, 6);
    await closes(fetch13, 'Fetch v13');
    await closes(encodeRequest(17, 1, 1, { mechanism: 'PLAIN' }), 'SaslHandshake with auth off');
    const truncated = encodeRequest(3, 4, 1, { topics: [{ name: 'abc' }], allowAutoTopicCreation: false });
    const cut = Buffer.concat([sizeOnly(truncated.length - 4 - 3), truncated.subarray(4, truncated.length - 3)]);
    await closes(cut, 'a body cut short');
    const bomb = Buffer.from(encodeRequest(3, 4, 1, { topics: [], allowAutoTopicCreation: false }));
    bomb.writeInt32BE(0x7fffffff, bomb.length - 5); // an array count no frame can hold
    await closes(bomb, 'an array count past the frame');
  });

  test('ApiVersions of a version it does not know is answered in v0 with UNSUPPORTED_VERSION and the table', async () => {
    const raw = await RawKafka.connect(srv.kafkaPort);
    const req = Buffer.from(encodeRequest(18, 0, 77, {}));
    req.writeInt16BE(9, 6);
    raw.write(req);
    const f = (await raw.frame())!;
    assert.equal(f.readInt32BE(0), 77);
    assert.equal(f.readInt16BE(4), 35);
    const v3 = await raw.request(18, 3, { clientSoftwareName: 'x', clientSoftwareVersion: '1' });
    const table = new Map(v3.apiKeys.map((k: Body) => [k.apiKey, [k.minVersion, k.maxVersion]]));
    assert.deepEqual(table.get(1), [4, 12]);
    assert.deepEqual(table.get(0), [3, 9]);
    assert.equal(table.has(17), false, 'no SASL with auth off');
    raw.close();
  });

  test(`more than ${limits.inFlightRequestsMax} pipelined requests are all answered, in order`, async () => {
    const raw = await RawKafka.connect(srv.kafkaPort);
    const n = limits.inFlightRequestsMax * 3;
    raw.write(Buffer.concat(Array.from({ length: n }, (_, i) => encodeRequest(18, 2, i + 1, {}))));
    for (let i = 0; i < n; i++) assert.equal((await raw.frame())!.readInt32BE(0), i + 1);
    raw.close();
  });

  test(`more than ${limits.partitionsPerRequestMax} partitions in one request is INVALID_REQUEST`, async () => {
    const raw = await RawKafka.connect(srv.kafkaPort);
    const partitions = Array.from({ length: limits.partitionsPerRequestMax + 1 }, (_, i) => ({ partitionIndex: i, timestamp: -1 }));
    const r = await raw.request(2, 1, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'x', partitions }] });
    assert.ok(r.topics[0].partitions.every((p: Body) => p.errorCode === 42));
    const one = await raw.request(2, 1, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'x', partitions: partitions.slice(0, limits.partitionsPerRequestMax) }] });
    assert.ok(one.topics[0].partitions.every((p: Body) => p.errorCode === 3), 'at the limit: answered per partition');
    raw.close();
  });

  test('group limits: session timeouts, group id length, offset metadata size', async () => {
    const raw = await RawKafka.connect(srv.kafkaPort);
    const join = (o: Body) => raw.request(11, 5, { groupId: 'g', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }], ...o });
    assert.equal((await join({ sessionTimeoutMs: limits.sessionTimeoutMsMin - 1 })).errorCode, 26);
    assert.equal((await join({ sessionTimeoutMs: limits.sessionTimeoutMsMax + 1 })).errorCode, 26);
    assert.equal((await join({ groupId: 'g'.repeat(limits.groupIdLengthMax + 1) })).errorCode, 24);
    assert.equal((await join({ groupId: '' })).errorCode, 24);
    assert.equal((await raw.request(3, 4, { topics: [{ name: 'meta-limit' }], allowAutoTopicCreation: true })).topics[0].errorCode, 0);
    const commit = (metadata: string) =>
      raw.request(8, 2, { groupId: 'solo', generationIdOrMemberEpoch: -1, memberId: '', retentionTimeMs: -1, topics: [{ name: 'meta-limit', partitions: [{ partitionIndex: 0, committedOffset: 0, committedMetadata: metadata }] }] });
    assert.equal((await commit('m'.repeat(limits.offsetMetadataBytesMax))).topics[0].partitions[0].errorCode, 0);
    assert.equal((await commit('m'.repeat(limits.offsetMetadataBytesMax + 1))).topics[0].partitions[0].errorCode, 12);
    raw.close();
  });
});

// ----------------------------------------------------------------------------------------
// The fuzz

const FUZZ_TOPICS = ['fz', 'fz.k', 'fz-x', 'unknown-topic', '', '../etc', 'a/b', 'F'.repeat(250)];

/** A random value for a field, bounded where an honest value would be (waits, timeouts, sizes). */
function randomValue(r: Rng, f: FieldDef, version: number, depth: number): unknown {
  const nullable = inRange(f.nullable, version);
  if (nullable && r.chance(0.05)) return null;
  if (f.array) {
    const n = depth > 2 ? 0 : r.int(r.chance(0.1) ? 6 : 3);
    return Array.from({ length: n }, () => randomValue(r, { ...f, array: false, nullable: 'none' }, version, depth + 1));
  }
  if (typeof f.type !== 'string') {
    const o: Record<string, unknown> = {};
    for (const g of f.type) if (inRange(g.versions, version)) o[g.name] = randomValue(r, g, version, depth + 1);
    return o;
  }
  const name = f.name;
  switch (f.type) {
    case 'int8':
      return r.int(256) - 128;
    case 'int16':
      return name === 'acks' ? r.pick([0, 1, -1, -1, 2]) : r.chance(0.8) ? r.int(5) - 1 : r.int(65536) - 32768;
    case 'int32':
      if (/wait|timeout/i.test(name)) return r.chance(0.5) ? r.int(50) : 6000 + r.int(1000);
      if (/partition$|index$/i.test(name)) return r.int(4) - (r.chance(0.05) ? 2 : 0);
      if (/bytes/i.test(name)) return r.chance(0.5) ? r.int(1 << 20) : r.int(100);
      return r.chance(0.8) ? r.int(10) - 1 : (r.int(2 ** 32) | 0);
    case 'int64':
      return r.chance(0.8) ? r.int(200) - 2 : r.int(2 ** 52);
    case 'bool':
      return r.chance(0.5);
    case 'uuid':
      return r.bytes(16);
    case 'string':
      if (/name|topic/i.test(name)) return r.pick(FUZZ_TOPICS);
      if (name === 'mechanism') return r.pick(['PLAIN', 'OAUTHBEARER', 'x']);
      return r.chance(0.7) ? r.pick(['', 'g', 'consumer', 'range', 'm-1']) : r.bytes(r.int(20)).toString('latin1');
    case 'bytes':
      return r.bytes(r.int(40));
    case 'records': {
      const batch = Buffer.from(encodeRecordBatch(Array.from({ length: 1 + r.int(5) }, (_, i) => ({ key: r.chance(0.5) ? Buffer.from(`k${i}`) : null, value: r.bytes(r.int(200)) })), { codec: r.chance(0.3) ? 'lz4' : 'none' }));
      return mutate(r, batch, 0.5);
    }
  }
}

/** Flips, cuts, grows or overwrites bytes of `b` with probability `p`. */
function mutate(r: Rng, b: Buffer, p: number): Buffer {
  if (!r.chance(p) || b.length === 0) return b;
  const out = Buffer.from(b);
  switch (r.int(4)) {
    case 0:
      for (let i = 1 + r.int(3); i > 0; i--) out[r.int(out.length)] ^= 1 << r.int(8);
      return out;
    case 1:
      return out.subarray(0, r.int(out.length));
    case 2:
      return Buffer.concat([out, r.bytes(1 + r.int(16))]);
    default: {
      const at = r.int(out.length);
      out.writeInt32BE(r.pick([0, -1, 0x7fffffff, r.int(2 ** 31)]), Math.min(at, Math.max(0, out.length - 4)));
      return out;
    }
  }
}

/** One fuzz request: a valid request of a random API and version, then maybe mutated. */
function fuzzRequest(r: Rng, correlationId: number): Buffer {
  if (r.chance(0.03)) {
    // Pure noise with a plausible size field.
    const noise = r.bytes(r.int(64));
    return Buffer.concat([sizeOnly(noise.length), noise]);
  }
  const keys = [...MESSAGES.keys()];
  const apiKey = r.pick(keys);
  const entry = API_TABLE.get(apiKey)!;
  const version = r.chance(0.03) ? entry.maxVersion + 1 : entry.minVersion + r.int(entry.maxVersion - entry.minVersion + 1);
  const def = MESSAGES.get(apiKey)!.request;
  const v = Math.min(version, entry.maxVersion);
  const body: Record<string, unknown> = {};
  for (const f of def.fields) if (inRange(f.versions, v)) body[f.name] = randomValue(r, f, v, 0);
  let bytes = encodeRequest(apiKey, v, correlationId, body);
  if (version !== v) bytes.writeInt16BE(version, 6);
  if (r.chance(0.35)) {
    // Mutate behind the size field, then fix or break the size.
    const inner = mutate(r, bytes.subarray(4), 1);
    bytes = Buffer.concat([sizeOnly(r.chance(0.9) ? inner.length : r.int(inner.length + 8)), inner]);
  }
  return bytes;
}

describe('Kafka port fuzz', () => {
  const REQUESTS = 20_000;
  const CONNECTIONS = 4;
  let srv: ServerProcess;
  let root: string;
  before(async () => {
    root = tempDir();
    srv = await startServer({ dataDir: path.join(root, 'data'), args: ['--max-frame-bytes', String(FRAME_BYTES), '--partitions', '2'] });
  });
  after(async () => {
    await srv?.stop();
  });

  test(`${REQUESTS} random and mutated requests: the server stays up and the log stays exact`, { timeout: 600_000 }, async () => {
    const rng = seeded('kafka-fuzz');
    let sent = 0;
    let answered = 0;
    let closedByServer = 0;
    let stop = false;

    // The honest producer: valid batches to its own topic, every ack remembered.
    const honest = await RawKafka.connect(srv.kafkaPort);
    assert.equal((await honest.request(3, 4, { topics: [{ name: 'honest' }], allowAutoTopicCreation: true })).topics[0].errorCode, 0);
    const acked = new Map<number, Buffer>(); // baseOffset -> the batch as sent
    const honestLoop = (async () => {
      for (let i = 0; !stop && i < 20_000; i++) {
        const batch = Buffer.from(encodeRecordBatch([{ key: Buffer.from(`h${i}`), value: Buffer.from(`honest ${i}`) }]));
        const r = await honest.request(0, 7, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: 'honest', partitionData: [{ index: 0, records: Buffer.from(batch) }] }] });
        const p = r.responses[0].partitionResponses[0];
        assert.equal(p.errorCode, 0, `honest produce ${i} refused (SEED=${rng.seed})`);
        acked.set(p.baseOffset, batch);
      }
    })();

    const worker = async (w: number) => {
      let raw = await RawKafka.connect(srv.kafkaPort);
      let correlation = w * 10_000_000;
      while (sent < REQUESTS) {
        sent++;
        const req = fuzzRequest(rng, ++correlation);
        raw.write(req);
        // A ping after every request: its answer (or the close) says the request was dealt with.
        raw.write(encodeRequest(18, 0, -correlation, {}));
        let done = false;
        while (!done) {
          let f: Buffer | null;
          try {
            f = await raw.frame(5_000);
          } catch {
            f = null; // a request that waits (a join) holds the ping: give the connection up
          }
          if (f === null) {
            if (!raw.closed) raw.close();
            else closedByServer++;
            raw = await RawKafka.connect(srv.kafkaPort);
            done = true;
          } else if (f.length >= 4 && f.readInt32BE(0) === -correlation) {
            done = true;
          } else {
            answered++;
          }
        }
      }
      raw.close();
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, (_, w) => worker(w)));
    stop = true;
    await honestLoop;
    honest.close();
    console.log(`kafka-fuzz: ${sent} requests, ${answered} answered, ${closedByServer} connections closed by the server, ${acked.size} honest batches acked`);

    assert.ok(sent >= REQUESTS);
    assert.equal(srv.proc.exitCode, null, 'the server is running');
    await assertAlive(srv.http);
    const check = await RawKafka.connect(srv.kafkaPort);
    assert.equal((await check.request(18, 3, { clientSoftwareName: 'x', clientSoftwareVersion: '1' })).errorCode, 0);

    // Every acked honest batch, byte for byte (but the offset the server wrote) at its offset.
    let offset = 0;
    const stored = new Map<number, Buffer>();
    for (let round = 0; round < 100_000 && offset < acked.size; round++) {
      const f = await check.request(1, 11, { maxWaitMs: 0, minBytes: 1, maxBytes: 8 << 20, topics: [{ topic: 'honest', partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 8 << 20 }] }] });
      const records = f.responses[0].partitions[0].records as Buffer;
      assert.ok(records.length > 0);
      let pos = 0;
      while (pos < records.length) {
        const h = readBatchHeader(records, pos);
        stored.set(h.baseOffset, Buffer.from(records.subarray(pos, pos + h.size)));
        offset = h.baseOffset + h.recordCount;
        pos += h.size;
      }
    }
    check.close();
    assert.equal(stored.size, acked.size, `honest: ${stored.size} batches stored, ${acked.size} acked (SEED=${rng.seed})`);
    for (const [base, sentBatch] of acked) {
      const got = stored.get(base);
      assert.ok(got, `acked batch at ${base} is missing (SEED=${rng.seed})`);
      // baseOffset (assigned) and partitionLeaderEpoch (outside the CRC) may differ; nothing else.
      assert.deepEqual(got.subarray(8, 12), sentBatch.subarray(8, 12), `batch at ${base} changed length (SEED=${rng.seed})`);
      assert.deepEqual(got.subarray(16), sentBatch.subarray(16), `batch at ${base} changed (SEED=${rng.seed})`);
    }
    // No request reached a code path that logs an internal error.
    const internal = srv.stderr().split('\n').filter((l) => l.includes('"level":50') || l.includes('"level":60'));
    assert.deepEqual(internal, [], `internal errors logged (SEED=${rng.seed})`);
    // Every partition of every topic reads back whole and dense; nothing escaped the data dir.
    await readBack(srv.http);
    assertNothingEscaped(root);
  });
});

/**
 * Auth on the Kafka port (wire contract §8, §6) against `sluice serve --auth-secret`: SASL
 * PLAIN (the password is the JWT) with kcat, OAUTHBEARER (the token is the JWT) with kafkajs,
 * the bare-frame exchange of SaslHandshake v0, requests before authentication refused, the
 * acl applied as on the WebSocket, and a connection closed when its token expires.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { Acl } from '../../src/common/acl.ts';
import { mintToken } from '../../src/cli/token.ts';
import { encodeRecordBatch } from '../../engine/codec/index.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';
import { type Body, RawKafka, kcat } from './helpers.ts';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');

const secret = 'kafka-test-secret-that-is-at-least-32-bytes';
const mint = (acl: Partial<Acl>, opts: { ttlSec?: number; now?: number } = {}): Promise<string> =>
  mintToken({ secret, acl: { pub: acl.pub ?? [], sub: acl.sub ?? [], admin: acl.admin }, ttlSec: opts.ttlSec, now: opts.now });

const plain = (token: string): Buffer => Buffer.from(`\0someone\0${token}`);

/** SaslHandshake v1 + SaslAuthenticate v1 with PLAIN; returns the SaslAuthenticate answer. */
async function authenticate(raw: RawKafka, token: string): Promise<Body> {
  const h = await raw.request(17, 1, { mechanism: 'PLAIN' });
  assert.equal(h.errorCode, 0);
  assert.deepEqual(h.mechanisms, ['PLAIN', 'OAUTHBEARER']);
  return raw.request(36, 1, { authBytes: plain(token) });
}

describe('Kafka port with auth on', () => {
  let srv: ServerProcess;
  let broker: string;
  before(async () => {
    srv = await startServer({ args: ['--auth-secret', secret, '--host', '127.0.0.1'] });
    broker = `127.0.0.1:${srv.kafkaPort}`;
  });
  after(async () => {
    await srv?.stop();
  });

  const saslArgs = (password: string) => ['-X', 'security.protocol=SASL_PLAINTEXT', '-X', 'sasl.mechanisms=PLAIN', '-X', 'sasl.username=anyone', '-X', `sasl.password=${password}`];

  test('kcat with SASL PLAIN and the JWT as password produces and consumes', async () => {
    const token = await mint({ pub: ['*'], sub: ['*'] });
    const p = await kcat(['-b', broker, ...saslArgs(token), '-P', '-t', 'secured', '-K', ':'], 'a:1\nb:2\n');
    assert.equal(p.code, 0, p.stderr);
    const c = await kcat(['-b', broker, ...saslArgs(token), '-C', '-t', 'secured', '-o', 'beginning', '-e', '-f', '%o %k %s\\n']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, '0 a 1\n1 b 2\n');
  });

  test('kcat with a bad token is refused with an authentication failure', async () => {
    const r = await kcat(['-b', broker, ...saslArgs('not-a-jwt'), '-L', '-m', '3']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Authentication failed|SASL authentication error/i);
  });

  test('kafkajs with OAUTHBEARER and the JWT as the token produces and reads back', async () => {
    const token = await mint({ pub: ['oauth-*'], sub: ['oauth-*'] });
    const kafka = new Kafka({
      clientId: 'oauth-test',
      brokers: [broker],
      logLevel: logLevel.NOTHING,
      sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token }) },
      retry: { retries: 2 },
    });
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    const r = await producer.send({ topic: 'oauth-topic', acks: -1, messages: [{ value: 'hello' }] });
    assert.equal(r[0].errorCode, 0);
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets('oauth-topic');
    assert.equal(offsets[0].high, '1');
    await admin.disconnect();

    const bad = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING, sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: 'x.y.z' }) }, retry: { retries: 0 } });
    const p2 = bad.producer();
    await assert.rejects(p2.connect(), /SASL|authenticat/i);
  });

  test('before authentication only ApiVersions and SASL are answered; anything else closes the connection', async () => {
    const raw = await RawKafka.connect(srv.kafkaPort);
    const v = await raw.request(18, 3, { clientSoftwareName: 'test', clientSoftwareVersion: '1' });
    assert.equal(v.errorCode, 0);
    const keys = v.apiKeys.map((k: Body) => k.apiKey);
    assert.ok(keys.includes(17) && keys.includes(36), 'SaslHandshake and SaslAuthenticate are offered');
    raw.write((await import('./helpers.ts')).encodeRequest(3, 4, 99, { topics: null, allowAutoTopicCreation: false }));
    assert.equal(await raw.frame(), null, 'no answer: the connection is closed');

    // SaslAuthenticate before SaslHandshake is ILLEGAL_SASL_STATE, then closed.
    const raw2 = await RawKafka.connect(srv.kafkaPort);
    const a = await raw2.request(36, 1, { authBytes: plain('x') });
    assert.equal(a.errorCode, 34);
    assert.ok(await raw2.waitClosed());

    // An unknown mechanism is named in the answer, with the ones offered.
    const raw3 = await RawKafka.connect(srv.kafkaPort);
    const h = await raw3.request(17, 1, { mechanism: 'SCRAM-SHA-256' });
    assert.equal(h.errorCode, 33);
    assert.deepEqual(h.mechanisms, ['PLAIN', 'OAUTHBEARER']);
    raw3.close();
  });

  test('a bad token gets SASL_AUTHENTICATION_FAILED and the connection closes', async () => {
    const raw = await RawKafka.connect(srv.kafkaPort);
    const expired = await mint({ sub: ['*'] }, { ttlSec: 1, now: Date.now() - 120_000 });
    const a = await authenticate(raw, expired);
    assert.equal(a.errorCode, 58);
    assert.match(a.errorMessage, /TOKEN_EXPIRED/);
    assert.ok(await raw.waitClosed());
  });

  test('SaslHandshake v0: the PLAIN message and its answer are bare frames', async () => {
    const token = await mint({ sub: ['*'] });
    const raw = await RawKafka.connect(srv.kafkaPort);
    const h = await raw.request(17, 0, { mechanism: 'PLAIN' });
    assert.equal(h.errorCode, 0);
    const msg = plain(token);
    const frame = Buffer.alloc(4 + msg.length);
    frame.writeInt32BE(msg.length, 0);
    msg.copy(frame, 4);
    raw.write(frame);
    const answer = await raw.frame();
    assert.ok(answer !== null && answer.length === 0, 'an empty frame: authenticated');
    const m = await raw.request(3, 4, { topics: null, allowAutoTopicCreation: false });
    assert.equal(m.brokers.length, 1);
    raw.close();
  });

  test('the acl applies as on the WebSocket: sub for Fetch/ListOffsets/offsets, pub for Produce, admin for topics', async () => {
    const admin = await RawKafka.connect(srv.kafkaPort);
    assert.equal((await authenticate(admin, await mint({ pub: ['*'], sub: ['*'], admin: true }))).errorCode, 0);
    const created = await admin.request(19, 4, { topics: [{ name: 'acl-open', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }, { name: 'acl-hidden', numPartitions: 1, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs: 1000, validateOnly: false });
    assert.deepEqual(
      created.topics.map((t: Body) => t.errorCode),
      [0, 0],
    );
    admin.close();

    const raw = await RawKafka.connect(srv.kafkaPort);
    const session = await authenticate(raw, await mint({ sub: ['acl-open'] }, { ttlSec: 3600 }));
    assert.equal(session.errorCode, 0);
    assert.ok(session.sessionLifetimeMs > 3_500_000 && session.sessionLifetimeMs <= 3_630_000, `lifetime ${session.sessionLifetimeMs}`);

    const meta = await raw.request(3, 4, { topics: null, allowAutoTopicCreation: false });
    assert.deepEqual(
      meta.topics.map((t: Body) => t.name),
      ['acl-open'],
      'Metadata for all topics lists those the token may see',
    );
    const named = await raw.request(3, 4, { topics: [{ name: 'acl-hidden' }], allowAutoTopicCreation: true });
    assert.equal(named.topics[0].errorCode, 29);

    const batch = Buffer.from(encodeRecordBatch([{ value: Buffer.from('x') }]));
    const produced = await raw.request(0, 7, { transactionalId: null, acks: -1, timeoutMs: 1000, topicData: [{ name: 'acl-open', partitionData: [{ index: 0, records: batch }] }] });
    assert.equal(produced.responses[0].partitionResponses[0].errorCode, 29, 'no pub on acl-open');

    const fetch = await raw.request(1, 11, {
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [
        { topic: 'acl-open', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] },
        { topic: 'acl-hidden', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] },
      ],
    });
    assert.deepEqual(
      fetch.responses.map((t: Body) => t.partitions[0].errorCode),
      [0, 29],
    );
    const lo = await raw.request(2, 2, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'acl-hidden', partitions: [{ partitionIndex: 0, timestamp: -1 }] }] });
    assert.equal(lo.topics[0].partitions[0].errorCode, 29);
    const commit = await raw.request(8, 2, { groupId: 'g', generationIdOrMemberEpoch: -1, memberId: '', retentionTimeMs: -1, topics: [{ name: 'acl-hidden', partitions: [{ partitionIndex: 0, committedOffset: 0, committedMetadata: null }] }] });
    assert.equal(commit.topics[0].partitions[0].errorCode, 29);
    const create = await raw.request(19, 4, { topics: [{ name: 'nope', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 1000, validateOnly: false });
    assert.equal(create.topics[0].errorCode, 29);
    const del = await raw.request(20, 1, { topicNames: ['acl-open'], timeoutMs: 1000 });
    assert.equal(del.responses[0].errorCode, 29);
    raw.close();
  });

  test('a connection is closed when its token expires', async () => {
    const raw = await RawKafka.connect(srv.kafkaPort);
    // exp + 30 s leeway lands about 1.5 s from now.
    const token = await mint({ sub: ['*'] }, { ttlSec: 1, now: Date.now() - 30_000 - 1000 + 1500 });
    assert.equal((await authenticate(raw, token)).errorCode, 0);
    assert.ok(await raw.waitClosed(15_000), 'closed at expiry');
  });
});

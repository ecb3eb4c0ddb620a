/**
 * Connection limits, each crossed once with the exact error asserted:
 * --max-subscriptions (BAD_REQUEST, nothing subscribed) and --idle-timeout-ms (a peer that
 * does not answer the server's pings is closed; one that does stays). --max-connections is in
 * auth.test.ts, --max-frame-bytes, --max-record-bytes and --publish-rate in publish.test.ts,
 * the replay port's request line and replays in flight in test/replay/suite.ts.
 * Also: what startup logs about auth (the warning when auth is off beyond loopback).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createAuth } from '../../src/common/auth.ts';
import { ConfigError, loadConfig } from '../../src/common/config.ts';
import { resolveLimits } from '../../src/common/limits.ts';
import { authStartupLines } from '../../src/server.ts';
import { Client, http, startServer } from '../helpers/server.ts';

describe('connection limits', () => {
  test('--max-subscriptions counts topic-partitions; the sub that would cross it is BAD_REQUEST and subscribes nothing', async () => {
    const srv = await startServer({ args: ['--max-subscriptions', '3'] });
    try {
      await http('PUT', `${srv.http}/v1/topics/two`, { partitions: 2 });
      await http('PUT', `${srv.http}/v1/topics/also-two`, { partitions: 2 });
      await http('PUT', `${srv.http}/v1/topics/one`, { partitions: 1 });
      const c = await Client.connect(srv.url);
      assert.equal((await c.request({ op: 'sub', topic: 'two' })).op, 'subbed');
      const over = await c.request({ op: 'sub', topic: 'also-two' });
      assert.equal(over.op, 'error');
      assert.equal(over.code, 'BAD_REQUEST');
      assert.match(over.message, /--max-subscriptions 3/);
      // Nothing of the refused request was subscribed: a single partition still fits...
      assert.equal((await c.request({ op: 'sub', topic: 'also-two', partition: 1 })).op, 'subbed');
      // ...and then the connection is full.
      assert.equal((await c.request({ op: 'sub', topic: 'one' })).code, 'BAD_REQUEST');
      // unsub frees room.
      await c.request({ op: 'unsub', topic: 'two' });
      assert.equal((await c.request({ op: 'sub', topic: 'one' })).op, 'subbed');
      c.close();
    } finally {
      await srv.stop();
    }
  });

  test('--idle-timeout-ms: a peer that ignores the server pings is closed, one that answers them stays', async () => {
    const srv = await startServer({ args: ['--idle-timeout-ms', '8000'] });
    try {
      const deaf = await Client.connect(srv.url, { autoPong: false });
      const alive = await Client.connect(srv.url);
      let pings = 0;
      alive.ws.on('ping', () => pings++);
      await deaf.until(() => deaf.closed !== null, 'idle close', 60_000);
      assert.ok(pings > 0, 'the server pinged the live peer');
      assert.equal(alive.closed, null);
      assert.equal((await alive.request({ op: 'ping' })).op, 'pong');
      alive.close();
    } finally {
      await srv.stop();
    }
  });

  test('config: --idle-timeout-ms is 0 or at least 8000; the new limits have defaults', () => {
    assert.throws(() => loadConfig({ idleTimeoutMs: '5000' }, {}), ConfigError);
    assert.throws(() => loadConfig({ maxSubscriptions: '0' }, {}), ConfigError);
    assert.throws(() => loadConfig({ maxConnections: '0' }, {}), ConfigError);
    const c = loadConfig({}, {});
    assert.equal(c.maxSubscriptions, 1000);
    assert.equal(c.maxConnections, 10_000);
    assert.equal(c.idleTimeoutMs, 120_000);
    assert.equal(loadConfig({ idleTimeoutMs: '0' }, {}).idleTimeoutMs, 0);
  });

  test('config: the produce limits of issue 14 have their defaults; a batch limit below the record limit is refused', () => {
    const c = loadConfig({}, {});
    const l = resolveLimits(c);
    assert.equal(l.recordBytesMax, 1024 * 1024);
    assert.equal(l.recordHeadersMax, 128);
    assert.equal(l.batchDecodedBytesMax, 16 * 1024 * 1024);
    assert.equal(l.timestampAheadMsMax, 3600_000);
    assert.equal(l.topicsMax, 10_000);
    // The decoded-bytes default grows with --max-record-bytes, so that one record always fits.
    assert.equal(resolveLimits(loadConfig({ maxRecordBytes: String(32 * 1024 * 1024) }, {})).batchDecodedBytesMax, 32 * 1024 * 1024);
    assert.throws(() => loadConfig({ maxRecordBytes: String(2 * 1024 * 1024), maxBatchDecodedBytes: String(1024 * 1024) }, {}), /max-batch-decoded-bytes/);
    assert.throws(() => loadConfig({ maxTopics: '0' }, {}), ConfigError);
    assert.equal(loadConfig({ maxRecordHeaders: '0' }, {}).maxRecordHeaders, 0);
  });
});

describe('startup log about auth', () => {
  test('auth off: info on loopback, a warning beyond it; auth on: the key and its weaknesses', () => {
    assert.deepEqual(authStartupLines(null, '127.0.0.1').map((l) => l.level), ['info']);
    assert.deepEqual(authStartupLines(null, '::1').map((l) => l.level), ['info']);
    const beyond = authStartupLines(null, '0.0.0.0');
    assert.equal(beyond[0].level, 'warn');
    assert.match(beyond[0].msg, /beyond loopback/);
    const weak = authStartupLines(createAuth({ authSecret: 'short' }), '0.0.0.0');
    assert.match(weak[0].msg, /auth is on: shared secret \(HS256\)/);
    assert.equal(weak[1].level, 'warn');
    assert.match(weak[1].msg, /32 random bytes/);
  });
});

/**
 * `GET /v1/stats`, what the live page reads: the build, connections and subscriptions now,
 * and per topic its partitions with the largest subscriber lag and its traffic since start,
 * filtered by the token's `acl.sub` like `GET /v1/topics`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { mintToken } from '../../src/cli/token.ts';
import { Client, http, httpAs, startServer } from '../helpers/server.ts';

const secret = 'stats-test-secret-stats-test-secret-stats';

test('GET /v1/stats: build, connections, subscriptions, per-topic partitions, lag and traffic, filtered by acl.sub', async () => {
  const srv = await startServer({ args: ['--auth-secret', secret] });
  try {
    const all = await mintToken({ secret, acl: { pub: ['*'], sub: ['*'] } });
    const onlyA = await mintToken({ secret, acl: { pub: [], sub: ['a*'] } });
    const c = await Client.connect(`${srv.url}?token=${all}`);
    for (const topic of ['a1', 'b1']) for (let i = 0; i < 3; i++) await c.request({ op: 'pub', topic, value: `${topic} ${i}` });
    await c.request({ op: 'sub', topic: 'a1', from: 'earliest' });
    await c.until(() => c.records.length === 3, 'records');
    assert.equal((await http('GET', `${srv.http}/v1/stats`)).status, 401, 'a token is needed, as for /v1/topics');
    const s = (await httpAs(all, 'GET', `${srv.http}/v1/stats`)).body;
    const { version } = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    assert.equal(s.version, version);
    assert.match(s.commit, /^([0-9a-f]{12}|unknown)$/);
    assert.ok(s.uptimeMs > 0);
    assert.equal(s.connections.ws, 1);
    assert.equal(s.subscriptions, 1);
    assert.equal(s.waiting, 0);
    assert.deepEqual(
      s.topics.map((t: { name: string; recordsIn: number; recordsOut: number; partitions: { hw: number; lag: number | null }[] }) => [t.name, t.recordsIn, t.recordsOut, t.partitions[0].hw, t.partitions[0].lag]),
      [
        ['a1', 3, 3, 3, 0],
        ['b1', 3, 0, 3, null],
      ],
    );
    const filtered = (await httpAs(onlyA, 'GET', `${srv.http}/v1/stats`)).body;
    assert.deepEqual(filtered.topics.map((t: { name: string }) => t.name), ['a1']);
    c.close();
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

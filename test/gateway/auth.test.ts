/**
 * Auth wired end to end (wire contract §3, §5, §6) against a real `sluice serve` with
 * `--auth-secret`: the upgrade refuses a missing or bad token with 401, every op and HTTP
 * route checks the token's ACL before looking the topic up, an expiring token closes the
 * connection with UNAUTHORIZED + 4001 unless the `auth` op refreshed it, and the replay port
 * uses the same verifier.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { ChunkReader, encodeRecordBatch } from '../../engine/codec/index.ts';
import type { Acl } from '../../src/common/acl.ts';
import { mintToken } from '../../src/cli/token.ts';
import { produceFrame } from '../../src/gateway/frames.ts';
import { Client, type ServerProcess, http, httpAs, refusedUpgrade, startServer, tempDir } from '../helpers/server.ts';

const secret = 'test-secret-that-is-at-least-32-bytes-long!';
const mint = (acl: Partial<Acl>, opts: { ttlSec?: number; now?: number; secret?: string } = {}): Promise<string> =>
  mintToken({ secret: opts.secret ?? secret, acl: { pub: acl.pub ?? [], sub: acl.sub ?? [], admin: acl.admin }, ttlSec: opts.ttlSec, now: opts.now });

/** A token whose connection must close about `ms` from now: exp + 30 s leeway = now + ms. */
function nearExpiry(acl: Partial<Acl>, ms: number): Promise<string> {
  return mint(acl, { ttlSec: 1, now: Date.now() - 30_000 - 1000 + ms });
}

const wsUrl = (srv: ServerProcess, token?: string): string => (token === undefined ? srv.url : `${srv.url}?token=${encodeURIComponent(token)}`);

describe('auth on the gateway', () => {
  let srv: ServerProcess;
  let admin: string;
  let all: string;
  before(async () => {
    srv = await startServer({ args: ['--auth-secret', secret] });
    admin = await mint({ pub: ['*'], sub: ['*'], admin: true });
    all = await mint({ pub: ['*'], sub: ['*'] });
  });
  after(async () => {
    assert.equal(await srv.stop(), 0);
  });

  test('the upgrade needs a token: missing, bad, expired or ambiguous → 401 {code,message}, no upgrade', async () => {
    for (const [what, r] of [
      ['missing', await refusedUpgrade(wsUrl(srv))],
      ['garbage', await refusedUpgrade(wsUrl(srv, 'not.a.jwt'))],
      ['wrong secret', await refusedUpgrade(wsUrl(srv, await mint({ sub: ['*'] }, { secret: 'another-secret-another-secret-another-secret' })))],
      ['expired', await refusedUpgrade(wsUrl(srv, await mint({ sub: ['*'] }, { ttlSec: 1, now: Date.now() - 3_600_000 })))],
      ['two tokens', await refusedUpgrade(wsUrl(srv, all), { authorization: `Bearer ${admin}` })],
      ['bad header', await refusedUpgrade(wsUrl(srv), { authorization: 'Bearer a b c' })],
    ] as const) {
      assert.equal(r.upgraded, false, what);
      assert.equal(r.status, 401, what);
      assert.equal(r.body.code, 'UNAUTHORIZED', what);
      assert.equal(typeof r.body.message, 'string', what);
    }
    // Both ways of giving a good token work.
    const q = await Client.connect(wsUrl(srv, all));
    assert.equal((await q.request({ op: 'ping' })).op, 'pong');
    const h = await Client.connect(srv.url, { headers: { authorization: `Bearer ${all}` } });
    assert.equal((await h.request({ op: 'ping' })).op, 'pong');
    q.close();
    h.close();
  });

  test('ops outside the ACL get FORBIDDEN before anything else happens (no auto-create, no UNKNOWN_TOPIC leak)', async () => {
    const narrow = await mint({ pub: ['a.*'], sub: ['a.*'] });
    const c = await Client.connect(wsUrl(srv, narrow));
    // Forbidden topics: existing or not, the answer is the same.
    await httpAs(admin, 'PUT', `${srv.http}/v1/topics/secret.exists`, { partitions: 1 });
    for (const topic of ['secret.exists', 'secret.absent']) {
      assert.equal((await c.request({ op: 'pub', topic, value: 'x' })).code, 'FORBIDDEN', topic);
      assert.equal((await c.request({ op: 'sub', topic })).code, 'FORBIDDEN', topic);
      assert.equal((await c.request({ op: 'meta', topic })).code, 'FORBIDDEN', topic);
    }
    c.ws.send(produceFrame(77, 'secret.absent', 0xffffffff, encodeRecordBatch([{ value: Buffer.from('x') }])));
    assert.equal((await c.waitMessage((m) => m.id === 77)).code, 'FORBIDDEN');
    // Nothing was created by the refused publishes.
    assert.equal((await httpAs(admin, 'GET', `${srv.http}/v1/topics/secret.absent`)).status, 404);
    // Allowed topics behave as without auth.
    assert.equal((await c.request({ op: 'meta', topic: 'a.none' })).code, 'UNKNOWN_TOPIC');
    assert.equal((await c.request({ op: 'pub', topic: 'a.one', value: 'x' })).op, 'ack');
    assert.equal((await c.request({ op: 'sub', topic: 'a.one', from: 'earliest' })).op, 'subbed');
    await c.until(() => c.records.length === 1, 'record');
    c.close();
  });

  test('HTTP API: 401 without a token, 403 outside the ACL, topic list filtered by acl.sub; health, metrics and / are open', async () => {
    const base = srv.http;
    for (const p of ['/healthz', '/readyz', '/metrics', '/']) assert.equal((await http('GET', base + p)).status, 200, p);
    assert.equal((await http('GET', `${base}/v1/topics`)).status, 401);
    assert.equal((await http('GET', `${base}/v1/topics`)).body.code, 'UNAUTHORIZED');
    assert.equal((await http('PUT', `${base}/v1/topics/h.x`, { partitions: 1 })).status, 401);
    assert.equal((await http('POST', `${base}/v1/topics/h.x/records`, { records: [{ value: 'x' }] })).status, 401);
    assert.equal((await httpAs('garbage', 'GET', `${base}/v1/topics/h.x`)).status, 401);

    const reader = await mint({ sub: ['h.*'] });
    const writer = await mint({ pub: ['h.*'] });
    // Creating and deleting need admin, whatever the topic ACLs say.
    let r = await httpAs(all, 'PUT', `${base}/v1/topics/h.x`, { partitions: 1 });
    assert.equal(r.status, 403);
    assert.equal(r.body.code, 'FORBIDDEN');
    assert.equal((await httpAs(admin, 'PUT', `${base}/v1/topics/h.x`, { partitions: 1 })).status, 201);
    assert.equal((await httpAs(admin, 'PUT', `${base}/v1/topics/other.y`, { partitions: 1 })).status, 201);
    // POST needs pub (checked before auto-creation), GET records needs sub.
    r = await httpAs(reader, 'POST', `${base}/v1/topics/h.new/records`, { records: [{ value: 'x' }] });
    assert.equal(r.status, 403);
    assert.equal((await httpAs(admin, 'GET', `${base}/v1/topics/h.new`)).status, 404, 'a refused POST creates nothing');
    assert.equal((await httpAs(writer, 'POST', `${base}/v1/topics/h.x/records?token=${writer}`, { records: [{ value: 'v' }] })).status, 200);
    assert.equal((await httpAs(writer, 'GET', `${base}/v1/topics/h.x/records`)).status, 403);
    r = await httpAs(reader, 'GET', `${base}/v1/topics/h.x/records`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.records.map((x: any) => x.value), ['v']);
    assert.equal((await httpAs(reader, 'GET', `${base}/v1/topics/other.y`)).status, 403);
    assert.equal((await httpAs(reader, 'GET', `${base}/v1/topics/nope.z`)).status, 403, 'no UNKNOWN_TOPIC outside the ACL');
    // The list holds only what the token may sub.
    const names = (await httpAs(reader, 'GET', `${base}/v1/topics`)).body.topics.map((t: any) => t.name);
    assert.ok(names.includes('h.x'));
    assert.ok(names.every((n: string) => n.startsWith('h.')), names.join());
    assert.equal((await httpAs(writer, 'GET', `${base}/v1/topics`)).body.topics.length, 0);
    assert.equal((await httpAs(all, 'DELETE', `${base}/v1/topics/other.y`)).status, 403);
    assert.equal((await httpAs(admin, 'DELETE', `${base}/v1/topics/other.y`)).status, 200);
  });

  test('a browser (a request with an Origin) refused on the upgrade is told over the socket: an error, then close 4001', async () => {
    for (const url of [wsUrl(srv), wsUrl(srv, 'not.a.jwt')]) {
      // Listeners before the upgrade completes: the error may arrive with the upgrade's answer.
      const ws = new WebSocket(url, { headers: { origin: 'http://app.example' } });
      const messages: any[] = [];
      ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString())));
      const [code] = (await once(ws, 'close')) as [number];
      assert.equal(code, 4001);
      assert.equal(messages.length, 1);
      assert.equal(messages[0].op, 'error');
      assert.equal(messages[0].code, 'UNAUTHORIZED');
      assert.equal(messages[0].id, undefined);
    }
    // The refused socket never counted as a connection: the metrics show none left open.
    const metrics = await http('GET', `${srv.http}/metrics`);
    assert.match(metrics.text, /^sluice_ws_connections 0$/m);
  });

  test('an expiring token: UNAUTHORIZED, then close 4001', async () => {
    const c = await Client.connect(wsUrl(srv, await nearExpiry({ sub: ['*'] }, 1500)));
    const err = await c.waitMessage((m) => m.op === 'error');
    assert.equal(err.code, 'UNAUTHORIZED');
    await c.until(() => c.closed !== null, 'close');
    assert.equal(c.closed!.code, 4001);
  });

  test('the auth op refreshes the token; subscriptions the new ACL forbids end with FORBIDDEN; a failed refresh keeps the old token', async () => {
    await httpAs(admin, 'PUT', `${srv.http}/v1/topics/r.keep`, { partitions: 1 });
    await httpAs(admin, 'PUT', `${srv.http}/v1/topics/r.drop`, { partitions: 2 });
    const c = await Client.connect(wsUrl(srv, await nearExpiry({ sub: ['r.*'] }, 3000)));
    assert.equal((await c.request({ op: 'sub', topic: 'r.keep' })).op, 'subbed');
    assert.equal((await c.request({ op: 'sub', topic: 'r.drop' })).op, 'subbed');
    // A bad token is refused and changes nothing.
    const bad = await c.request({ op: 'auth', token: 'nope' });
    assert.equal(bad.op, 'error');
    assert.equal(bad.code, 'UNAUTHORIZED');
    assert.equal((await c.request({ op: 'meta', topic: 'r.drop' })).op, 'meta');
    // The fresh token allows r.keep only.
    const authed = await c.request({ op: 'auth', token: await mint({ sub: ['r.keep'] }, { ttlSec: 3600 }) });
    assert.equal(authed.op, 'authed');
    await c.until(() => c.messages.filter((m) => m.code === 'FORBIDDEN').length === 2, 'FORBIDDEN for both partitions of r.drop');
    const ended = c.messages.filter((m) => m.code === 'FORBIDDEN');
    assert.deepEqual(ended.map((m) => `${m.topic}/${m.partition}`).sort(), ['r.drop/0', 'r.drop/1']);
    assert.ok(ended.every((m) => m.id === undefined));
    assert.equal((await c.request({ op: 'meta', topic: 'r.drop' })).code, 'FORBIDDEN');
    // Live data still flows on the kept subscription, also past the old token's expiry.
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal((await httpAs(admin, 'POST', `${srv.http}/v1/topics/r.keep/records`, { records: [{ value: 'after' }] })).status, 200);
    await c.until(() => c.recordsOf('r.keep', 0).length === 1, 'record after the old expiry');
    assert.equal(c.closed, null);
    c.close();

    // A failed refresh keeps the old token until it expires.
    const d = await Client.connect(wsUrl(srv, await nearExpiry({ sub: ['*'] }, 1500)));
    assert.equal((await d.request({ op: 'auth', token: await mint({ sub: ['*'] }, { secret: 'wrong-wrong-wrong-wrong-wrong-wrong!!' }) })).code, 'UNAUTHORIZED');
    await d.until(() => d.closed !== null, 'close');
    assert.equal(d.closed!.code, 4001);
  });

  test('the replay port checks the same tokens (acl.sub)', async () => {
    await httpAs(admin, 'POST', `${srv.http}/v1/topics/rp.t/records`, { records: [{ value: 'x' }] });
    const ask = (req: object): Promise<any> =>
      new Promise((resolve, reject) => {
        const s = net.connect(srv.replayPort, '127.0.0.1', () => s.write(`${JSON.stringify(req)}\n`));
        const chunks = new ChunkReader();
        s.on('data', (d) => {
          chunks.push(d);
          const c = chunks.next();
          if (c !== null) {
            s.destroy();
            resolve(c.header);
          }
        });
        s.on('error', reject);
      });
    assert.equal((await ask({ topic: 'rp.t', partition: 0, from: 'earliest' })).code, 'UNAUTHORIZED');
    assert.equal((await ask({ topic: 'rp.t', partition: 0, from: 'earliest', token: await mint({ sub: ['x'] }) })).code, 'FORBIDDEN');
    assert.equal((await ask({ topic: 'rp.t', partition: 0, from: 'earliest', token: all })).ok, true);
  });
});

describe('auth limits and startup', () => {
  test('a bad key file stops the server before it opens the log, naming the file', () => {
    const dataDir = path.join(tempDir(), 'never-created');
    const r = spawnSync(process.execPath, ['bin/sluice.js', 'serve', '--port', '0', '--replay-port', '0', '--data-dir', dataDir, '--auth-public-key', '/nonexistent/key.pem'], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      encoding: 'utf8',
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--auth-public-key \/nonexistent\/key\.pem/);
    assert.equal(fs.existsSync(dataDir), false);
  });

  test('--max-connections: one more upgrade gets 503 UNAVAILABLE; a slot frees on close', async () => {
    const srv = await startServer({ args: ['--max-connections', '2'] });
    try {
      const a = await Client.connect(srv.url);
      const b = await Client.connect(srv.url);
      const r = await refusedUpgrade(srv.url);
      assert.equal(r.upgraded, false);
      assert.equal(r.status, 503);
      assert.equal(r.body.code, 'UNAVAILABLE');
      a.close();
      await b.request({ op: 'ping' });
      // The server sees the close asynchronously: retry until the slot is free (hang-guarded).
      let upgraded = false;
      for (let i = 0; i < 200 && !upgraded; i++) {
        upgraded = (await refusedUpgrade(srv.url)).upgraded;
        if (!upgraded) await new Promise((res) => setTimeout(res, 50));
      }
      assert.ok(upgraded, 'a connection once one closed');
      b.close();
    } finally {
      await srv.stop();
    }
  });
});

/**
 * Auth as an SDK user meets it, against a real `sluice serve --auth-secret`:
 * - a refused token is not a network error: connect() fails at once with UNAUTHORIZED and
 *   the server's reason, after one attempt (two with getToken: one fresh token is tried);
 * - getToken() refreshes a token before it expires over the open connection (the `auth`
 *   op): no reconnection, and the new token's rights apply at once;
 * - without getToken, the server's close at expiry (4001) closes the client with
 *   UNAUTHORIZED instead of a silent reconnection loop.
 */
import assert from 'node:assert/strict';
import { until as waitUntil } from '../helpers/until.ts';
import { after, before, describe, test } from 'node:test';
import type { Acl } from '../../src/common/acl.ts';
import { mintToken } from '../../src/cli/token.ts';
import { type DisconnectedEvent, SluiceClient, SluiceError, connect } from '../../src/client/index.ts';
import { type ServerProcess, startServer } from './server-process.ts';

const secret = 'sdk-auth-test-secret-at-least-32-bytes';
const mint = (acl: Partial<Acl>, opts: { ttlSec?: number; now?: number; secret?: string } = {}): Promise<string> =>
  mintToken({ secret: opts.secret ?? secret, acl: { pub: acl.pub ?? [], sub: acl.sub ?? [], admin: acl.admin }, ttlSec: opts.ttlSec, now: opts.now });

/** A token whose connection the server closes about `ms` from now (exp + its 30 s leeway). */
const nearExpiry = (acl: Partial<Acl>, ms: number): Promise<string> => mint(acl, { ttlSec: 1, now: Date.now() - 30_000 - 1000 + ms });

/** Waits at most 30 s. */
const until = (cond: () => boolean, what: string): Promise<void> => waitUntil(cond, what, 30_000);

describe('SDK auth against a real server', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer(['--auth-secret', secret]);
  });
  after(async () => {
    await server?.stop();
  });

  test('a bad token: connect() fails at once with UNAUTHORIZED and the reason, after one attempt', async () => {
    for (const [what, token, reason] of [
      ['garbage', 'not.a.jwt', /./],
      ['expired', await mint({ sub: ['*'] }, { ttlSec: 1, now: Date.now() - 3_600_000 }), /expired/],
      ['wrong secret', await mint({ sub: ['*'] }, { secret: 'another-secret-another-secret-another!' }), /signature/],
      ['none', undefined, /token/],
    ] as const) {
      const c = new SluiceClient(server.url, { token, backoff: { baseMs: 1, maxMs: 1 } });
      const events: DisconnectedEvent[] = [];
      c.on('disconnected', (e) => events.push(e));
      await assert.rejects(c.connect(), (e: unknown) => e instanceof SluiceError && e.code === 'UNAUTHORIZED' && reason.test(e.message), what);
      assert.equal(events.length, 1, `${what}: one attempt, no silent retry`);
      assert.equal(events[0].willReconnect, false);
      assert.equal(events[0].error?.code, 'UNAUTHORIZED');
      assert.equal(c.state, 'closed');
      assert.equal(c.closeError?.code, 'UNAUTHORIZED');
      await assert.rejects(c.publish('t', 'x'), (e: unknown) => e instanceof SluiceError && e.code === 'UNAUTHORIZED');
    }
  });

  test('getToken: a refused token gets one fresh try, then UNAUTHORIZED', async () => {
    let calls = 0;
    await assert.rejects(
      connect(server.url, { getToken: () => (calls++, 'still.not.good'), backoff: { baseMs: 1, maxMs: 1 } }),
      (e: unknown) => e instanceof SluiceError && e.code === 'UNAUTHORIZED',
    );
    assert.equal(calls, 2);
  });

  test('getToken refreshes the token before it expires over the open connection: no reconnection, the new rights apply', async () => {
    // The first token allows topic "a" only, and its connection would be closed in ~3 s;
    // every later one allows "a" and "b" for an hour.
    const first = await nearExpiry({ pub: ['a'], sub: ['a'] }, 3000);
    const fresh = await mint({ pub: ['a', 'b'], sub: ['a', 'b'] }, { ttlSec: 3600 });
    const deadline = Date.now() + 3000;
    let calls = 0;
    const c = await connect(server.url, { getToken: () => (++calls === 1 ? first : fresh), pingIntervalMs: 0 });
    const lost: DisconnectedEvent[] = [];
    const states: string[] = [];
    c.on('disconnected', (e) => lost.push(e));
    c.on('state', (e) => states.push(e.newState));
    try {
      await assert.rejects(c.publish('b', 'not yet'), (e: unknown) => e instanceof SluiceError && e.code === 'FORBIDDEN');
      const got: string[] = [];
      await c.publish('a', 'one');
      await c.subscribe('a', { from: 'earliest' }, (recs) => got.push(...recs.map((r) => r.text())));
      await until(() => calls >= 2, 'the refresh');
      // The new token's rights apply on this very connection.
      await until(() => got.length === 1, 'the first record');
      let ack: { offset: number } | null = null;
      for (let i = 0; i < 200 && ack === null; i++) {
        ack = await c.publish('b', 'now allowed').catch(() => null);
        if (ack === null) await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(ack, 'publishing to b is allowed after the refresh');
      // Past the moment the server would have closed the first token's connection.
      await until(() => Date.now() > deadline + 1000, 'the first token to be past its expiry');
      await c.publish('a', 'two');
      await until(() => got.length === 2, 'the record after the expiry of the first token');
      assert.deepEqual(lost, [], 'never disconnected');
      assert.deepEqual(states, [], 'never left connected');
    } finally {
      c.close();
    }
  });

  test('without getToken, the server closing an expired token (4001) closes the client with UNAUTHORIZED', async () => {
    const token = await nearExpiry({ sub: ['*'], pub: ['*'] }, 1500);
    const c = await connect(server.url, { token, pingIntervalMs: 0 });
    const lost: DisconnectedEvent[] = [];
    c.on('disconnected', (e) => lost.push(e));
    const closed = new Promise<void>((r) => c.on('state', (e) => e.newState === 'closed' && r()));
    await closed;
    assert.equal(lost.length, 1);
    assert.equal(lost[0].code, 4001);
    assert.equal(lost[0].willReconnect, false);
    assert.equal(c.closeError?.code, 'UNAUTHORIZED');
    assert.match(c.closeError!.message, /expired/);
  });
});

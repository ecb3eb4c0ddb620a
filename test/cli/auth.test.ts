/**
 * The CLI against a server with auth on: a refused token is reported as UNAUTHORIZED with
 * the server's reason, exit 1, on the first attempt (not as an unreachable server), by the
 * WebSocket tools and the HTTP ones alike; a good token works.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mintToken } from '../../src/cli/token.ts';
import { type ServerProcess, startServer } from '../client/server-process.ts';
import { sluice } from '../helpers/cli.ts';

const secret = 'cli-auth-test-secret-at-least-32-bytes!';

describe('CLI with auth on', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer(['--auth-secret', secret]);
  });
  after(async () => {
    await server?.stop();
  });

  test('a refused token says UNAUTHORIZED and why, exit 1; a good one works', async () => {
    const expired = await mintToken({ secret, acl: { pub: ['*'], sub: ['*'] }, ttlSec: 1, now: Date.now() - 3_600_000 });
    for (const args of [
      ['produce', '--topic', 't'],
      ['consume', '--topic', 't'],
      ['topics', 'list'],
    ]) {
      const r = await sluice([...args, '--url', server.url, '--token', expired], 'x\n');
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /^sluice: UNAUTHORIZED.*expired/m, args[0]);
    }
    const none = await sluice(['consume', '--topic', 't', '--url', server.url]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /UNAUTHORIZED/);

    const good = await mintToken({ secret, acl: { pub: ['*'], sub: ['*'] } });
    const p = await sluice(['produce', '--topic', 't', '--url', server.url, '--token', good], 'x\n');
    assert.equal(p.code, 0, p.stderr);
    const c = await sluice(['consume', '--topic', 't', '--url', server.url, '--token', good]);
    assert.equal(c.stdout, 'x\n');
  });
});

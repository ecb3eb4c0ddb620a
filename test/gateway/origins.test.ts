/**
 * Browsers and origins (docs/security.md): `--cors-origins` gives the listed origins' pages
 * CORS access to the HTTP API (and the SDK bundle), preflights included; `--allowed-origins`
 * refuses WebSocket upgrades from pages elsewhere, while the server's own page and clients
 * that send no Origin (Node, the CLI) always connect.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { originAllowed, originsProblem, parseOrigins, sameOrigin } from '../../src/common/origins.ts';
import { type ServerProcess, refusedUpgrade, startServer } from '../helpers/server.ts';

async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Response> {
  const res = await fetch(url, { method, headers });
  await res.arrayBuffer();
  return res;
}

async function opens(url: string, origin?: string): Promise<boolean> {
  const ws = new WebSocket(url, origin === undefined ? {} : { origin });
  return new Promise((resolve) => {
    ws.once('open', () => {
      ws.terminate();
      resolve(true);
    });
    ws.once('error', () => resolve(false));
  });
}

describe('origin lists', () => {
  test('entries are *, exact origins, or a * as the leftmost label; anything else is refused with the rule', () => {
    assert.equal(originsProblem(['*', 'https://app.example.com', 'http://localhost:3000', 'https://*.example.org']), null);
    assert.match(originsProblem(['https://app.example.com/'])!, /no path, no trailing slash/);
    assert.match(originsProblem(['ftp://x'])!, /scheme must be http or https/);
    assert.match(originsProblem(['https://a.*.example'])!, /only be the whole leftmost label/);
    assert.match(originsProblem(['https://x:99999'])!, /above 65535/);
  });

  test('matching: exact, default ports, subdomains of a wildcard (not the domain itself), case', () => {
    const rules = parseOrigins(['https://app.example.com', 'https://*.example.org', 'http://localhost:3000']);
    assert.ok(originAllowed(rules, 'https://app.example.com'));
    assert.ok(originAllowed(rules, 'https://APP.example.com'));
    assert.ok(originAllowed(rules, 'https://app.example.com:443'));
    assert.ok(!originAllowed(rules, 'http://app.example.com'), 'another scheme');
    assert.ok(!originAllowed(rules, 'https://app.example.com:8443'), 'another port');
    assert.ok(originAllowed(rules, 'https://a.b.example.org'));
    assert.ok(!originAllowed(rules, 'https://example.org'));
    assert.ok(!originAllowed(rules, 'https://evilexample.org'));
    assert.ok(originAllowed(rules, 'http://localhost:3000'));
    assert.ok(!originAllowed(rules, 'http://localhost'));
    assert.ok(!originAllowed(rules, 'null'), 'an opaque origin');
    assert.ok(!originAllowed(rules, 'https://app.example.com/path'));
    assert.ok(sameOrigin('http://127.0.0.1:8080', '127.0.0.1:8080'));
    assert.ok(!sameOrigin('http://evil.example:8080', '127.0.0.1:8080'));
  });
});

describe('--cors-origins and --allowed-origins', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ args: ['--cors-origins', 'https://app.example.com,https://*.example.org', '--allowed-origins', 'https://app.example.com'] });
  });
  after(async () => {
    assert.equal(await srv.stop(), 0);
  });

  test('a listed origin gets Access-Control-Allow-Origin naming it (and Vary: Origin); another gets none', async () => {
    for (const path of ['/v1/topics', '/healthz', '/metrics', '/sluice-client.js', '/v1/topics/none']) {
      const ok = await get(`${srv.http}${path}`, { origin: 'https://app.example.com' });
      assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example.com', path);
      assert.equal(ok.headers.get('vary'), 'Origin', path);
      const sub = await get(`${srv.http}${path}`, { origin: 'https://shop.example.org' });
      assert.equal(sub.headers.get('access-control-allow-origin'), 'https://shop.example.org', path);
      const evil = await get(`${srv.http}${path}`, { origin: 'https://evil.example' });
      assert.equal(evil.headers.get('access-control-allow-origin'), null, path);
      const none = await get(`${srv.http}${path}`);
      assert.equal(none.headers.get('access-control-allow-origin'), null, path);
    }
  });

  test('a preflight from a listed origin is answered 204 with the methods and headers; from another, 403 FORBIDDEN', async () => {
    const preflight = { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' };
    const ok = await get(`${srv.http}/v1/topics/t/records`, preflight, 'OPTIONS');
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.equal(ok.headers.get('access-control-allow-methods'), 'GET, POST, PUT, DELETE');
    assert.equal(ok.headers.get('access-control-allow-headers'), 'authorization, content-type');
    assert.equal(ok.headers.get('access-control-max-age'), '600');
    const evil = await fetch(`${srv.http}/v1/topics/t/records`, { method: 'OPTIONS', headers: { ...preflight, origin: 'https://evil.example' } });
    assert.equal(evil.status, 403);
    assert.deepEqual(await evil.json(), { code: 'FORBIDDEN', message: 'origin https://evil.example is not in --cors-origins' });
  });

  test('a WebSocket upgrade from an origin not listed is refused 403; listed, same-origin and Origin-less ones connect', async () => {
    const refused = await refusedUpgrade(srv.url, { origin: 'https://evil.example' });
    assert.deepEqual(refused, { upgraded: false, status: 403, body: { code: 'FORBIDDEN', message: 'origin https://evil.example is not in --allowed-origins' } });
    // Allowed for CORS is not allowed for WebSocket: the lists are separate.
    assert.equal((await refusedUpgrade(srv.url, { origin: 'https://shop.example.org' })).status, 403);
    assert.ok(await opens(srv.url, 'https://app.example.com'));
    assert.ok(await opens(srv.url, `http://127.0.0.1:${srv.port}`), "the server's own page");
    assert.ok(await opens(srv.url), 'no Origin: not a browser page');
  });
});

describe('CORS defaults', () => {
  test('without --cors-origins there is no CORS header and preflights are refused; --cors-origins * allows any', async () => {
    const plain = await startServer();
    const any = await startServer({ args: ['--cors-origins', '*'] });
    try {
      const r = await get(`${plain.http}/v1/topics`, { origin: 'https://app.example.com' });
      assert.equal(r.headers.get('access-control-allow-origin'), null);
      const pre = await fetch(`${plain.http}/v1/topics`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' } });
      assert.equal(pre.status, 403);
      assert.match(((await pre.json()) as { message: string }).message, /cross-origin requests are off/);
      assert.ok(await opens(plain.url, 'https://anywhere.example'), 'no --allowed-origins: any page may connect');
      const star = await get(`${any.http}/v1/topics`, { origin: 'https://app.example.com' });
      assert.equal(star.headers.get('access-control-allow-origin'), '*');
      assert.equal(star.headers.get('vary'), null);
    } finally {
      await plain.stop();
      await any.stop();
    }
  });
});

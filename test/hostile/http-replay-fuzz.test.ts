/**
 * Hostile input on the HTTP API and the replay port, bounded and reproducible
 * (`SEED=<n> npm test -- hostile/http`).
 *
 * HTTP: bad JSON and random bodies, wrong methods, odd and malformed paths
 * (`..%2F..%2Fx`, `%E0%A4%A`), bad query parameters, oversized bodies. Every answer is a
 * status of the contract (never 500) with a `{code,message}` body for errors; the log holds
 * exactly the records the 200 answers to POST acknowledged.
 *
 * Replay: random bytes, random text, JSON of the wrong shape, bad topics, numbers out of
 * range, lines over 64 KiB, and pipelined bad requests on one connection. Every line gets
 * a header that is JSON with a documented code (never INTERNAL), and the server keeps serving.
 *
 * Clients that never read (issue 14): a few connections pipeline thousands of requests
 * (the SDK bundle, record reads, topics, metrics) and never read an answer; the server
 * must not pile the answers up.
 *
 * Both: the server stays up, its RSS bounded, and nothing appears outside the data directory.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { ChunkReader } from '../../engine/codec/index.ts';
import { startServer, tempDir } from '../helpers/server.ts';
import { type Rng, assertAlive, assertNothingEscaped, badTopics, errorCodes, goodTopics, readBack, seeded, sumByKey } from './helpers.ts';

const HTTP_REQUESTS = 3000;
const REPLAY_LINES = 3000;
const CONCURRENCY = 16;
const RSS_GROWTH_BYTES_MAX = 96 * 1024 * 1024;
const BODY_BYTES_MAX = 64 * 1024; // max(--max-frame-bytes 65536, 64 KiB)

const weird: unknown[] = [-1, 0.5, 1e308, 2 ** 53, 2 ** 32, '1', '', null, true, [], {}, 'x'.repeat(300)];

function randomText(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += rng.chance(0.8) ? String.fromCharCode(32 + rng.int(95)) : rng.pick(['{', '}', '"', ':', ',', '[', ']', 'é', '😀', '\\']);
  return s;
}

/** A `{topic}` path segment; `deletable` never names a topic the fuzz publishes to (the ledger counts those). */
function topicSegment(rng: Rng, deletable = false): string {
  const r = rng.int(6);
  if (r < 2) return deletable ? 'fz.other' : encodeURIComponent(rng.pick(goodTopics));
  if (r < 4) return encodeURIComponent(rng.pick(badTopics));
  return rng.pick(['..%2F..%2Fx', '%2e%2e', 'a%2Fb', '%E0%A4%A', '%', '%00', '..', '.', 'x'.repeat(300), '%FF%FE']);
}

interface HttpCase {
  method: string;
  url: string;
  body?: string | Buffer;
  oversized?: boolean;
}

function httpCase(rng: Rng, base: string): HttpCase {
  const kind = rng.int(10);
  const t = topicSegment(rng);
  const d = topicSegment(rng, true);
  switch (kind) {
    case 0: {
      const records = Array.from({ length: 1 + rng.int(5) }, () => ({ value: randomText(rng, rng.int(50)), ...(rng.chance(0.3) ? { key: 'k' } : {}) }));
      return { method: 'POST', url: `${base}/v1/topics/${encodeURIComponent(rng.pick(goodTopics))}/records`, body: JSON.stringify({ records }) };
    }
    case 1:
      return { method: 'POST', url: `${base}/v1/topics/${t}/records`, body: rng.chance(0.5) ? randomText(rng, rng.int(300)) : Buffer.from(Array.from({ length: rng.int(300) }, () => rng.int(256))) };
    case 2: {
      // Records of the wrong shape.
      const rec: Record<string, unknown> = { value: 'x' };
      rec[rng.pick(['partition', 'key', 'value', 'value64', 'headers'])] = rng.pick(weird);
      const body = rng.chance(0.2) ? { records: rng.pick(weird) } : { records: [rec] };
      return { method: 'POST', url: `${base}/v1/topics/${t}/records`, body: JSON.stringify(body) };
    }
    case 3:
      return { method: 'PUT', url: `${base}/v1/topics/${t}`, body: JSON.stringify(rng.chance(0.5) ? { partitions: rng.pick([...weird, 1, 2]) } : { partitions: 1, retentionMs: rng.pick(weird) }) };
    case 4: {
      const q = [`partition=${rng.pick(['-1', '0.5', 'abc', '1e309', '99999', '0', ''])}`, `from=${rng.pick(['abc', '-5', '1e30', 'latest', 'earliest', '0', '9007199254740993'])}`, `limit=${rng.pick(['0', '-1', '1e9', 'abc', '10', '10001'])}`];
      return { method: 'GET', url: `${base}/v1/topics/${t}/records?${q.filter(() => rng.chance(0.7)).join('&')}` };
    }
    case 5:
      return { method: rng.pick(['PATCH', 'OPTIONS', 'DELETE', 'GET', 'HEAD']), url: `${base}${rng.pick(['/v1/topics', `/v1/topics/${d}`, `/v1/topics/${d}/records`, '/v1', '/v1/ws', `/${randomText(rng, 10).replace(/[^a-z]/gi, '')}`])}` };
    case 6:
      return { method: 'DELETE', url: `${base}/v1/topics/${d}` };
    case 7: {
      const post = rng.chance(0.5);
      return { method: post ? 'POST' : 'PUT', url: `${base}/v1/topics/${encodeURIComponent(rng.pick(goodTopics))}${post ? '/records' : ''}`, body: Buffer.alloc(BODY_BYTES_MAX + 1 + rng.int(100_000), 0x20), oversized: true };
    }
    case 8:
      return { method: 'GET', url: `${base}/v1/topics/${t}` };
    default:
      return { method: rng.pick(['GET', 'POST']), url: `${base}${rng.pick(['/healthz', '/readyz', '/metrics', '/v1/topics'])}`, body: undefined };
  }
}

/** Sends one replay line, returns the first chunk header (or null if the server closed first). */
function replayOnce(port: number, line: Buffer): Promise<any> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(line));
    const chunks = new ChunkReader();
    s.on('data', (d) => {
      chunks.push(d);
      try {
        const c = chunks.next();
        if (c !== null) {
          s.destroy();
          resolve(c.header);
        }
      } catch (err) {
        s.destroy();
        reject(err);
      }
    });
    s.on('close', () => resolve(null));
    s.on('error', (err) => {
      // The server may close a refused connection before our write ends.
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as NodeJS.ErrnoException).code === 'EPIPE') resolve(null);
      else reject(err);
    });
  });
}

function replayLine(rng: Rng): { line: Buffer; expectOk: boolean | null } {
  const kind = rng.int(8);
  switch (kind) {
    case 0: {
      const b = Buffer.from(Array.from({ length: 1 + rng.int(500) }, () => rng.int(256)));
      b[0] = 0x41; // not blank: a blank line is not a request and gets no answer
      return { line: Buffer.concat([b, Buffer.from('\n')]), expectOk: false };
    }
    case 1:
      return { line: Buffer.from(`x${randomText(rng, rng.int(300)).replace(/\n/g, ' ')}\n`), expectOk: false };
    case 2: {
      const req: Record<string, unknown> = { topic: rng.pick(goodTopics), partition: 0, from: 'earliest' };
      req[rng.pick(['topic', 'partition', 'from', 'to', 'maxBytes', 'follow', 'token', 'extra'])] = rng.pick(weird);
      return { line: Buffer.from(`${JSON.stringify(req)}\n`), expectOk: null };
    }
    case 3:
      return { line: Buffer.from(`${JSON.stringify({ topic: rng.pick(badTopics), partition: 0, from: 'earliest' })}\n`), expectOk: false };
    case 4:
      return { line: Buffer.from(`${JSON.stringify({ topic: rng.pick(goodTopics), partition: rng.pick([-1, 0.5, 2 ** 32, 1e308, 7]), from: rng.pick([-1, 2 ** 53, 'oldest', 1e308]) })}\n`), expectOk: false };
    case 5:
      return { line: Buffer.concat([Buffer.alloc(64 * 1024 + 1 + rng.int(10_000), 0x61), Buffer.from('\n')]), expectOk: false };
    case 6:
      return { line: Buffer.from(`${rng.pick(['[]', '1', 'null', '"x"', '{}', '{"topic":"fz"}', 'true'])}\n`), expectOk: false };
    default:
      return { line: Buffer.from(`${JSON.stringify({ topic: 'fz', partition: 0, from: 'earliest', to: 1 + rng.int(10) })}\n`), expectOk: null };
  }
}

async function pool<T>(n: number, items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

test(`HTTP API and replay port fuzz: ${HTTP_REQUESTS} requests, ${REPLAY_LINES} replay lines`, async () => {
  const rng = seeded('http-replay-fuzz');
  const root = tempDir('sluice-fuzz-');
  const srv = await startServer({ dataDir: path.join(root, 'data'), args: ['--max-frame-bytes', String(64 * 1024), '--linger-ms', '1'] });
  try {
    // Some data for the valid replays.
    await fetch(`${srv.http}/v1/topics/fz/records`, { method: 'POST', body: JSON.stringify({ records: Array.from({ length: 20 }, (_, i) => ({ value: `v${i}` })) }) });
    let acked = 20;
    const statuses = new Map<number, number>();
    const cases = Array.from({ length: HTTP_REQUESTS }, () => httpCase(rng, srv.http));
    let rssWarm = 0;
    let done = 0;
    await pool(CONCURRENCY, cases, async (c) => {
      let res: Response;
      try {
        res = await fetch(c.url, { method: c.method, body: typeof c.body === 'string' || c.body === undefined ? c.body : new Uint8Array(c.body), headers: c.body !== undefined ? { 'content-type': 'application/json' } : {} });
      } catch (err) {
        // An oversized body is answered 413 and the connection closed, possibly while the
        // client still writes: then the client sees the close instead of the answer.
        assert.ok(c.oversized, `${c.method} ${c.url}: ${(err as Error).message} (SEED=${rng.seed})`);
        return;
      }
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const where = `${c.method} ${c.url.slice(0, 120)} → ${res.status} ${text.slice(0, 200)} (SEED=${rng.seed})`;
      assert.ok([200, 201, 400, 404, 409, 413].includes(res.status), where);
      if (c.oversized) assert.equal(res.status, 413, where);
      if (res.status >= 400 && c.method !== 'HEAD') {
        const body = JSON.parse(text);
        assert.ok(errorCodes.has(body.code) && typeof body.message === 'string', where);
      }
      if (c.method === 'POST' && res.status === 200 && c.url.endsWith('/records')) acked += JSON.parse(text).offsets.length;
      if (++done === HTTP_REQUESTS / 10) rssWarm = srv.rss();
    });
    console.log(`http fuzz statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
    await assertAlive(srv.http);

    const headers = new Map<string, number>();
    const lines = Array.from({ length: REPLAY_LINES }, () => replayLine(rng));
    await pool(CONCURRENCY, lines, async ({ line, expectOk }) => {
      const h = await replayOnce(srv.replayPort, line);
      const where = `${line.subarray(0, 100).toString('hex')} → ${JSON.stringify(h)} (SEED=${rng.seed})`;
      assert.ok(h !== null, `no header for ${where}`);
      assert.equal(typeof h.ok, 'boolean', where);
      if (!h.ok) {
        assert.ok(errorCodes.has(h.code), where);
        assert.notEqual(h.code, 'INTERNAL', where);
      }
      if (expectOk !== null) assert.equal(h.ok, expectOk, where);
      const k = h.ok ? 'ok' : h.code;
      headers.set(k, (headers.get(k) ?? 0) + 1);
    });
    // Pipelined bad requests on one connection: each gets its error header, then a good one is served.
    const pipelined = await new Promise<any[]>((resolve, reject) => {
      const bad = Array.from({ length: 50 }, () => `${JSON.stringify({ topic: rng.pick(badTopics), partition: 0, from: 'earliest' })}\n`).join('');
      const s = net.connect(srv.replayPort, '127.0.0.1', () => s.end(`${bad}${JSON.stringify({ topic: 'fz', partition: 0, from: 'earliest', to: 1 })}\n`));
      let buf = Buffer.alloc(0);
      s.on('data', (d) => (buf = Buffer.concat([buf, d])));
      s.on('close', () => {
        const chunks = new ChunkReader();
        chunks.push(buf);
        const out: any[] = [];
        for (let c = chunks.next(); c !== null; c = chunks.next()) out.push(c.header);
        resolve(out);
      });
      s.on('error', reject);
    });
    assert.equal(pipelined.filter((h) => h.ok === false && h.code === 'BAD_REQUEST').length, 50);
    assert.ok(pipelined.some((h) => h.end === true), 'the good request after the bad ones was served');
    console.log(`replay fuzz headers: ${JSON.stringify(Object.fromEntries(headers))}`);

    // Clients that pipeline requests and never read: 4 connections, ~2 MB of requests each.
    const paths = ['/sluice-client.js', '/v1/topics/fz/records?limit=10000', '/v1/topics', '/metrics', '/healthz', '/'];
    const mutes = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const sock = net.connect(srv.port, '127.0.0.1');
        await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
        sock.pause();
        sock.on('error', () => {});
        const state = { sock, closed: false };
        sock.on('close', () => (state.closed = true));
        return state;
      }),
    );
    for (let round = 0; round < 40; round++) {
      for (const m of mutes) {
        if (m.closed) continue;
        const reqs = Array.from({ length: 500 }, () => `GET ${rng.pick(paths)} HTTP/1.1\r\nHost: fuzz\r\n\r\n`).join('');
        m.sock.write(reqs);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    for (let i = 0; i < 30 && mutes.some((m) => !m.closed); i++) await new Promise((r) => setTimeout(r, 100));
    const muteRss = srv.rss();
    for (const m of mutes) m.sock.destroy();
    assert.ok(muteRss - rssWarm < RSS_GROWTH_BYTES_MAX, `RSS grew from ${rssWarm} to ${muteRss} with clients that never read`);
    console.log(`clients that never read: ${mutes.filter((m) => m.closed).length} of ${mutes.length} closed by the server`);

    const rss = srv.rss();
    assert.ok(rss - rssWarm < RSS_GROWTH_BYTES_MAX, `RSS grew from ${rssWarm} to ${rss}`);
    await assertAlive(srv.http);
    const stored = await readBack(srv.http);
    assert.equal(sumByKey(stored), acked, `the log holds ${sumByKey(stored)} records, ${acked} were acked (SEED=${rng.seed})`);
    assert.equal(await srv.stop(), 0);
    assert.doesNotMatch(srv.stderr(), /"level":(50|60)/, 'the server logged an error');
    assertNothingEscaped(root);
  } finally {
    await srv.stop();
  }
});

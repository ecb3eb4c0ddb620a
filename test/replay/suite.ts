/**
 * The replay server's behaviour, run once per transfer path: replay-sendfile.test.ts (the
 * addon) and replay-fallback.test.ts (SLUICE_SENDFILE=off: read + write). Each test starts
 * its own log in its own temp dir. No wall-clock assertion anywhere: waits are bounded by
 * the test timeout, loops by counts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { LogManager, type StoredRecord, decodeBatches } from '../../engine/index.ts';
import { replay } from '../../src/client/replay.ts';
import * as limits from '../../src/replay/limits.ts';
import { RawClient, delay, fill, prng, startHarness, tempDir, valueFor } from './helpers.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
v8.setFlagsFromString('--expose-gc');

function checkRecords(records: StoredRecord[], from: number, count: number, valueBytes: number): void {
  assert.equal(records.length, count, 'record count');
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const offset = from + i;
    assert.equal(r.offset, offset, `offset at index ${i}`);
    assert.equal(Buffer.from(r.key!).toString(), `k${offset}`, `key of ${offset}`);
    assert.ok(Buffer.from(r.value!).equals(valueFor(offset, valueBytes)), `value of ${offset}`);
  }
}

async function collect(url: string, opts: Omit<Parameters<typeof replay>[0], 'url'>): Promise<{ records: StoredRecord[]; chunks: number; bytes: number; end: { next: number; hw: number } | null }> {
  const s = replay({ url, ...opts });
  const records: StoredRecord[] = [];
  let chunks = 0;
  let bytes = 0;
  const min = typeof opts.from === 'number' ? opts.from : -Infinity;
  for await (const c of s) {
    chunks++;
    bytes += c.bytes.length;
    for (const r of decodeBatches(c.bytes, min)) if (r.offset < (opts.to ?? Infinity)) records.push(r);
  }
  return { records, chunks, bytes, end: s.end };
}

export function defineReplaySuite(mode: 'sendfile' | 'fallback'): void {
  describe(`replay (${mode})`, () => {
    test('the transfer path is the one this file tests', async () => {
      const h = await startHarness();
      try {
        assert.equal(h.server.sendfile, mode === 'sendfile', 'server.sendfile');
      } finally {
        await h.close();
      }
    });

    for (const codec of ['none', 'lz4'] as const) {
      test(`a multi-segment partition replays record by record (${codec})`, async () => {
        const h = await startHarness({ segmentBytes: 64 * 1024 });
        try {
          await h.log.createTopic('t', { partitions: 2 });
          const p = h.log.partition('t', 1);
          const hw = await fill(p, 120, 7, 300, codec);
          assert.ok(p.segmentCount >= 4, `segments: ${p.segmentCount}`);
          const { records, end } = await collect(h.url, { topic: 't', partition: 1, from: 'earliest' });
          checkRecords(records, 0, hw, 300);
          assert.deepEqual(end, { next: hw, hw });
          // Partition 0 is empty: an immediate end.
          const empty = await collect(h.url, { topic: 't', partition: 0, from: 'earliest' });
          assert.equal(empty.records.length, 0);
          assert.deepEqual(empty.end, { next: 0, hw: 0 });
        } finally {
          await h.close();
        }
      });
    }

    test('a replay from the middle of a segment starts at that offset', async () => {
      const h = await startHarness({ segmentBytes: 64 * 1024 });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        const hw = await fill(p, 100, 5, 500);
        const from = 233; // inside a batch (base 230) inside a later segment
        const c = await RawClient.connect(h.url);
        c.send({ topic: 't', partition: 0, from });
        const { chunks, last } = await c.untilEnd();
        assert.equal(chunks[0].header.first, 230, 'the first chunk starts with the batch holding `from`');
        const records = chunks.flatMap((f) => decodeBatches(f.body, from));
        checkRecords(records, from, hw - from, 500);
        assert.deepEqual(last?.header, { ok: true, end: true, bytes: 0, next: hw, hw });
        for (const f of chunks) assert.equal(f.header.bytes, f.body.length);
        c.close();
      } finally {
        await h.close();
      }
    });

    test('`to` ends the replay; a batch straddling it is sent whole', async () => {
      const h = await startHarness({ segmentBytes: 64 * 1024 });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        await fill(p, 100, 10, 200);
        const c = await RawClient.connect(h.url);
        c.send({ topic: 't', partition: 0, from: 95, to: 412 });
        const { chunks, last } = await c.untilEnd();
        const all = chunks.flatMap((f) => decodeBatches(f.body));
        assert.equal(all[0].offset, 90);
        assert.equal(all[all.length - 1].offset, 419, 'the batch 410..419 straddles `to` and comes whole');
        assert.deepEqual(last?.header, { ok: true, end: true, bytes: 0, next: 420, hw: 1000 });
        // A `to` on a batch boundary sends nothing past it.
        c.send({ topic: 't', partition: 0, from: 0, to: 400 });
        const b = await c.untilEnd();
        assert.equal(b.chunks.flatMap((f) => decodeBatches(f.body)).at(-1)?.offset, 399);
        assert.equal(b.last?.header.next, 400);
        // to == from: nothing; to < from: BAD_REQUEST.
        c.send({ topic: 't', partition: 0, from: 50, to: 50 });
        const e = await c.untilEnd();
        assert.equal(e.chunks.length, 0);
        assert.equal(e.last?.header.next, 50);
        c.send({ topic: 't', partition: 0, from: 50, to: 49 });
        assert.equal((await c.frame())?.header.code, 'BAD_REQUEST');
        // The SDK's records() stops at `to`.
        const sdk = await collect(h.url, { topic: 't', partition: 0, from: 95, to: 412 });
        checkRecords(sdk.records, 95, 412 - 95, 200);
        c.close();
      } finally {
        await h.close();
      }
    });

    test('maxBytes bounds the body bytes, but at least one whole batch is sent', async () => {
      const h = await startHarness({ segmentBytes: 64 * 1024 });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        await fill(p, 100, 4, 1000);
        const batchBytes = p.read(0, 1)!.bytes.length;
        const c = await RawClient.connect(h.url);
        c.send({ topic: 't', partition: 0, from: 'earliest', maxBytes: 1 });
        let r = await c.untilEnd();
        assert.equal(r.chunks.length, 1);
        assert.equal(r.chunks[0].body.length, batchBytes, 'one whole batch');
        assert.equal(r.last?.header.next, 4);
        // Batch sizes differ a little (key and varint lengths): expect what the log holds.
        const sizes: number[] = [];
        for (let o = 8; o < p.hw; o += 4) sizes.push(p.read(o, 1)!.bytes.length);
        for (const maxBytes of [batchBytes, batchBytes * 3 + 1, batchBytes * 30 - 1, 200_000]) {
          let want = 0;
          let batches = 0;
          while (batches < sizes.length && (batches === 0 || want + sizes[batches] <= maxBytes)) want += sizes[batches++];
          c.send({ topic: 't', partition: 0, from: 8, maxBytes });
          r = await c.untilEnd();
          const total = r.chunks.reduce((n, f) => n + f.body.length, 0);
          assert.equal(total, want, `maxBytes ${maxBytes}`);
          assert.ok(total <= maxBytes || batches === 1);
          assert.equal(r.last?.header.next, 8 + batches * 4);
        }
        c.close();
      } finally {
        await h.close();
      }
    });

    test('follow streams appends as they come, and a new request line ends it', async () => {
      const h = await startHarness({ segmentBytes: 64 * 1024, flush: 'always' });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        await fill(p, 10, 5, 100);
        const c = await RawClient.connect(h.url);
        c.send({ topic: 't', partition: 0, from: 20, follow: true });
        const seen: StoredRecord[] = [];
        for (let i = 0; i < 40; i++) {
          // One batch at a time or two at once; the replay may be waiting or still sending.
          await fill(p, i % 3 === 0 ? 2 : 1, 5, 100);
          while (seen.length < p.hw - 20) {
            const f = await c.frame();
            assert.ok(f && f.header.ok && !f.header.end, `chunk expected, got ${JSON.stringify(f?.header)}`);
            seen.push(...decodeBatches(f.body, 20));
          }
        }
        checkRecords(seen, 20, p.hw - 20, 100);
        // Any new line ends the follow with an end chunk, then is served.
        c.send({ topic: 't', partition: 0, from: 0, maxBytes: 1 });
        const end = await c.untilEnd();
        assert.equal(end.chunks.length, 0);
        assert.deepEqual(end.last?.header, { ok: true, end: true, bytes: 0, next: p.hw, hw: p.hw });
        const next = await c.untilEnd();
        assert.equal(next.chunks.length, 1);
        assert.equal(next.last?.header.next, 5);
        c.close();
        // follow from "latest" with the SDK: sees only what is appended after.
        const s = replay({ url: h.url, topic: 't', partition: 0, from: 'latest', follow: true });
        const start = p.hw;
        const got: number[] = [];
        const reader = (async () => {
          for await (const r of s.records()) {
            got.push(r.offset);
            if (got.length === 15) break;
          }
        })();
        // The request may reach the server after some of these appends: keep appending until seen.
        for (let i = 0; i < 1000 && got.length < 15; i++) {
          await fill(p, 1, 5, 100);
          await delay(5);
        }
        await reader;
        assert.equal(got.length, 15);
        assert.ok(got[0] >= start);
        for (let i = 1; i < got.length; i++) assert.equal(got[i], got[0] + i);
      } finally {
        await h.close();
      }
    });

    test('two requests on one connection, sequential and pipelined', async () => {
      const h = await startHarness({ segmentBytes: 64 * 1024 });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        const hw = await fill(p, 60, 10, 250);
        const c = await RawClient.connect(h.url);
        c.send({ topic: 't', partition: 0, from: 0, to: 100 });
        const a = await c.untilEnd();
        checkRecords(a.chunks.flatMap((f) => decodeBatches(f.body)), 0, 100, 250);
        c.send({ topic: 't', partition: 0, from: 100 });
        const b = await c.untilEnd();
        checkRecords(b.chunks.flatMap((f) => decodeBatches(f.body)), 100, hw - 100, 250);
        // Three lines in one write, an unknown topic in the middle.
        c.send(
          `${JSON.stringify({ topic: 't', partition: 0, from: 'earliest', to: 30 })}\n${JSON.stringify({ topic: 'nope', partition: 0, from: 0 })}\n` +
            `${JSON.stringify({ topic: 't', partition: 0, from: 'latest' })}\n`,
        );
        const x = await c.untilEnd();
        assert.equal(x.last?.header.next, 30);
        const y = await c.untilEnd();
        assert.equal(y.last?.header.code, 'UNKNOWN_TOPIC');
        const z = await c.untilEnd();
        assert.deepEqual(z.last?.header, { ok: true, end: true, bytes: 0, next: hw, hw });
        c.close();
      } finally {
        await h.close();
      }
    });

    test('concurrent replays each get the whole partition', async () => {
      const h = await startHarness({ segmentBytes: 256 * 1024 });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        const hw = await fill(p, 400, 10, 500, 'lz4');
        const runs = await Promise.all(Array.from({ length: 12 }, (_, i) => collect(h.url, { topic: 't', partition: 0, from: i * 7 })));
        runs.forEach((r, i) => checkRecords(r.records, i * 7, hw - i * 7, 500));
        assert.equal(h.server.inFlight, 0);
      } finally {
        await h.close();
      }
    });

    test('a small replay is not held up behind a large one (fairness)', async () => {
      const h = await startHarness({ segmentBytes: 256 * 1024 * 1024 });
      try {
        await h.log.createTopic('big', { partitions: 1 });
        await h.log.createTopic('small', { partitions: 1 });
        await fill(h.log.partition('big', 0), 512, 64, 4000); // ~ 128 MiB
        await fill(h.log.partition('small', 0), 3, 2, 10);
        const total = h.log.partition('big', 0).bytes;
        const big = await RawClient.connect(h.url);
        big.send({ topic: 'big', partition: 0, from: 'earliest' });
        for (let i = 0; i < 2000 && big.received < 1024 * 1024; i++) await delay(1);
        const small = await collect(h.url, { topic: 'small', partition: 0, from: 0 });
        const bigReceivedWhenSmallEnded = big.received;
        assert.deepEqual(small.end, { next: 6, hw: 6 });
        assert.ok(bigReceivedWhenSmallEnded < total, `the small replay ended only after the large one had sent all ${total} bytes`);
        const rest = await big.untilEnd();
        assert.equal(rest.last?.header.end, true);
        big.close();
      } finally {
        await h.close();
      }
    });

    test('the SDK rejects with the wire code, and leaving the loop early closes the replay', async () => {
      const h = await startHarness({ segmentBytes: 64 * 1024 });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        await fill(p, 200, 10, 500);
        await assert.rejects(
          async () => {
            for await (const _ of replay({ url: h.url, topic: 'nope', partition: 0, from: 0 })) void _;
          },
          (err: Error & { code?: string }) => err.code === 'UNKNOWN_TOPIC',
        );
        await assert.rejects(
          async () => {
            for await (const _ of replay({ url: h.url, topic: 't', partition: 0, from: 5000 }).records()) void _;
          },
          (err: Error & { code?: string }) => err.code === 'OFFSET_OUT_OF_RANGE',
        );
        // A follow replay left after a few records: the server sees the close and frees it.
        let n = 0;
        for await (const r of replay({ url: h.url, topic: 't', partition: 0, from: 'earliest', follow: true }).records()) {
          assert.equal(r.offset, n);
          if (++n === 25) break;
        }
        for (let i = 0; i < 2000 && h.server.inFlight > 0; i++) await delay(2);
        assert.equal(h.server.inFlight, 0);
        // A slow consumer: the SDK pauses the socket above its high-water mark and still
        // gets every record in order.
        const slow = replay({ url: h.url, topic: 't', partition: 0, from: 0, highWaterMarkBytes: 64 * 1024 });
        let next = 0;
        for await (const r of slow.records()) {
          assert.equal(r.offset, next++);
          if (next % 500 === 0) await delay(1);
        }
        assert.equal(next, p.hw);
        assert.deepEqual(slow.end, { next: p.hw, hw: p.hw });
      } finally {
        await h.close();
      }
    });

    test('bad requests get errors and the connection stays', async () => {
      const h = await startHarness({ segmentBytes: 64 * 1024 });
      try {
        await h.log.createTopic('t', { partitions: 2 });
        await fill(h.log.partition('t', 0), 20, 5, 100);
        const c = await RawClient.connect(h.url);
        const cases: [unknown, string][] = [
          [{ topic: 'nope', partition: 0, from: 0 }, 'UNKNOWN_TOPIC'],
          [{ topic: 't', partition: 2, from: 0 }, 'BAD_REQUEST'],
          [{ topic: 't', partition: 0, from: 101 }, 'OFFSET_OUT_OF_RANGE'],
          [{ topic: 't', partition: 0, from: -1 }, 'BAD_REQUEST'],
          [{ topic: 't', partition: 0, from: 1.5 }, 'BAD_REQUEST'],
          [{ topic: 't', partition: 0, from: 'first' }, 'BAD_REQUEST'],
          [{ topic: 't', partition: 0 }, 'BAD_REQUEST'],
          [{ topic: '../etc', partition: 0, from: 0 }, 'BAD_REQUEST'],
          [{ topic: 't', partition: 0, from: 0, maxBytes: 0 }, 'BAD_REQUEST'],
          [{ topic: 't', partition: 0, from: 0, follow: 'yes' }, 'BAD_REQUEST'],
          [{ topic: 't', partition: 0, from: 0, maxbytes: 10 }, 'BAD_REQUEST'],
          [[1, 2, 3], 'BAD_REQUEST'],
          ['"a string"', 'BAD_REQUEST'],
          [null, 'BAD_REQUEST'],
        ];
        for (const [req, code] of cases) {
          c.send(`${typeof req === 'string' ? req : JSON.stringify(req)}\n`);
          const f = await c.frame();
          assert.equal(f?.header.ok, false, JSON.stringify(req));
          assert.equal(f?.header.code, code, `${JSON.stringify(req)}: ${f?.header.message}`);
          assert.equal(typeof f?.header.message, 'string');
        }
        // Blank lines are skipped; the token is accepted and ignored while auth is off.
        c.send(`\r\n\n${JSON.stringify({ topic: 't', partition: 0, from: 0, token: 'whatever' })}\n`);
        assert.equal((await c.untilEnd()).last?.header.next, 100);
        c.close();
      } finally {
        await h.close();
      }
    });

    test('a line that is not JSON, or over requestLineBytesMax, closes the connection', async () => {
      const h = await startHarness();
      try {
        await h.log.createTopic('t', { partitions: 1 });
        await fill(h.log.partition('t', 0), 3, 2, 10);
        const a = await RawClient.connect(h.url);
        a.send('{"topic": "t", \n');
        assert.equal((await a.frame())?.header.code, 'BAD_REQUEST');
        await a.closed();
        // Exactly at the limit is fine (padded with spaces), one byte more is not.
        const req = JSON.stringify({ topic: 't', partition: 0, from: 0 });
        const b = await RawClient.connect(h.url);
        b.send(`${req.padEnd(limits.requestLineBytesMax, ' ')}\n`);
        assert.equal((await b.untilEnd()).last?.header.next, 6);
        b.send(`${req.padEnd(limits.requestLineBytesMax + 1, ' ')}\n`);
        assert.equal((await b.frame())?.header.code, 'TOO_LARGE');
        await b.closed();
        // No newline at all: closed once the limit is crossed.
        const c = await RawClient.connect(h.url);
        c.send('x'.repeat(limits.requestLineBytesMax + 10));
        assert.equal((await c.frame())?.header.code, 'TOO_LARGE');
        await c.closed();
      } finally {
        await h.close();
      }
    });

    test('random bytes never crash the server', async () => {
      const h = await startHarness();
      try {
        await h.log.createTopic('t', { partitions: 1 });
        await fill(h.log.partition('t', 0), 5, 2, 10);
        const seed = Number(process.env.SEED ?? Date.now() % 1e9);
        const rnd = prng(seed);
        for (let i = 0; i < 60; i++) {
          const c = await RawClient.connect(h.url);
          const n = 1 + Math.floor(rnd() * (i % 10 === 0 ? 80_000 : 300));
          const bytes = Buffer.alloc(n);
          for (let j = 0; j < n; j++) bytes[j] = Math.floor(rnd() * 256);
          if (i % 2 === 0) bytes[n - 1] = 0x0a;
          c.socket.end(bytes);
          // Whatever comes back must be well-formed error frames, then the close.
          for (;;) {
            const f = await c.frame();
            if (f === null) break;
            assert.equal(f.header.ok, false, `seed ${seed} case ${i}: ${JSON.stringify(f.header)}`);
          }
          c.close();
        }
        const { end } = await collect(h.url, { topic: 't', partition: 0, from: 0 });
        assert.deepEqual(end, { next: 10, hw: 10 }, `seed ${seed}: server still serves`);
      } finally {
        await h.close();
      }
    });

    test(`replaysInFlightMax (${limits.replaysInFlightMax}) replays run at once; one more gets UNAVAILABLE`, async () => {
      const h = await startHarness();
      const clients: RawClient[] = [];
      try {
        await h.log.createTopic('t', { partitions: 1 });
        for (let i = 0; i < limits.replaysInFlightMax; i++) {
          const c = await RawClient.connect(h.url);
          c.send({ topic: 't', partition: 0, from: 'latest', follow: true });
          clients.push(c);
        }
        for (let i = 0; i < 2000 && h.server.inFlight < limits.replaysInFlightMax; i++) await delay(5);
        assert.equal(h.server.inFlight, limits.replaysInFlightMax);
        const extra = await RawClient.connect(h.url);
        extra.send({ topic: 't', partition: 0, from: 'earliest' });
        const f = await extra.frame();
        assert.equal(f?.header.code, 'UNAVAILABLE');
        // One follow stops (a new line ends it): room for one more.
        clients[0].send({ topic: 't', partition: 0, from: 'latest' });
        assert.equal((await clients[0].frame())?.header.end, true);
        assert.equal((await clients[0].frame())?.header.end, true);
        extra.send({ topic: 't', partition: 0, from: 'earliest' });
        assert.equal((await extra.frame())?.header.end, true);
        extra.close();
      } finally {
        for (const c of clients) c.close();
        await h.close();
      }
    });

    test('clients that stop reading hold nothing beyond their socket buffers', async () => {
      const h = await startHarness({ segmentBytes: 16 * 1024 * 1024 });
      const clients: RawClient[] = [];
      try {
        await h.log.createTopic('t', { partitions: 1 });
        await fill(h.log.partition('t', 0), 32 * 16, 64, 1000); // ~ 32 MiB
        const gc = runInNewContext('gc') as () => void;
        gc();
        const before = process.memoryUsage().arrayBuffers;
        for (let i = 0; i < 8; i++) {
          const c = await RawClient.connect(h.url);
          c.socket.pause(); // never reads: the server fills the socket buffers, then waits
          c.send({ topic: 't', partition: 0, from: 'earliest' });
          clients.push(c);
        }
        for (let i = 0; i < 2000 && h.server.inFlight < 8; i++) await delay(5);
        assert.equal(h.server.inFlight, 8);
        await delay(200); // let every transfer run into its full socket buffer
        // V8 frees array buffer memory lazily after a collection: collect twice, a little apart.
        gc();
        await delay(50);
        gc();
        const grown = process.memoryUsage().arrayBuffers - before;
        // The fallback holds one read buffer (1 MiB) per stalled replay, sendfile none; the
        // bound leaves room for garbage not yet freed, far below the 256 MiB a server that
        // buffered the replays would hold.
        assert.ok(grown < 8 * 4 * 1024 * 1024, `array buffers grew by ${grown} bytes for 8 stalled replays of 32 MiB`);
      } finally {
        for (const c of clients) c.close();
        await h.close();
      }
    });

    test('retention deleting the segment being sent: the chunk completes, then a clean error', async () => {
      const segmentBytes = 16 * 1024 * 1024; // larger than the socket buffers, so the transfer parks inside it
      const h = await startHarness({ segmentBytes });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        await fill(p, 3 * 16 * 16, 64, 1000); // ~ 3 segments of 16 MiB
        assert.ok(p.segmentCount >= 3);
        const c = await RawClient.connect(h.url);
        c.send({ topic: 't', partition: 0, from: 'earliest' });
        for (let i = 0; i < 2000 && c.received < 64 * 1024; i++) await delay(2);
        c.socket.pause();
        await delay(100); // let the server fill the socket buffers and park
        assert.equal(h.server.inFlight, 1);
        const firstFile = path.join(h.dir, 't-0', '00000000000000000000.log');
        assert.ok(fs.existsSync(firstFile));
        const secondBase = Number(fs.readdirSync(path.join(h.dir, 't-0')).filter((n) => n.endsWith('.log')).sort()[1].slice(0, 20));
        p.retentionBytes = 1; // keep only the active segment
        assert.ok(p.enforceRetention() >= 2);
        assert.ok(!fs.existsSync(firstFile), 'the segment being sent was deleted');
        c.socket.resume();
        const { chunks, last } = await c.untilEnd();
        const records = chunks.flatMap((f) => decodeBatches(f.body));
        assert.ok(records.length > 0);
        checkRecords(records, 0, records.length, 1000);
        // The server was inside the first 16 MiB segment (the client had taken 64 KiB and
        // the socket buffers hold far less than 16 MiB): whatever it had started comes whole,
        // then it says that retention took the rest.
        assert.ok(last, 'an error header, not a dropped connection');
        assert.equal(last.header.code, 'OFFSET_OUT_OF_RANGE', JSON.stringify(last.header));
        assert.match(last.header.message!, /retention/);
        assert.ok(records.length <= secondBase, `${records.length} records, the first segment held ${secondBase}`);
        // Same connection, same process: the log now starts later.
        c.send({ topic: 't', partition: 0, from: 'earliest', maxBytes: 1 });
        const again = await c.untilEnd();
        assert.equal(again.chunks[0].header.first, p.startOffset);
        c.close();
      } finally {
        await h.close();
      }
    });

    test('a segment file gone from the directory gives a clean error, and the server goes on', async () => {
      const h = await startHarness({ segmentBytes: 64 * 1024 });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        const hw = await fill(p, 60, 10, 250);
        assert.ok(p.segmentCount >= 3);
        // Removed behind the engine's back (an operator, a bad disk): the engine still
        // holds its descriptor and mapping, but the replay opens the path and gets ENOENT.
        fs.rmSync(path.join(h.dir, 't-0', '00000000000000000000.log'));
        const c = await RawClient.connect(h.url);
        c.send({ topic: 't', partition: 0, from: 'earliest' });
        const { chunks, last } = await c.untilEnd();
        assert.equal(chunks.length, 0);
        assert.equal(last?.header.code, 'UNAVAILABLE');
        assert.match(last!.header.message!, /ENOENT/);
        // Later segments still replay, on the same connection.
        const from = h.log.describe('t').partitions[0].hw - 100;
        c.send({ topic: 't', partition: 0, from });
        const rest = await c.untilEnd();
        checkRecords(rest.chunks.flatMap((f) => decodeBatches(f.body, from)), from, hw - from, 250);
        c.close();
      } finally {
        await h.close();
      }
    });

    test('shutdown ends replays in flight with UNAVAILABLE and closes every connection', async () => {
      const h = await startHarness();
      await h.log.createTopic('t', { partitions: 1 });
      await fill(h.log.partition('t', 0), 5, 2, 10);
      const following = await RawClient.connect(h.url);
      following.send({ topic: 't', partition: 0, from: 0, follow: true });
      assert.equal((await following.frame())?.header.ok, true);
      const idle = await RawClient.connect(h.url);
      for (let i = 0; i < 2000 && h.server.connections < 2; i++) await delay(2);
      await h.close();
      const f = await following.frame();
      assert.equal(f?.header.code, 'UNAVAILABLE');
      await following.closed();
      await idle.closed();
    });

    test('chunks stay within chunkBytesMax', async () => {
      const h = await startHarness({ segmentBytes: 128 * 1024 * 1024 });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        const hw = await fill(p, 320, 64, 4000); // ~ 80 MiB of 256 KB batches in one segment
        assert.equal(p.segmentCount, 1);
        const c = await RawClient.connect(h.url);
        c.send({ topic: 't', partition: 0, from: 'earliest' });
        const { chunks, last } = await c.untilEnd();
        for (const f of chunks) assert.ok(f.body.length <= limits.chunkBytesMax, `chunk of ${f.body.length}`);
        assert.ok(chunks.some((f) => f.body.length > limits.chunkBytesMax / 2), 'large batches get large chunks');
        checkRecords(chunks.flatMap((f) => decodeBatches(f.body)), 0, hw, 4000);
        assert.equal(last?.header.next, hw);
        c.close();
      } finally {
        await h.close();
      }
    });

    test('chunks of tiny batches stay within chunkBatchesMax batches', async () => {
      const h = await startHarness({ segmentBytes: 64 * 1024 * 1024 });
      try {
        await h.log.createTopic('t', { partitions: 1 });
        const p = h.log.partition('t', 0);
        const hw = await fill(p, 40_000, 1, 8); // one-record batches of ~80 bytes
        const c = await RawClient.connect(h.url);
        c.send({ topic: 't', partition: 0, from: 'earliest' });
        const { chunks, last } = await c.untilEnd();
        assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
        for (const f of chunks) {
          const n = decodeBatches(f.body).length; // one record per batch
          assert.ok(n <= limits.chunkBatchesMax, `a chunk of ${n} batches`);
        }
        checkRecords(chunks.flatMap((f) => decodeBatches(f.body)), 0, hw, 8);
        assert.equal(last?.header.next, hw);
        c.close();
      } finally {
        await h.close();
      }
    });

    test('a follow replay ends with UNKNOWN_TOPIC when its topic is deleted (followCheckMs)', async () => {
      const h = await startHarness();
      try {
        await h.log.createTopic('t', { partitions: 1 });
        await fill(h.log.partition('t', 0), 2, 2, 10);
        const c = await RawClient.connect(h.url);
        c.send({ topic: 't', partition: 0, from: 0, follow: true });
        assert.equal((await c.frame())?.header.ok, true);
        await h.log.deleteTopic('t');
        const f = await c.frame();
        assert.equal(f?.header.code, 'UNKNOWN_TOPIC');
        c.close();
      } finally {
        await h.close();
      }
    });

    test('shutdown does not wait beyond shutdownGraceMs for a client that stopped reading', async () => {
      const h = await startHarness({ segmentBytes: 64 * 1024 * 1024 });
      await h.log.createTopic('t', { partitions: 1 });
      await fill(h.log.partition('t', 0), 32 * 16, 64, 1000); // ~ 32 MiB: more than the socket buffers hold
      const stalled = await RawClient.connect(h.url);
      stalled.socket.pause();
      stalled.send({ topic: 't', partition: 0, from: 0 });
      for (let i = 0; i < 2000 && h.server.inFlight < 1; i++) await delay(5);
      await h.close();
      stalled.socket.resume();
      await stalled.closed();
      assert.equal(h.server.connections, 0);
    });

    test('with auth on, the token is checked against acl.sub', async () => {
      const secret = 'a-test-secret-that-is-long-enough-for-hs256!';
      const h = await startHarness({ config: { authSecret: secret } });
      const key = new TextEncoder().encode(secret);
      const mint = (claims: Record<string, unknown>, exp?: number) => {
        const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' });
        if (exp !== undefined) jwt.setExpirationTime(exp);
        return jwt.sign(key);
      };
      try {
        await h.log.createTopic('orders', { partitions: 1 });
        await h.log.createTopic('secret', { partitions: 1 });
        await fill(h.log.partition('orders', 0), 3, 2, 10);
        const good = await mint({ acl: { sub: ['ord*'] } });
        const [head, body, sig] = good.split('.');
        const tampered = `${head}.${body}.${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`; // the first signature character carries 6 real bits
        const c = await RawClient.connect(h.url);
        const cases: [Record<string, unknown>, string][] = [
          [{ topic: 'orders', partition: 0, from: 0 }, 'UNAUTHORIZED'],
          [{ topic: 'orders', partition: 0, from: 0, token: 'not.a.jwt' }, 'UNAUTHORIZED'],
          [{ topic: 'orders', partition: 0, from: 0, token: await new SignJWT({ acl: { sub: ['*'] } }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-another-secret-another!')) }, 'UNAUTHORIZED'],
          [{ topic: 'secret', partition: 0, from: 0, token: good }, 'FORBIDDEN'],
          [{ topic: 'orders', partition: 0, from: 0, token: tampered }, 'UNAUTHORIZED'],
          // Without rights, a missing topic is FORBIDDEN too: nothing about topics leaks.
          [{ topic: 'nothere', partition: 0, from: 0, token: good }, 'FORBIDDEN'],
          [{ topic: 'order-x', partition: 0, from: 0, token: good }, 'UNKNOWN_TOPIC'],
        ];
        for (const [req, code] of cases) {
          c.send(req);
          const f = await c.frame();
          assert.equal(f?.header.code, code, `${JSON.stringify(req).slice(0, 80)}: ${f?.header.message}`);
        }
        c.send({ topic: 'orders', partition: 0, from: 0, token: good });
        assert.deepEqual((await c.untilEnd()).last?.header, { ok: true, end: true, bytes: 0, next: 6, hw: 6 });
        // A token inside its 30 s leeway past exp verifies now and expires within a second:
        // the follow replay ends with UNAUTHORIZED at its next check (followCheckMs).
        const soon = await mint({ acl: { sub: ['orders'] } }, Math.floor(Date.now() / 1000) - 29);
        c.send({ topic: 'orders', partition: 0, from: 0, follow: true, token: soon });
        const { chunks, last } = await c.untilEnd();
        assert.ok(chunks.length <= 1);
        assert.equal(last?.header.code, 'UNAUTHORIZED');
        assert.match(last!.header.message!, /expired/);
        c.close();
      } finally {
        await h.close();
      }
    });

    test('sluice serve: a replay through the real process', async () => {
      const dir = tempDir();
      try {
        const log = await LogManager.open({ dataDir: dir, segmentBytes: 64 * 1024, flush: 'never', retentionCheckMs: 0 });
        await log.createTopic('t', { partitions: 1 });
        const hw = await fill(log.partition('t', 0), 80, 5, 400, 'lz4');
        await log.close();
        const child = spawn(process.execPath, [path.join(repoRoot, 'bin/sluice.js'), 'serve', '--port', '0', '--replay-port', '0', '--kafka-port', '0', '--data-dir', dir, '--segment-bytes', '65536', '--log-level', 'warn'], {
          cwd: repoRoot,
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        try {
          const line = await new Promise<string>((resolve, reject) => {
            readline.createInterface({ input: child.stdout! }).once('line', resolve);
            child.once('exit', (code) => reject(new Error(`sluice serve exited with ${code}`)));
          });
          const listening = JSON.parse(line) as { event: string; port: number; replayPort: number };
          assert.equal(listening.event, 'listening');
          const url = `tcp://127.0.0.1:${listening.replayPort}`;
          const all = await collect(url, { topic: 't', partition: 0, from: 'earliest' });
          checkRecords(all.records, 0, hw, 400);
          const c = await RawClient.connect(url);
          c.socket.write(Buffer.from([0xff, 0x00, 0x0a, 0x7b, 0x0a]));
          await c.closed();
          const again = await collect(url, { topic: 't', partition: 0, from: 17, to: 33 });
          checkRecords(again.records, 17, 16, 400);
        } finally {
          const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
          child.kill('SIGTERM');
          assert.equal(await exited, 0, 'clean exit on SIGTERM');
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

/**
 * Slow and stalled subscribers: the server's memory stays bounded while one does not read,
 * everything arrives afterwards in order, and — the regression test for uWS 20.30's
 * ≥16 KiB payload-loss bug (uWebSockets PR #1662) — at least 100,000 DATA frames of
 * 16 KiB and more pushed through a reader that keeps pausing arrive with every byte right,
 * once as is and once with the server's socket writes cut short by an LD_PRELOAD shim
 * (test/fixtures/short-writes.c), which makes uWS lose payloads without the workaround.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { decodeBatches, encodeRecordBatch } from '../../engine/codec/index.ts';
import { installNativeCodecs } from '../../engine/index.ts';
import { parseDataFrame, produceFrame } from '../../src/gateway/frames.ts';
import { Client, http, startServer, tempDir } from '../helpers/server.ts';

installNativeCodecs();
const PAUSE_EVERY = Number(process.env.PAUSE_EVERY ?? 200);
const PAUSE_MS = Number(process.env.PAUSE_MS ?? 20);

/** Sends PRODUCE frames keeping at most `window` unanswered; resolves when all are acked. */
async function produceAll(c: Client, topic: string, count: number, batchFor: (i: number) => Uint8Array, window = 32): Promise<void> {
  let acked = 0;
  let sent = 0;
  let failed: any = null;
  const onMsg = (data: Buffer, isBinary: boolean) => {
    if (isBinary) return;
    const m = JSON.parse(data.toString());
    if (m.op === 'ack') acked++;
    else if (m.op === 'error') failed = m;
  };
  c.ws.on('message', onMsg);
  try {
    while (acked < count) {
      if (failed) throw new Error(`publish failed: ${JSON.stringify(failed)}`);
      while (sent < count && sent - acked < window) c.ws.send(produceFrame(sent, topic, 0, batchFor(sent++)));
      await c.until(() => acked === count || (sent < count && sent - acked < window) || failed !== null, 'acks', 120_000);
    }
  } finally {
    c.ws.off('message', onMsg);
    c.messages.length = 0;
  }
}

test('a paused subscriber keeps the server RSS bounded while 64 MB are published, then gets everything in order', async () => {
  const srv = await startServer({ args: ['--flush', 'never'] });
  try {
    const pub = await Client.connect(srv.url);
    pub.decode = false;
    const sub = await Client.connect(srv.url);
    sub.decode = false;
    let next = 0;
    let bad = '';
    sub.onData = (frame) => {
      for (const r of decodeBatches(parseDataFrame(frame).batches, next)) {
        if (r.offset !== next && !bad) bad = `offset ${r.offset}, expected ${next}`;
        if (r.value![0] !== (r.offset & 0xff) && !bad) bad = `value of ${r.offset}`;
        next = r.offset + 1;
      }
    };
    await pub.request({ op: 'pub', topic: 'stall', value: 'warm-up' });
    next = 1;
    await sub.request({ op: 'sub', topic: 'stall', from: 'latest' });
    // Stop reading: the kernel buffers fill, then uWS's, then the server must stop sending.
    (sub.ws as any)._socket.pause();
    const baseline = srv.rss();
    const perBatch = 500;
    const batches = 128; // 128 x 500 x 1000 B = 64 MB
    let maxRss = baseline;
    await produceAll(pub, 'stall', batches, (i) => {
      if (i % 16 === 0) maxRss = Math.max(maxRss, srv.rss());
      return encodeRecordBatch(Array.from({ length: perBatch }, (_, j) => ({ value: Buffer.alloc(1000, (1 + i * perBatch + j) & 0xff) })));
    });
    maxRss = Math.max(maxRss, srv.rss());
    const total = 1 + batches * perBatch;
    // Generous: a server that queued the stalled subscriber's 64 MB would be far above it
    // (each more thread of the front adds a heap and a malloc arena holding garbage a while:
    // ~25-35 MiB of growth was seen here at 1 and at 2 threads alike).
    const threads = Number(process.env.SLUICE_THREADS ?? 1);
    const allowedMiB = 48 + 16 * (threads - 1);
    console.log(`# server RSS: baseline ${(baseline / 1048576).toFixed(1)} MiB, max while stalled ${(maxRss / 1048576).toFixed(1)} MiB (${threads} thread(s), ${allowedMiB} MiB allowed)`);
    assert.ok(maxRss - baseline < allowedMiB * 1024 * 1024, `RSS grew by ${((maxRss - baseline) / 1048576).toFixed(1)} MiB (baseline ${(baseline / 1048576).toFixed(1)} MiB)`);
    (sub.ws as any)._socket.resume();
    await sub.until(() => next === total || bad !== '', 'every record', 120_000);
    assert.equal(bad, '');
    assert.equal(next, total);
    pub.close();
    sub.close();
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

async function largeFrames(env: NodeJS.ProcessEnv = {}): Promise<void> {
  const srv = await startServer({ args: ['--flush', 'never'], env });
  try {
    const valueBytes = 16_400;
    const pattern = Buffer.alloc(valueBytes + 256);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + (i >> 8)) & 0xff;
    const valueOf = (offset: number) => pattern.subarray(offset & 0xff, (offset & 0xff) + valueBytes);
    const pub = await Client.connect(srv.url);
    pub.decode = false;
    const sub = await Client.connect(srv.url);
    sub.decode = false;
    let frames = 0;
    let small = 0;
    let next = 0;
    let bad = '';
    sub.onData = (frame) => {
      frames++;
      if (frame.length < 16_384) small++;
      // decodeBatches checks each batch's CRC-32C; the values are compared byte for byte.
      for (const r of decodeBatches(parseDataFrame(frame).batches, next)) {
        if (!bad && r.offset !== next) bad = `offset ${r.offset}, expected ${next}`;
        if (!bad && !valueOf(r.offset).equals(r.value!)) bad = `value of offset ${r.offset} differs`;
        next = r.offset + 1;
      }
      // A slow reader: stop reading now and then so the server's writes back up. The first
      // stop lasts until the server has moved a subscriber to disk reads (or 30 s): whether
      // short pauses alone back it up that far depends on the machine's speed and load.
      if (frames === PAUSE_EVERY) {
        const sock = (sub.ws as any)._socket;
        sock.pause();
        void (async () => {
          const deadline = Date.now() + 30_000;
          while ((await fallbacks()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
          sock.resume();
        })();
      } else if (frames % PAUSE_EVERY === 0) {
        const sock = (sub.ws as any)._socket;
        sock.pause();
        setTimeout(() => sock.resume(), PAUSE_MS);
      }
    };
    const fallbacks = async (): Promise<number> => {
      const metrics = (await http('GET', `${srv.http}/metrics`)).text;
      return Number(/^sluice_subscriber_fallbacks_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    };
    assert.equal((await http('PUT', `${srv.http}/v1/topics/big`, { partitions: 1 })).status, 201);
    await sub.request({ op: 'sub', topic: 'big', from: 'earliest' });
    let published = 0;
    // Catch-up frames may carry several batches, so publish until 100,000 frames have arrived.
    // A reader that falls to the disk path gets several batches per frame, and how often it does
    // depends on the machine's load: size each later round from the records-per-frame seen so
    // far. Bounded: at most 12 rounds, each at most 400,000 records.
    for (let round = 0; round < 12 && frames < 100_000; round++) {
      const perFrame = frames > 0 ? published / frames : 1;
      const n = round === 0 ? 100_000 : Math.min(400_000, Math.max(5_000, Math.ceil((100_000 - frames) * perFrame * 1.2)));
      const base = published;
      await produceAll(pub, 'big', n, (i) => encodeRecordBatch([{ value: valueOf(base + i) }]), 64);
      published += n;
      await sub.until(() => next === published || bad !== '', 'every record of the round', 180_000);
      assert.equal(bad, '');
    }
    assert.equal(bad, '');
    assert.equal(small, 0, 'every DATA frame is 16 KiB or more');
    assert.ok(frames >= 100_000, `only ${frames} frames`);
    assert.equal(next, published);
    // The reader was slow enough to leave the live path for disk reads, and came back.
    const fellBack = await fallbacks();
    console.log(`# ${frames} DATA frames, ${published} records of ${valueBytes} B checked, ${fellBack} fallbacks to disk`);
    assert.ok(fellBack > 0, 'the slow reader never left the live path');
    pub.close();
    sub.close();
  } finally {
    assert.equal(await srv.stop(), 0);
  }
}

test('100,000+ DATA frames of 16 KiB and more through a reader that keeps pausing: every byte right (uWS ≥16 KiB bug)', async () => {
  await largeFrames();
});

/** Builds test/fixtures/short-writes.c; null when there is no C compiler. */
function buildShortWritesShim(): string | null {
  const out = path.join(tempDir('sluice-shim-'), 'short-writes.so');
  const src = fileURLToPath(new URL('../fixtures/short-writes.c', import.meta.url));
  const r = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', out, src, '-ldl'], { stdio: 'ignore' });
  return r.status === 0 ? out : null;
}

const shim = buildShortWritesShim();
test('the same with the server socket writes often cut short (regression test for uWS PR #1662)', { skip: shim ? false : 'no C compiler (cc) to build the short-write shim' }, async () => {
  await largeFrames({ LD_PRELOAD: shim! });
});

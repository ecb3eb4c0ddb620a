/**
 * Question: how fast is the client SDK where it spends its time?
 *   1. decode: DATA frames of LZ4 batches of 100-byte records → Message objects, records/s,
 *      in Node (native codecs, and the portable ones the browser bundle ships) and in
 *      Chromium (the portable LZ4 block codec, and lz4js's block decoder in its place);
 *   2. producer end to end: the batching LZ4 producer → a real `sluice serve` (flush always)
 *      → acks, records/s; and a subscriber catching up on those records, records/s.
 *
 *   node --import tsx loadtest/sdk-bench.ts          (BENCH_RECORDS=200000 by default)
 *
 * Chromium runs only when /usr/bin/chromium exists. Figures on a shared, busy machine are
 * provisional: compare them with each other, not with other machines.
 */
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32cPortable, dataHeader, encodeRecordBatch, portableLz4, useCrc32c, useLz4BlockCodec } from '../engine/codec/index.ts';
import { dataFrame } from '../src/gateway/frames.ts';
import { createRequire } from 'node:module';
import { connect, decodeData, parseDataFrame } from '../src/client/index.ts';
import { startServer } from '../test/client/server-process.ts';
import { chromiumArgs, chromiumPath } from '../test/client/chromium.ts';

const require = createRequire(import.meta.url);

/** The native codecs engine/native-codecs.ts installs, registered again after a portable run. */
function useNative(): void {
  const { crc32c } = require('@node-rs/crc32') as { crc32c(b: Buffer): number };
  const lz4 = require('lz4') as { encodeBlock(s: Buffer, d: Buffer): number; decodeBlock(s: Buffer, d: Buffer): number };
  const buf = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));
  useCrc32c((b, start, end) => crc32c(buf(b.subarray(start, end))) >>> 0);
  useLz4BlockCodec({ compress: (s, d) => lz4.encodeBlock(buf(s), buf(d)), decompress: (s, d) => lz4.decodeBlock(buf(s), buf(d)) });
}

const here = path.dirname(fileURLToPath(import.meta.url));
const recordsTotal = Number(process.env.BENCH_RECORDS ?? 200_000);
const recordsPerBatch = 500;
const rounds = 5;

const enc = new TextEncoder();
function value(i: number): Uint8Array {
  // JSON-ish event padded to 100 bytes: compresses about as well as real app payloads.
  const s = `{"id":${i},"user":"user-${i % 997}","event":"${['click', 'view', 'buy'][i % 3]}","ts":${1_700_000_000_000 + i},"n":"${(i * 2654435761 >>> 0).toString(36)}"`;
  return enc.encode(`${s.padEnd(99, ' ')}}`);
}


function buildFrames(): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let base = 0; base < recordsTotal; base += recordsPerBatch) {
    const recs = Array.from({ length: Math.min(recordsPerBatch, recordsTotal - base) }, (_, i) => ({ key: null, value: value(base + i) }));
    frames.push(dataFrame(dataHeader('bench', 0), encodeRecordBatch(recs, { codec: 'lz4', baseOffset: base })));
  }
  return frames;
}

function decodeNode(frames: Uint8Array[]): number {
  let best = Infinity;
  let n = 0;
  for (let r = 0; r < rounds + 1; r++) {
    const t0 = performance.now();
    n = 0;
    for (const f of frames) n += decodeData(parseDataFrame(f), 0).length;
    if (r > 0) best = Math.min(best, performance.now() - t0);
  }
  return Math.round((n * 1000) / best);
}

async function decodeChromium(frames: Uint8Array[]): Promise<Record<string, number> | string> {
  if (!fs.existsSync(chromiumPath)) return `skipped: ${chromiumPath} is absent`;
  const esbuild = await import('esbuild');
  const bundle = await esbuild.build({ entryPoints: [path.join(here, 'sdk-bench-browser.ts')], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true, write: false, outfile: 'bench.js', logLevel: 'silent' });
  const js = bundle.outputFiles[0].contents;
  const parts: Uint8Array[] = [];
  for (const f of frames) {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, f.length);
    parts.push(len, f);
  }
  const framesBin = Buffer.concat(parts);
  const server = http.createServer((req, res) => {
    if (req.url === '/bench.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else if (req.url === '/frames.bin') res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(framesBin);
    else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>bench</title>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    return await page.evaluate(async (n) => {
      const m = (await import('/bench.js' as string)) as { run(rounds: number): Promise<Record<string, number>> };
      return m.run(n);
    }, rounds);
  } finally {
    await browser.close();
    server.close();
  }
}

async function producerEndToEnd(): Promise<Record<string, number>> {
  const server = await startServer(['--flush', 'always']);
  try {
    const client = await connect(server.url);
    const out: Record<string, number> = {};
    for (const compression of ['lz4', 'none'] as const) {
      const topic = `bench-${compression}`;
      const producer = client.producer({ lingerMs: 5, batchBytes: 256 * 1024, compression });
      const t0 = performance.now();
      const window: Promise<unknown>[] = [];
      for (let i = 0; i < recordsTotal; i++) {
        window.push(producer.send(topic, value(i)));
        if (window.length >= 20_000) await Promise.all(window.splice(0, 10_000));
      }
      await producer.flush();
      await Promise.all(window);
      out[`producer_${compression}_recordsPerSec`] = Math.round((recordsTotal * 1000) / (performance.now() - t0));
    }
    // A subscriber catching up on what the producer wrote (served from disk, decoded by the SDK).
    let got = 0;
    const t1 = performance.now();
    await new Promise<void>((resolve) => {
      void client.subscribe('bench-lz4', { from: 'earliest' }, (recs) => {
        got += recs.length;
        if (got >= recordsTotal) resolve();
      });
    });
    out.subscriber_catchup_recordsPerSec = Math.round((recordsTotal * 1000) / (performance.now() - t1));
    // The JSON publish path, one record per round trip window, for contrast.
    const n = Math.min(20_000, recordsTotal);
    const text = new TextDecoder().decode(value(0));
    const t2 = performance.now();
    const pubs: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      pubs.push(client.publish('bench-json', text));
      if (pubs.length >= 5000) await Promise.all(pubs.splice(0, 2500));
    }
    await Promise.all(pubs);
    out.publish_json_recordsPerSec = Math.round((n * 1000) / (performance.now() - t2));
    client.close();
    return out;
  } finally {
    await server.stop();
  }
}

const frames = buildFrames();
const wire = frames.reduce((a, f) => a + f.length, 0);
console.log(`# ${recordsTotal} records of 100 bytes in ${frames.length} LZ4 batches, ${(wire / 1e6).toFixed(1)} MB on the wire (${((recordsTotal * 100) / wire).toFixed(2)}x), ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`);
const results: Record<string, unknown> = {};
// Alternate portable and native codecs, keeping each one's best (JIT warm-up, shared machine).
let portable = 0;
let native = 0;
for (let i = 0; i < 3; i++) {
  useCrc32c(crc32cPortable);
  useLz4BlockCodec(portableLz4);
  portable = Math.max(portable, decodeNode(frames));
  useNative();
  native = Math.max(native, decodeNode(frames));
}
results.node_decode_portable_recordsPerSec = portable;
results.node_decode_native_recordsPerSec = native;
results.chromium_decode = await decodeChromium(frames);
if (process.env.BENCH_SKIP_E2E !== '1') Object.assign(results, await producerEndToEnd());
console.log(JSON.stringify(results, null, 2));

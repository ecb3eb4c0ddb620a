/**
 * Gateway benchmark: how fast does `sluice serve` take publishes and fan them out, and what
 * does it cost in memory? The server runs as its own process (spawned here); this process
 * is the load generator. On a 2-core machine both share the CPU: the figures are what one
 * core of server does while another core generates load, not what the server alone could do.
 *
 *   npm run bench:gateway [-- --seconds 5 --quick --only ingest,fanout,idle,stall]
 *
 * Phases (each bounded in time):
 *   ingest-json     100 connections, `pub` of 100 B values, 200 in flight each
 *   ingest-produce  1 connection, PRODUCE of batches of 1000 x 100 B, 16 in flight
 *   fanout          1 publisher (PRODUCE, 100 x 100 B per batch) -> 1,000 subscribers
 *                   (bare WebSocket clients, raw-ws.ts, so the generator keeps up):
 *                   delivered records/s at full speed, then publish-to-deliver latency
 *                   p50/p99 at half that rate
 *   idle-subs       server RSS with 10,000 idle subscribers
 *   stalled-sub     server RSS sampled while 1 GB is published past one stalled subscriber
 */
import fs from 'node:fs';
import os from 'node:os';
import WebSocket from 'ws';
import { encodeRecordBatch } from '../engine/codec/index.ts';
import { installNativeCodecs } from '../engine/index.ts';
import { produceFrame } from '../src/gateway/frames.ts';
import { type RawWs, rawConnect } from './raw-ws.ts';
import { type ServerProcess, http, startServer } from '../test/helpers/server.ts';
import { machine } from './lib/machine.ts';
import { cpuSeconds } from './lib/proc.ts';
import { scanData } from './lib/sluice-frames.ts';
import { percentile } from './lib/stats.ts';
import { formatTable } from './lib/table.ts';

installNativeCodecs();

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const quick = argv.includes('--quick');
const SECONDS = arg('seconds', quick ? 2 : 5);
const FANOUT_SUBS = arg('subscribers', quick ? 200 : 1000);
const IDLE_SUBS = arg('idle', quick ? 2000 : 10_000);
const STALL_BYTES = arg('stall-mb', quick ? 128 : 1024) * 1024 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;

/**
 * Sends through `ws` with the socket corked until the end of the tick, so that a burst of
 * small frames costs one write(2), as a real SDK would batch them; otherwise the generator,
 * not the server, is what gets measured.
 */
function corkedSend(ws: WebSocket, data: string | Buffer): void {
  const sock = (ws as any)._socket;
  if (!sock.writableCorked) {
    sock.cork();
    process.nextTick(() => sock.uncork());
  }
  ws.send(data);
}

async function connect(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { maxPayload: 256 * 1024 * 1024, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

async function connectMany(url: string, n: number, parallel = 200): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  for (let i = 0; i < n; i += parallel) out.push(...(await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, () => connect(url)))));
  return out;
}

function request(ws: WebSocket, obj: object & { id: number }): Promise<any> {
  return new Promise((resolve) => {
    const on = (d: Buffer, bin: boolean) => {
      if (bin) return;
      const m = JSON.parse(d.toString());
      if (m.id === obj.id) {
        ws.off('message', on);
        resolve(m);
      }
    };
    ws.on('message', on);
    ws.send(JSON.stringify(obj));
  });
}

interface Row {
  phase: string;
  result: string;
  target: string;
  note: string;
}
const rows: Row[] = [];

async function ingestJson(srv: ServerProcess, flush: string): Promise<void> {
  const value = 'x'.repeat(100);
  let acks = 0;
  let errors = 0;
  let running = true;
  const window = 200;
  const conns: RawWs[] = [];
  for (let n = 0; n < 100; n++) {
    let id = 0;
    const ws: RawWs = await rawConnect(srv.port, '/v1/ws', (d) => {
      if (d[7] === 0x61 /* {"op":"a */) acks++;
      else errors++;
      if (running) send();
    });
    const send = () => ws.sendText(`{"op":"pub","id":${++id},"topic":"bench-json","value":"${value}"}`);
    conns.push(ws);
  }
  for (const ws of conns) for (let i = 0; i < window; i++) ws.sendText(`{"op":"pub","id":${1e9 + i},"topic":"bench-json","value":"${value}"}`);
  await sleep(1000); // warm-up
  const a0 = acks;
  const c0 = cpuSeconds(srv.proc.pid!);
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const rate = (acks - a0) / ((performance.now() - t0) / 1000);
  const cpu = (cpuSeconds(srv.proc.pid!) - c0) / SECONDS;
  running = false;
  await sleep(300);
  for (const ws of conns) ws.destroy();
  rows.push({ phase: `ingest JSON pub, 100 conns (flush=${flush})`, result: `${Math.round(rate).toLocaleString('en')} msg/s`, target: '>= 200,000 msg/s', note: `server CPU ${(cpu * 100).toFixed(0)}%${errors ? `, ${errors} errors` : ''}` });
}

async function ingestProduce(srv: ServerProcess, flush: string): Promise<void> {
  const ws = await connect(srv.url);
  const batch = encodeRecordBatch(Array.from({ length: 1000 }, (_, i) => ({ value: Buffer.alloc(100, i & 0xff) })));
  const frame = produceFrame(1, 'bench-bin', 0, batch);
  let acks = 0;
  let errors = 0;
  let running = true;
  ws.on('message', (d: Buffer) => {
    if (d.toString().includes('"ack"')) acks++;
    else errors++;
    if (running) ws.send(frame);
  });
  for (let i = 0; i < 16; i++) ws.send(frame);
  await sleep(1000);
  const a0 = acks;
  const c0 = cpuSeconds(srv.proc.pid!);
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const rate = ((acks - a0) * 1000) / ((performance.now() - t0) / 1000);
  const cpu = (cpuSeconds(srv.proc.pid!) - c0) / SECONDS;
  running = false;
  await sleep(300);
  ws.terminate();
  rows.push({ phase: `ingest PRODUCE 1000 x 100 B, 1 conn (flush=${flush})`, result: `${Math.round(rate).toLocaleString('en')} rec/s`, target: '>= 1,000,000 rec/s', note: `${((rate * 100) / 1e6).toFixed(0)} MB/s of values, server CPU ${(cpu * 100).toFixed(0)}%${errors ? `, ${errors} errors` : ''}` });
}

async function fanout(srv: ServerProcess): Promise<void> {
  await http('PUT', `${srv.http}/v1/topics/bench-fan`, { partitions: 1 });
  let delivered = 0;
  const sampleEvery = Math.max(1, Math.floor(FANOUT_SUBS / 100));
  let recv: [number, number][] = [];
  let subbed = 0;
  const subs: RawWs[] = [];
  for (let i = 0; i < FANOUT_SUBS; i++) {
    const ws = await rawConnect(srv.port, '/v1/ws', (d, bin) => {
      if (!bin) {
        if (d.includes('"subbed"')) subbed++;
        return;
      }
      const now = performance.now();
      scanData(d, (base, count) => {
        delivered += count;
        if (i % sampleEvery === 0) recv.push([base, now]);
      });
    });
    ws.sendText(JSON.stringify({ op: 'sub', id: 1, topic: 'bench-fan', from: 'latest' }));
    subs.push(ws);
  }
  for (let i = 0; i < 1000 && subbed < FANOUT_SUBS; i++) await sleep(10);
  const pub = await connect(srv.url);
  const perBatch = 100;
  const batch = encodeRecordBatch(Array.from({ length: perBatch }, (_, i) => ({ value: Buffer.alloc(100, i) })));
  const sentAt = new Map<number, number>();
  const offsetSentAt = new Map<number, number>();
  let acked = 0;
  let id = 0;
  let mode: 'max' | 'paced' | 'off' = 'max';
  const window = 8;
  const send = () => {
    sentAt.set(++id, performance.now());
    pub.send(produceFrame(id, 'bench-fan', 0, batch));
  };
  pub.on('message', (d: Buffer) => {
    const m = JSON.parse(d.toString());
    if (m.op !== 'ack') return;
    acked++;
    offsetSentAt.set(m.offset, sentAt.get(m.id)!);
    sentAt.delete(m.id);
    if (mode === 'max') send();
  });
  for (let i = 0; i < window; i++) send();
  await sleep(1000);
  const d0 = delivered;
  const c0 = cpuSeconds(srv.proc.pid!);
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const rate = (delivered - d0) / ((performance.now() - t0) / 1000);
  const cpu = (cpuSeconds(srv.proc.pid!) - c0) / SECONDS;
  mode = 'off';
  // Let everything in flight arrive before the paced run.
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    if (delivered >= acked * perBatch * FANOUT_SUBS) break;
  }
  rows.push({ phase: `fan-out 1 -> ${FANOUT_SUBS} subs, 100 B, 100/batch`, result: `${Math.round(rate).toLocaleString('en')} rec/s delivered`, target: '>= 5,000,000 rec/s', note: `server CPU ${(cpu * 100).toFixed(0)}% = ${((cpu / rate) * 1e9).toFixed(0)} ns per delivered record` });

  // Paced at half the rate: publish-to-deliver latency (ack offsets map batches to send times).
  recv = [];
  mode = 'paced';
  const batchesPerSec = rate / 2 / FANOUT_SUBS / perBatch;
  // Sends what is due by the clock (not a fixed count per timer tick, which late timers would shrink).
  const tp0 = performance.now();
  const d1 = delivered;
  let pacedSent = 0;
  while (performance.now() - tp0 < SECONDS * 1000) {
    const due = Math.floor((batchesPerSec * (performance.now() - tp0)) / 1000);
    while (pacedSent < due) {
      send();
      pacedSent++;
    }
    await sleep(2);
  }
  const pacedRate = (delivered - d1) / ((performance.now() - tp0) / 1000);
  mode = 'off';
  await sleep(1000);
  const lat: number[] = [];
  for (const [base, at] of recv) {
    const s = offsetSentAt.get(base);
    if (s !== undefined) lat.push(at - s);
  }
  lat.sort((a, b) => a - b);
  rows.push({
    phase: `fan-out latency at ~half rate (${Math.round(pacedRate).toLocaleString('en')} rec/s delivered)`,
    result: lat.length ? `p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms` : 'no samples',
    target: 'p99 <= 20 ms',
    note: `${lat.length} samples from ${Math.ceil(FANOUT_SUBS / sampleEvery)} subscribers`,
  });
  pub.terminate();
  for (const ws of subs) ws.destroy();
}

async function idleSubscribers(srv: ServerProcess): Promise<void> {
  await http('PUT', `${srv.http}/v1/topics/bench-idle`, { partitions: 1 });
  const before = srv.rss();
  const subs = await connectMany(srv.url, IDLE_SUBS, 500);
  for (let i = 0; i < subs.length; i += 500) await Promise.all(subs.slice(i, i + 500).map((ws) => request(ws, { op: 'sub', id: 1, topic: 'bench-idle' } as any)));
  await sleep(1500);
  const after = srv.rss();
  rows.push({ phase: `RSS with ${IDLE_SUBS.toLocaleString('en')} idle subscribers`, result: MiB(after), target: '<= 150 MiB', note: `${MiB(before)} before they connected` });
  for (const ws of subs) ws.terminate();
  await sleep(500);
}

async function stalledSubscriber(srv: ServerProcess): Promise<void> {
  await http('PUT', `${srv.http}/v1/topics/bench-stall`, { partitions: 1 });
  const stalled = await connect(srv.url);
  await request(stalled, { op: 'sub', id: 1, topic: 'bench-stall', from: 'latest' } as any);
  (stalled as any)._socket.pause();
  const pub = await connect(srv.url);
  const batch = encodeRecordBatch(Array.from({ length: 900 }, (_, i) => ({ value: Buffer.alloc(1000, i) })));
  const frame = produceFrame(1, 'bench-stall', 0, batch);
  const total = Math.ceil(STALL_BYTES / batch.length);
  let acked = 0;
  let sent = 0;
  const samples: number[] = [srv.rss()];
  await new Promise<void>((resolve) => {
    pub.on('message', () => {
      acked++;
      if (acked % 64 === 0) samples.push(srv.rss());
      if (sent < total) (pub.send(frame), sent++);
      if (acked === total) resolve();
    });
    for (let i = 0; i < 8; i++) (pub.send(frame), sent++);
  });
  samples.push(srv.rss());
  const q = samples.length >> 2;
  rows.push({
    phase: `RSS, 1 stalled subscriber, ${MiB(STALL_BYTES)} published`,
    result: `${MiB(Math.min(...samples))} .. ${MiB(Math.max(...samples))}`,
    target: 'flat',
    note: `first quarter max ${MiB(Math.max(...samples.slice(0, q)))}, last quarter max ${MiB(Math.max(...samples.slice(-q)))}, ${samples.length} samples`,
  });
  pub.terminate();
  stalled.terminate();
}

function printTable(): void {
  const cols: (keyof Row)[] = ['phase', 'result', 'target', 'note'];
  console.log(`\nsluice gateway benchmark — ${machine()}`);
  console.log(`load generator and server share the machine; ${SECONDS} s per measurement${quick ? ' (--quick)' : ''}`);
  console.log(`load average at start ${loadAtStart.map((l) => l.toFixed(1)).join(' ')}, at end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (anything above ~2 means other processes took CPU too)\n`);
  console.log(formatTable(cols, rows.map((r) => cols.map((c) => r[c]))));
}

async function withServer(args: string[], fn: (srv: ServerProcess) => Promise<void>): Promise<void> {
  const srv = await startServer({ args });
  try {
    await fn(srv);
  } finally {
    await srv.stop();
    fs.rmSync(srv.dataDir, { recursive: true, force: true });
  }
}

const loadAtStart = os.loadavg();
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1].split(',') : null;
const want = (phase: string) => only === null || only.includes(phase);
for (const flush of ['always', 'never']) {
  if (!want('ingest')) break;
  await withServer(['--flush', flush], async (srv) => {
    await ingestJson(srv, flush);
    await ingestProduce(srv, flush);
  });
}
if (want('fanout')) await withServer(['--flush', 'never'], fanout);
if (want('idle')) await withServer(['--flush', 'never'], idleSubscribers);
if (want('stall')) await withServer(['--flush', 'never'], stalledSubscriber);
printTable();
process.exit(0);

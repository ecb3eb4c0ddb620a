/**
 * The scenarios of the side-by-side benchmark (loadtest/run.ts). Each takes a started target,
 * drives it from this process (the load generator) over 127.0.0.1, and returns table rows.
 * Every phase is bounded in time, and in count where a count makes sense.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeRecordBatch } from '../engine/codec/index.ts';
import { produceFrame } from '../src/gateway/frames.ts';
import { startClock } from './lib/clock.ts';
import { sleep } from './lib/machine.ts';
import { ProcWindow, cpuNs, rssAnonBytes, rssBytes } from './lib/proc.ts';
import { PY_SENDFILE_SERVER, buildPartition, firstLine, runReader } from './lib/replay-core.ts';
import { type CatchupRead, readCatchup } from './lib/ws-catchup-reader.ts';
import { type ServerProcess, startSluice, stopChild, track } from './lib/spawn.ts';
import { percentile, sortedCopy } from './lib/stats.ts';
import { rawConnect } from './raw-ws.ts';
import type { Publisher, Target } from './peers/targets.ts';

export interface Row {
  scenario: string;
  target: string;
  transport: string;
  /** Messages (or records) per second; for `idle`, connections held; for catch-up/replay, MB/s. */
  rate?: number;
  unit: string;
  p50?: number;
  p99?: number;
  p999?: number;
  cpuPct?: number;
  rssMiB?: number;
  note: string;
}

export interface Settings {
  seconds: number;
  ingestConns: number;
  fanoutSubs: number[];
  latencyRates: number[];
  latencySubs: number;
  idleConns: number;
  catchupGiB: number;
}

const GiB = 1024 ** 3;

/** Server CPU per unit (a publish, a delivery, a record) from its CPU % of one core and the rate: µs, or ns with scale 1000. */
function cpuPerUnit(cpuPct: number, ratePerSecond: number, scale = 1): string {
  if (!(ratePerSecond > 0)) return '-';
  return (((cpuPct / 100) * 1e6 * scale) / ratePerSecond).toFixed(scale === 1 ? 2 : 0);
}

/** Many publishing connections, each keeping `window` publishes unacknowledged at most. */
export async function ingest(t: Target, s: Settings): Promise<Row> {
  const window = 200;
  let acked = 0;
  let running = true;
  let seq = 0;
  const pubs: Publisher[] = [];
  for (let i = 0; i < s.ingestConns; i++) {
    let inflight = 0;
    let p: Publisher | undefined = undefined;
    p = await t.publisher((n) => {
      acked += n;
      inflight -= n;
      while (running && p && inflight < window) {
        p.publish(++seq);
        inflight++;
      }
    });
    const started: Publisher = p;
    pubs.push(started);
    // Start each connection once it exists (acks may come before the loop ends).
    for (; inflight < window; inflight++) started.publish(++seq);
  }
  await sleep(1000); // warm-up
  const a0 = acked;
  const w = new ProcWindow(t.pid);
  await sleep(s.seconds * 1000);
  const m = w.end();
  const rate = (acked - a0) / m.seconds;
  running = false;
  await sleep(300);
  for (const p of pubs) p.close();
  return { scenario: 'ingest', target: t.name, transport: t.transport, rate, unit: 'msg/s acked', cpuPct: m.cpuPct, rssMiB: m.peakRssMiB, note: `${s.ingestConns} conns x ${window} in flight, 100 B, ${cpuPerUnit(m.cpuPct, rate)} µs server CPU/publish` };
}

/** sluice only: the SDK's binary path, PRODUCE frames of one RecordBatch of 1000 x 100 B, 16 in flight. */
export async function produce(srv: ServerProcess, flush: string, s: Settings, threads: number): Promise<Row> {
  const batch = encodeRecordBatch(Array.from({ length: 1000 }, (_, i) => ({ value: Buffer.alloc(100, i & 0xff) })));
  const frame = produceFrame(1, 'bench-bin', 0, batch);
  let acks = 0;
  let running = true;
  const ws = await rawConnect(srv.port, '/v1/ws', (d) => {
    if (d[7] === 0x61) acks++;
    if (running) ws.sendBinary(frame);
  });
  for (let i = 0; i < 16; i++) ws.sendBinary(frame);
  await sleep(1000);
  const a0 = acks;
  const w = new ProcWindow(srv.proc.pid!);
  await sleep(s.seconds * 1000);
  const m = w.end();
  running = false;
  await sleep(300);
  ws.destroy();
  const rate = ((acks - a0) * 1000) / m.seconds;
  const target = flush === 'always' ? 'sluice (flush=always)' : threads === 1 ? 'sluice (1 thread)' : 'sluice';
  return { scenario: 'produce', target, transport: 'WebSocket', rate, unit: 'rec/s acked', cpuPct: m.cpuPct, rssMiB: m.peakRssMiB, note: `1 conn, PRODUCE 1000 x 100 B batches, 16 in flight, ${((rate * 100) / 1e6).toFixed(0)} MB/s, ${cpuPerUnit(m.cpuPct, rate, 1000)} ns server CPU/record` };
}

/**
 * 1 publisher -> n subscribers, as fast as delivery keeps up: the publisher keeps at most
 * `window` messages ahead of the subscribers' average progress, so no server's buffers grow
 * without bound (and NATS does not cut "slow consumers").
 */
export async function fanout(t: Target, n: number, s: Settings): Promise<Row> {
  const window = 1000;
  let delivered = 0;
  let units = 0; // frames (peers) or record batches (sluice) that carried them
  let sent = 0;
  let running = false;
  let pub: Publisher | undefined;
  const topUp = () => {
    if (!running || !pub) return;
    while (sent - delivered / n < window) pub.publish(++sent);
  };
  const subs: { close(): void }[] = [];
  for (let i = 0; i < n; i += 100) {
    subs.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(100, n - i) }, () =>
          t.subscriber((_k, count) => {
            delivered += count;
            units++;
            topUp();
          }),
        ),
      )),
    );
  }
  pub = await t.publisher(() => {});
  running = true;
  topUp();
  const kick = setInterval(topUp, 5); // in case every delivery arrived before `running`
  await sleep(1000);
  const d0 = delivered;
  const u0 = units;
  const w = new ProcWindow(t.pid);
  await sleep(s.seconds * 1000);
  const m = w.end();
  const rate = (delivered - d0) / m.seconds;
  const perUnit = (delivered - d0) / Math.max(1, units - u0);
  running = false;
  clearInterval(kick);
  await sleep(500);
  pub.close();
  for (const x of subs) x.close();
  return { scenario: `fanout-${n}`, target: t.name, transport: t.transport, rate, unit: 'msg/s delivered', cpuPct: m.cpuPct, rssMiB: m.peakRssMiB, note: `1 pub -> ${n} subs, 100 B, <= ${window} ahead, ${perUnit.toFixed(1)} msgs per ${t.keysAreOffsets ? 'record batch' : 'frame'}, ${cpuPerUnit(m.cpuPct, rate, 1000)} ns server CPU/delivery` };
}

/**
 * Publish-to-deliver latency at fixed publish rates, 1 publisher -> `latencySubs` subscribers.
 * Corrected for coordinated omission: message k of a run is due at t0 + k / rate and its
 * latency is measured from that intended time, so a sender that falls behind (or a server
 * that stalls it) shows up in the figures instead of hiding. The first 0.5 s is not counted.
 */
export async function latency(t: Target, s: Settings): Promise<Row[]> {
  const keys: number[] = [];
  const counts: number[] = [];
  const times: number[] = [];
  const subs = await Promise.all(
    Array.from({ length: s.latencySubs }, () =>
      t.subscriber((k, c, now) => {
        keys.push(k);
        counts.push(c);
        times.push(now);
      }),
    ),
  );
  const seqOfOffset = new Map<number, number>();
  const pub = await t.publisher((_n, seq, offset) => {
    if (offset >= 0) seqOfOffset.set(offset, seq);
  });
  const rows: Row[] = [];
  let seq = 0;
  const maxMessages = s.latencyRates.reduce((a, r) => a + Math.ceil(r * (s.seconds + 1)), 0) + 16;
  const intended = new Float64Array(maxMessages + 1);
  const actual = new Float64Array(maxMessages + 1);
  for (const rate of s.latencyRates) {
    keys.length = counts.length = times.length = 0;
    const first = seq + 1;
    const w = new ProcWindow(t.pid);
    const t0 = performance.now();
    // One tick per message at rates up to 10,000/s; above that, several messages per tick.
    const clock = startClock(Math.max(1000 / rate, 0.1), t0);
    const ms = (s.seconds + 0.5) * 1000;
    let sent = 0;
    let lateMax = 0;
    while (performance.now() - t0 < ms) {
      const now = performance.now();
      // Messages whose intended time has come: message n is due at t0 + n / rate, n from 0.
      const due = Math.min(Math.floor(((now - t0) * rate) / 1000) + 1, sent + maxMessages - seq);
      while (sent < due) {
        const at = t0 + (sent * 1000) / rate;
        lateMax = Math.max(lateMax, now - at);
        intended[++seq] = at;
        actual[seq] = performance.now();
        pub.publish(seq);
        sent++;
      }
      await clock.tick();
    }
    await clock.stop();
    await sleep(1000); // let what is in flight arrive
    const m = w.end();
    const last = seq;
    const warm = t0 + 500;
    const lat: number[] = [];
    const latActual: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      for (let j = 0; j < counts[i]; j++) {
        const q = t.keysAreOffsets ? seqOfOffset.get(keys[i] + j) : keys[i] + j;
        if (q === undefined || q < first || q > last || intended[q] < warm) continue;
        lat.push(times[i] - intended[q]);
        latActual.push(times[i] - actual[q]);
      }
    }
    let expected = 0;
    for (let q = first; q <= last; q++) if (intended[q] >= warm) expected++;
    expected *= s.latencySubs;
    const sorted = sortedCopy(lat);
    const sortedActual = sortedCopy(latActual);
    rows.push({
      scenario: `latency-${rate}`,
      target: t.name,
      transport: t.transport,
      rate: rate * s.latencySubs,
      unit: 'msg/s delivered (fixed)',
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      p999: percentile(sorted, 99.9),
      cpuPct: m.cpuPct,
      rssMiB: m.peakRssMiB,
      note: `${rate}/s -> ${s.latencySubs} subs, ${lat.length}/${expected} delivered in time; from the actual send p50 ${percentile(sortedActual, 50).toFixed(2)} p99 ${percentile(sortedActual, 99).toFixed(2)} ms; ${cpuPerUnit(m.cpuPct, rate * s.latencySubs)} µs server CPU/delivery${lateMax > 5 ? `; sender up to ${lateMax.toFixed(0)} ms late` : ''}`,
    });
  }
  pub.close();
  for (const x of subs) x.close();
  return rows;
}

/** `idleConns` subscribed connections that receive nothing: server RSS and CPU while idle. */
export async function idle(t: Target, s: Settings): Promise<Row> {
  await sleep(300);
  const before = rssBytes(t.pid);
  const subs: { close(): void }[] = [];
  const t0 = performance.now();
  let failed = '';
  try {
    for (let i = 0; i < s.idleConns; i += 250) subs.push(...(await Promise.all(Array.from({ length: Math.min(250, s.idleConns - i) }, () => t.subscriber(() => {})))));
  } catch (e) {
    failed = `, stopped at ${subs.length}: ${(e as Error).message}`;
  }
  const connectS = (performance.now() - t0) / 1000;
  await sleep(1500);
  const w = new ProcWindow(t.pid);
  await sleep(2000);
  const m = w.end();
  const after = rssBytes(t.pid);
  for (const x of subs) x.close();
  await sleep(500);
  return {
    scenario: 'idle',
    target: t.name,
    transport: t.transport,
    rate: subs.length,
    unit: 'idle subscribed conns',
    cpuPct: m.cpuPct,
    rssMiB: after / 2 ** 20,
    note: `${(before / 2 ** 20).toFixed(0)} MiB before, ${(((after - before) / Math.max(1, subs.length)) / 1024).toFixed(1)} KiB per conn, connected in ${connectS.toFixed(1)} s${failed}`,
  };
}

/**
 * sluice only: a WebSocket subscriber from "earliest" over a partition of `catchupGiB`, served
 * from disk, then the same partition over TCP replay (sendfile) next to Python's
 * socket.sendfile of the same segment file (the replay bench's yardstick and reader).
 */
export async function catchupAndReplay(s: Settings, want: { catchup: boolean; replay: boolean }): Promise<Row[]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-catchup-'));
  const rows: Row[] = [];
  try {
    const tb = performance.now();
    const file = await buildPartition(work, s.catchupGiB * GiB);
    const fileBytes = fs.statSync(file).size;
    process.stderr.write(`  built a ${(fileBytes / GiB).toFixed(2)} GiB partition in ${((performance.now() - tb) / 1000).toFixed(1)} s\n`);
    const srv = await startSluice({ dataDir: work, args: ['--flush', 'never', '--segment-bytes', String(2 ** 31 - 1)] });
    try {
      if (want.catchup) {
        // The python3 reader walks frame headers only: a Node client spent as much CPU taking
        // the bytes in as the server spent sending them, and was the limit.
        await readCatchup(srv.port, 'bench', fileBytes); // warm-up: page cache, JIT
        const runs: { mbps: number; cpuPerGB: number; cpuPct: number; read: CatchupRead }[] = [];
        for (let i = 0; i < 3; i++) {
          const c0 = cpuNs(srv.proc.pid!);
          const r = await readCatchup(srv.port, 'bench', fileBytes);
          const cpu = (cpuNs(srv.proc.pid!) - c0) / 1e9;
          runs.push({ mbps: r.batchBytes / r.seconds / 1e6, cpuPerGB: cpu / (r.batchBytes / 1e9), cpuPct: (cpu / r.seconds) * 100, read: r });
        }
        const med = [...runs].sort((a, b) => a.mbps - b.mbps)[1];
        rows.push({
          scenario: 'catchup',
          target: 'sluice',
          transport: 'WebSocket',
          rate: med.mbps,
          unit: 'MB/s',
          cpuPct: med.cpuPct,
          rssMiB: rssBytes(srv.proc.pid!) / 2 ** 20,
          note: `median of 3 (${runs.map((x) => x.mbps.toFixed(0)).join(', ')}), ${(fileBytes / GiB).toFixed(2)} GiB from earliest to a python3 reader, ${med.read.messages} DATA messages, ${med.cpuPerGB.toFixed(3)} server CPU s/GB, RSS without mapped file pages ${(rssAnonBytes(srv.proc.pid!) / 2 ** 20).toFixed(0)} MiB`,
        });
      }
      if (want.replay) {
        const py = track(spawn('python3', ['-c', PY_SENDFILE_SERVER, file], { stdio: ['ignore', 'pipe', 'inherit'] }));
        try {
          const pyPort = Number(await firstLine(py));
          const request = JSON.stringify({ topic: 'bench', partition: 0, from: 'earliest' });
          const methods = [
            { name: 'sluice', port: srv.replayPort, pid: srv.proc.pid!, request, transport: 'TCP replay' },
            { name: 'python-sendfile', port: pyPort, pid: py.pid!, request: undefined, transport: 'TCP' },
          ];
          for (const m of methods) await runReader(m.port, m.request); // warm-up: page cache, JIT
          // Three runs each, interleaved so that drift in the machine's load hits both alike; the median is kept.
          const runs = methods.map(() => [] as { mbps: number; cpuPerGiB: number; cpuPct: number; short: boolean }[]);
          for (let round = 0; round < 3; round++) {
            for (const [i, m] of methods.entries()) {
              const c0 = cpuNs(m.pid);
              const r = await runReader(m.port, m.request);
              const cpu = (cpuNs(m.pid) - c0) / 1e9;
              runs[i].push({ mbps: r.bytes / r.seconds / 1e6, cpuPerGiB: cpu / (r.bytes / GiB), cpuPct: (cpu / r.seconds) * 100, short: r.bytes < fileBytes });
            }
          }
          for (const [i, m] of methods.entries()) {
            const sorted = [...runs[i]].sort((a, b) => a.mbps - b.mbps);
            const med = sorted[1];
            rows.push({
              scenario: 'replay',
              target: m.name,
              transport: m.transport,
              rate: med.mbps,
              unit: 'MB/s',
              cpuPct: med.cpuPct,
              rssMiB: rssBytes(m.pid) / 2 ** 20,
              note: `median of 3 (${runs[i].map((x) => x.mbps.toFixed(0)).join(', ')}), ${(fileBytes / GiB).toFixed(2)} GiB segment to a python3 reader, ${med.cpuPerGiB.toFixed(3)} CPU s/GiB, RSS without mapped file pages ${(rssAnonBytes(m.pid) / 2 ** 20).toFixed(0)} MiB${runs[i].some((x) => x.short) ? ', SOME RUNS SHORT' : ''}`,
            });
          }
        } finally {
          await stopChild(py);
        }
      }
    } finally {
      await srv.stop();
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

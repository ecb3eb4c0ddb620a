// Question: what does it cost to send segment bytes to a TCP peer from sluice, per GiB,
// with the sendfile addon, with its read + write fallback (fs.read, or an mmap view), and
// with the obvious alternatives: fs.createReadStream().pipe(socket) and, as the yardstick
// from outside Node, Python's socket.sendfile? And does running the addon's bursts on
// Node's loop block the loop for long?
//
// Each run sends the same page-cached file REPEATS times (GIB_TOTAL in all) over loopback
// to a discarding reader in a child process (Python recv_into a 1 MiB buffer). Sender CPU
// is process.cpuUsage() for the in-process senders and getrusage() in the Python sender;
// reader CPU is the reader's own getrusage(). Wall time runs from the first byte sent to
// the reader's EOF. Event-loop delay (perf_hooks) is sampled during the Node runs, and the
// addon reports the longest time one of its sendfile bursts held the loop.
//
//   node --import tsx loadtest/sendfile-bench.ts [--gib 1] [--rounds 3]
//
// Bounded: each run is killed after RUN_TIMEOUT_MS, and there are rounds x methods runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import mmapModule from 'mmap-io';

import {
  loadSendfile,
  sendFileRange,
  type SendFileRangeOptions,
  type SendfileStats,
} from '../src/common/sendfile.ts';

// mmap-io's typings declare an ES default export, but at run time Node's default import of
// this CommonJS package is module.exports itself, which is the mmap object.
const mmapIo = mmapModule as unknown as typeof mmapModule.default;

const GIB = 1 << 30;
const FILE_BYTES = 256 << 20;
const RUN_TIMEOUT_MS = 60_000;

const { values: args } = parseArgs({
  options: { gib: { type: 'string', default: '1' }, rounds: { type: 'string', default: '3' } },
});
const gibTotal = Number(args.gib);
const rounds = Number(args.rounds);
if (!(gibTotal >= 0.25 && gibTotal <= 16) || !(rounds >= 1 && rounds <= 10)) {
  throw new RangeError('--gib must be in [0.25, 16] and --rounds in [1, 10]');
}
const repeats = Math.round((gibTotal * GIB) / FILE_BYTES);
const totalBytes = repeats * FILE_BYTES;

const READER_PY = `
import json, resource, socket, sys, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
buf = bytearray(1 << 20); n = 0
r0 = resource.getrusage(resource.RUSAGE_SELF); t0 = None
while True:
    k = conn.recv_into(buf)
    if t0 is None: t0 = time.monotonic()
    if not k: break
    n += k
t1 = time.monotonic(); r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"bytes": n, "seconds": t1 - t0,
                  "cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)}), flush=True)
`;

const SENDER_PY = `
import json, resource, socket, sys
port, file, size, repeats = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port))
with open(file, "rb") as f:
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeats):
        s.sendfile(f, 0, size)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
s.close()
print(json.dumps({"cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)}), flush=True)
`;

interface Result {
  method: string;
  seconds: number;
  senderCpu: number;
  readerCpu: number;
  loopDelayMaxMs?: number;
  loopDelayP99Ms?: number;
}

function python(script: string, argv: string[] = []): { child: ChildProcess; lines: AsyncIterator<string> } {
  const child = spawn('python3', ['-c', script, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines };
}

async function line(lines: AsyncIterator<string>): Promise<string> {
  const next = await lines.next();
  if (next.done) throw new Error('child exited early');
  return next.value;
}

/** Starts a reader, lets `send` push totalBytes into a connection to it, and measures. */
async function run(
  method: string,
  send: (port: number) => Promise<number | null>, // in-process senders return null: CPU measured here
): Promise<Result> {
  const reader = python(READER_PY);
  const timer = setTimeout(() => reader.child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  try {
    const port = Number(await line(reader.lines));
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const cpu0 = process.cpuUsage();
    const childCpu = await send(port);
    const report = JSON.parse(await line(reader.lines)) as { bytes: number; seconds: number; cpu: number };
    const cpu = process.cpuUsage(cpu0);
    loop.disable();
    if (report.bytes !== totalBytes) throw new Error(`${method}: reader got ${report.bytes} of ${totalBytes} bytes`);
    return {
      method,
      seconds: report.seconds,
      senderCpu: childCpu ?? (cpu.user + cpu.system) / 1e6,
      readerCpu: report.cpu,
      ...(childCpu === null && { loopDelayMaxMs: loop.max / 1e6, loopDelayP99Ms: loop.percentile(99) / 1e6 }),
    };
  } finally {
    clearTimeout(timer);
    reader.child.kill();
  }
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

async function endAndClose(socket: net.Socket): Promise<null> {
  socket.end();
  await once(socket, 'close');
  return null;
}

/** The longest time one native burst held the loop, over every run. */
let burstNsMax = 0;

function viaSendFileRange(fd: number, opts: SendFileRangeOptions) {
  const onStats = (stats: SendfileStats) => {
    if (stats.path === 'native') burstNsMax = Math.max(burstNsMax, stats.burstNsMax);
  };
  return async (port: number) => {
    const socket = await connect(port);
    for (let i = 0; i < repeats; i++) await sendFileRange(socket, fd, 0, FILE_BYTES, { ...opts, onStats });
    return endAndClose(socket);
  };
}

function viaPipe(file: string, highWaterMark?: number) {
  return async (port: number) => {
    const socket = await connect(port);
    for (let i = 0; i < repeats; i++) {
      const stream = fs.createReadStream(file, highWaterMark ? { highWaterMark } : {});
      stream.pipe(socket, { end: false });
      await once(stream, 'close');
    }
    return endAndClose(socket);
  };
}

function viaPython(file: string) {
  return async (port: number) => {
    const sender = python(SENDER_PY, [String(port), file, String(FILE_BYTES), String(repeats)]);
    const report = JSON.parse(await line(sender.lines)) as { cpu: number };
    return report.cpu;
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-sendfile-bench-'));
  const file = path.join(dir, 'segment.log');
  try {
    fs.writeFileSync(file, randomBytes(FILE_BYTES));
    const fd = fs.openSync(file, 'r');
    const view = mmapIo.map(FILE_BYTES, mmapIo.PROT_READ, mmapIo.MAP_SHARED, fd, 0, mmapIo.MADV_SEQUENTIAL);
    const native = loadSendfile({ warn: (message) => console.warn(message) });

    type Send = (port: number) => Promise<number | null>;
    const methods: [string, Send][] = [
      ...(native ? [['sendFileRange native (sendfile addon)', viaSendFileRange(fd, { mode: 'native' })] as [string, Send]] : []),
      ['sendFileRange fallback, fs.read 1 MiB x2', viaSendFileRange(fd, { mode: 'fallback' })],
      ['sendFileRange fallback, mmap view', viaSendFileRange(fd, { mode: 'fallback', view })],
      ['createReadStream().pipe(socket)', viaPipe(file)],
      ['createReadStream({hwm: 1 MiB}).pipe', viaPipe(file, 1 << 20)],
      ['python3 socket.sendfile', viaPython(file)],
    ];

    const cpus = os.cpus();
    console.log(`machine: ${cpus.length} cores, ${cpus[0]?.model ?? '?'}, ${Math.round(os.totalmem() / GIB)} GiB, Linux ${os.release()}`);
    console.log(`node ${process.version}; ${(totalBytes / GIB).toFixed(2)} GiB per run (${repeats} x ${FILE_BYTES >> 20} MiB, page cache), ${rounds} rounds, median shown`);
    console.log('reader: python3 recv_into 1 MiB in a child process; loop delay = event-loop delay in this process during the run\n');

    const results = new Map<string, Result[]>();
    for (let round = 0; round < rounds; round++) {
      for (const [method, send] of methods) {
        const result = await run(method, send);
        results.set(method, [...(results.get(method) ?? []), result]);
      }
    }

    const rows = [...results].map(([method, runs]) => {
      const seconds = median(runs.map((r) => r.seconds));
      const senderCpu = median(runs.map((r) => r.senderCpu));
      const readerCpu = median(runs.map((r) => r.readerCpu));
      const loopMax = runs[0].loopDelayMaxMs === undefined ? '' : Math.max(...runs.map((r) => r.loopDelayMaxMs ?? 0)).toFixed(1);
      const loopP99 = runs[0].loopDelayP99Ms === undefined ? '' : median(runs.map((r) => r.loopDelayP99Ms ?? 0)).toFixed(1);
      return [
        method,
        (totalBytes / seconds / 1e9).toFixed(2),
        (senderCpu / (totalBytes / GIB)).toFixed(3),
        (readerCpu / (totalBytes / GIB)).toFixed(3),
        loopP99,
        loopMax,
      ];
    });
    const header = ['method', 'GB/s', 'sender CPU s/GiB', 'reader CPU s/GiB', 'loop p99 ms', 'loop max ms'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const format = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    console.log(format(header));
    console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const row of rows) console.log(format(row));
    if (native) console.log(`\nlongest native sendfile burst on the loop: ${(burstNsMax / 1e6).toFixed(2)} ms`);
    console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on this machine skews every figure)`);
    fs.closeSync(fd);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();

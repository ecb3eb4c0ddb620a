/**
 * Question: how fast does sluice's TCP replay move a partition over loopback, and at what
 * CPU cost, next to the best a plain program does with the same file? The wire contract
 * promises sendfile(2); the target is at least 0.9 of Python's `socket.sendfile`.
 *
 * Four servers, each its own process, each sending the same >= 1 GiB segment file:
 *   python-sendfile   python3: conn.sendfile(file), the yardstick
 *   sluice            `sluice serve`, a replay request from "earliest" (the sendfile addon)
 *   sluice-fallback   the same with SLUICE_SENDFILE=off (read + write through Node)
 *   node-pipe         node: fs.createReadStream(file).pipe(socket), default highWaterMark
 * One reader, a separate python3 process per run, receives into a 1 MiB buffer and discards.
 * Runs are interleaved (round-robin over the servers) after one warm-up each, so the file
 * is in the page cache for all and drift hits all alike. Reported: the median throughput
 * (bytes over the reader's connect-to-EOF time), the ratio to python-sendfile, and the
 * server's CPU time per GiB (sum over its threads of /proc/<pid>/task/<tid>/schedstat,
 * in ns, before and after the run; threads that exit in between are not counted).
 *
 * Estimate written before measuring: loopback TCP with a copying reader is bound by the
 * reader's copy and the kernel's skb handling, ~2-5 GB/s on one core; sendfile spares the
 * server the file->user->kernel copies, so its CPU per GiB should be a fraction of the
 * fallback's (two copies and a JS turn per MiB) and close to Python's, since both spend
 * their time in the same syscall.
 *
 * Usage: npm run bench:replay [-- --runs 7 --gib 1 --methods sluice,node-pipe] (python-sendfile
 * always runs: it is the yardstick). Bounded: about a minute here.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { LogManager, encodeRecordBatch } from '../engine/index.ts';
import { loadSendfile } from '../src/replay/sendfile.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
const GiB = 1024 ** 3;
const runTimeoutMs = 30_000;

const PY_SENDFILE_SERVER = `
import socket, sys
path = sys.argv[1]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    with open(path, "rb") as f:
        try: c.sendfile(f)
        except OSError: pass
    c.close()
`;

const PY_READER = `
import socket, sys, time
port = int(sys.argv[1]); req = sys.argv[2] if len(sys.argv) > 2 else ""
buf = bytearray(1 << 20); n = 0
t0 = time.perf_counter()
s = socket.create_connection(("127.0.0.1", port))
if req:
    s.sendall(req.encode() + b"\\n"); s.shutdown(socket.SHUT_WR)
while True:
    k = s.recv_into(buf)
    if k == 0: break
    n += k
t1 = time.perf_counter()
print(n, t1 - t0, flush=True)
`;

interface Method {
  name: string;
  start(): Promise<{ proc: ChildProcess; port: number }>;
  request?: string;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

function cpuNs(pid: number): number {
  let ns = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited
    }
  }
  return ns;
}

function firstLine(proc: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

async function buildPartition(dataDir: string, bytes: number): Promise<string> {
  const log = await LogManager.open({ dataDir, segmentBytes: 2 ** 31 - 1, flush: 'never', retentionCheckMs: 0 });
  log.createTopic('bench', { partitions: 1 });
  const p = log.partition('bench', 0);
  // 64 records of 1 KiB per batch (~66 KB), values that LZ4 could not shrink anyway.
  const value = () => {
    const b = Buffer.allocUnsafe(1024);
    for (let i = 0; i < b.length; i++) b[i] = (Math.random() * 256) | 0;
    return b;
  };
  const template = encodeRecordBatch(Array.from({ length: 64 }, () => ({ key: null, value: value() })), { codec: 'none' });
  while (p.bytes < bytes) await p.append(Buffer.from(template));
  const segments = p.segmentCount;
  await log.close();
  if (segments !== 1) throw new Error(`expected one segment, got ${segments}`);
  return path.join(dataDir, 'bench-0', '00000000000000000000.log');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function runReader(port: number, request?: string): Promise<{ bytes: number; seconds: number }> {
  const args = ['-c', PY_READER, String(port)];
  if (request) args.push(request);
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('python3', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    // Bounded: a run that stalls fails the benchmark instead of hanging it.
    const timer = setTimeout(() => p.kill('SIGKILL'), runTimeoutMs);
    p.stdout!.on('data', (d) => (s += d));
    p.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(s);
      else reject(new Error(`reader on port ${port} exited with ${code}${code === null ? ' (killed after a stall)' : ''}`));
    });
  });
  const [bytes, seconds] = out.trim().split(' ').map(Number);
  return { bytes, seconds };
}

async function main(): Promise<void> {
  const runs = arg('runs', 7);
  const gib = arg('gib', 1);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-replay-bench-'));
  const children: ChildProcess[] = [];
  try {
    const t0 = performance.now();
    const loadStart = os.loadavg();
    const dataA = path.join(work, 'a');
    const file = await buildPartition(dataA, gib * GiB);
    // A second data directory of hard links (same inodes, same page cache) so that the
    // sendfile and fallback servers can run side by side despite the directory lock.
    const dataB = path.join(work, 'b');
    execFileSync('cp', ['-al', dataA, dataB]);
    const fileBytes = fs.statSync(file).size;
    process.stderr.write(`built a ${(fileBytes / GiB).toFixed(3)} GiB partition in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

    const sluice = (dataDir: string, env: NodeJS.ProcessEnv) => async () => {
      const proc = spawn(process.execPath, [path.join(repoRoot, 'bin/sluice.js'), 'serve', '--port', '0', '--replay-port', '0', '--data-dir', dataDir, '--segment-bytes', String(2 ** 31 - 1), '--flush', 'never', '--log-level', 'warn'], {
        cwd: repoRoot,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(proc);
      const line = JSON.parse(await firstLine(proc)) as { replayPort: number };
      return { proc, port: line.replayPort };
    };
    const request = JSON.stringify({ topic: 'bench', partition: 0, from: 'earliest' });
    const methods: Method[] = [
      {
        name: 'python-sendfile',
        async start() {
          const proc = spawn('python3', ['-c', PY_SENDFILE_SERVER, file], { stdio: ['ignore', 'pipe', 'inherit'] });
          children.push(proc);
          return { proc, port: Number(await firstLine(proc)) };
        },
      },
      { name: 'sluice', start: sluice(dataA, { SLUICE_SENDFILE: '' }), request },
      { name: 'sluice-fallback', start: sluice(dataB, { SLUICE_SENDFILE: 'off' }), request },
      {
        name: 'node-pipe',
        async start() {
          const proc = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'loadtest/replay-bench.ts'), '--pipe-server', file], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
          children.push(proc);
          return { proc, port: Number(await firstLine(proc)) };
        },
      },
    ];
    const only = process.argv.indexOf('--methods');
    if (only > 0) {
      const keep = new Set(process.argv[only + 1].split(','));
      for (let i = methods.length - 1; i >= 0; i--) if (!keep.has(methods[i].name) && i > 0) methods.splice(i, 1);
    }
    const servers = await Promise.all(methods.map((m) => m.start()));
    process.stderr.write(`servers: ${methods.map((m, i) => `${m.name} :${servers[i].port}`).join(', ')}\n`);
    const results = methods.map(() => ({ gbps: [] as number[], cpuPerGiB: [] as number[] }));
    for (let round = 0; round <= runs; round++) {
      for (let i = 0; i < methods.length; i++) {
        const { proc, port } = servers[i];
        const before = cpuNs(proc.pid!);
        const r = await runReader(port, methods[i].request);
        const cpu = (cpuNs(proc.pid!) - before) / 1e9;
        process.stderr.write(`${round === 0 ? 'warm-up' : `run ${round}`} ${methods[i].name}: ${(r.bytes / r.seconds / 1e9).toFixed(2)} GB/s, server CPU ${cpu.toFixed(3)} s\n`);
        if (r.bytes < fileBytes) throw new Error(`${methods[i].name}: received ${r.bytes} of ${fileBytes} bytes`);
        if (round === 0) continue; // warm-up: page cache, JIT, TCP buffers
        results[i].gbps.push(fileBytes / r.seconds / 1e9);
        results[i].cpuPerGiB.push(cpu / (fileBytes / GiB));
      }
    }
    const base = median(results[0].gbps);
    const baseCpu = median(results[0].cpuPerGiB);
    // Each round's figure against python-sendfile's in the same round: the machine's other
    // load changes from round to round, and a ratio of neighbours cancels most of it.
    const paired = (i: number) => median(results[i].gbps.map((g, k) => g / results[0].gbps[k]));
    const cpus = os.cpus();
    const lines = [
      `sluice replay benchmark: ${(fileBytes / GiB).toFixed(3)} GiB segment file over loopback, median of ${runs} runs (after 1 warm-up), reader: python3 recv_into 1 MiB, discarding`,
      `machine: ${cpus[0]?.model ?? '?'} x ${cpus.length} CPUs, ${(os.totalmem() / GiB).toFixed(0)} GiB RAM, Linux ${os.release()}, Node ${process.version}, ${execFileSync('python3', ['--version']).toString().trim()}, sendfile addon ${loadSendfile() ? 'loaded' : 'NOT loaded (sluice = fallback)'}`,
      `load average at the start / end: ${loadStart.map((x) => x.toFixed(1)).join(' ')} / ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (other work on the machine skews the figures)`,
      '',
      '| method | GB/s (median) | runs GB/s | vs python (medians) | vs python (per-round, median) | server CPU s/GiB (median) | CPU vs python |',
      '|---|---|---|---|---|---|---|',
      ...methods.map((m, i) => {
        const g = median(results[i].gbps);
        const c = median(results[i].cpuPerGiB);
        return `| ${m.name} | ${g.toFixed(2)} | ${results[i].gbps.map((x) => x.toFixed(2)).join(' ')} | ${(g / base).toFixed(2)} | ${paired(i).toFixed(2)} | ${c.toFixed(3)} | ${(c / baseCpu).toFixed(2)} |`;
      }),
      '',
      `total time ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

// ---- server mode: `replay-bench.ts --pipe-server FILE` (the createReadStream baseline) ----
if (process.argv[2] === '--pipe-server') {
  const file = process.argv[3];
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    fs.createReadStream(file).pipe(socket);
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
} else {
  await main();
}

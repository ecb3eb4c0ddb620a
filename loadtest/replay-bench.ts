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
import { PY_SENDFILE_SERVER, buildPartition, firstLine, runReader } from './lib/replay-core.ts';
import { cpuNs } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { loadSendfile } from '../src/common/sendfile.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
const GiB = 1024 ** 3;

interface Method {
  name: string;
  start(): Promise<{ proc: ChildProcess; port: number }>;
  request?: string;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
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
      const proc = spawn(process.execPath, [path.join(repoRoot, 'bin/sluice.js'), 'serve', '--port', '0', '--replay-port', '0', '--kafka-port', '-1', '--data-dir', dataDir, '--segment-bytes', String(2 ** 31 - 1), '--flush', 'never', '--log-level', 'warn'], {
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

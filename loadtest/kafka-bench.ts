/**
 * Question: how fast does sluice's Kafka port deliver a partition, and at what server CPU,
 * next to its own TCP replay port and to the best a plain program does with the same file;
 * and how many records per second does it take from kcat under flush=always?
 *
 * Consumption: one >= 1 GiB single-segment partition (64 records of 1 KiB per batch, the
 * replay benchmark's), served by one `sluice serve` (replay and Kafka ports on the same data)
 * and by Python's `socket.sendfile` of the segment file (the yardstick). Readers, each a
 * separate process except kafkajs:
 *   python-sendfile      python3 recv_into 1 MiB, discarding: the file as fast as it goes
 *   sluice-replay        the same reader, one replay request from "earliest"
 *   kafka-fetch-64MiB    python3 speaking Fetch v4: one partition, max_bytes = partition_max
 *                        = 64 MiB (replay's chunk), walks the batch headers for the next offset,
 *                        receives through a 1 MiB buffer like the replay reader: sendfile path
 *   kafka-fetch-1MiB     the same with 1 MiB per fetch (librdkafka's default partition max):
 *                        (sendfile too: above limits.sendfileBytesMin)
 *   kcat                 kcat -C -o beginning -e (librdkafka 2.0.2, defaults), output to /dev/null
 *   kcat-64MiB           kcat with fetch.message.max.bytes = fetch.max.bytes = 64 MiB, and its
 *                        prefetch queue (queued.max.messages.kbytes) raised to 1 GiB: at its
 *                        64 MiB default one answer fills it and librdkafka backs off (0.1 GB/s)
 *   kafkajs              a kafkajs 2.2 consumer (eachBatch, no commits), defaults
 * Reported: median throughput of the file's bytes over each run's wall time, the ratio to
 * sluice-replay and to python-sendfile, and the server's CPU per GiB (schedstat of its
 * threads before and after). kcat and kafkajs decode every record: they measure the client.
 * The raw Fetch readers measure the server, like the replay reader does.
 *
 * Production: a fresh `sluice serve --flush always`, then `kcat -P` of N lines of 100-byte
 * values (librdkafka's defaults: acks all, linger 5 ms, batches up to 10,000 records or 1 MB,
 * no compression); the rate is N over kcat's wall time (it exits once every record is acked).
 *
 * Estimate written before measuring: Fetch with 64 MiB answers is replay with a request per
 * 64 MiB: a fixed cost of ~0.1 ms per request next to ~25 ms of sendfile, so >= 0.95x replay;
 * with 1 MiB answers the request round trip (~50-100 us on loopback) is 10-20% of a 0.4 ms
 * transfer. Produce: a 1 MB batch of ~9,000 records costs a CRC (~0.1 ms native), a record walk
 * (~2-3 ms in JS) and its share of an fsync (~1-5 ms, shared by the requests in flight):
 * ~1-2 M records/s before kcat itself, which formats and sends from one thread.
 *
 * Usage: npm run bench:kafka [-- --runs 3 --gib 1 --records 2000000]. Bounded: a few minutes.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { loadSendfile } from '../src/common/sendfile.ts';
import { PY_SENDFILE_SERVER, buildPartition, firstLine, runReader } from './lib/replay-core.ts';
import { cpuNs } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { formatTable, num } from './lib/table.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const runTimeoutMs = 120_000;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const PY_FETCH_READER = `
import socket, struct, sys, time
port = int(sys.argv[1]); topic = sys.argv[2].encode(); maxb = int(sys.argv[3]); end = int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
CH = 1 << 20
buf = bytearray(CH); mv = memoryview(buf)
def recv_exact(n):
    got = 0
    while got < n:
        k = s.recv_into(mv[got:n], n - got)
        if k == 0: raise EOFError()
        got += k
# Everything before the records of a one-partition Fetch v4 answer (aborted_transactions is null).
prefix = 4 + 4 + 4 + 2 + len(topic) + 4 + 4 + 2 + 8 + 8 + 4 + 4
t0 = time.perf_counter(); off = 0; corr = 0
client = b"bench"
while off < end:
    corr += 1
    body = struct.pack(">hhih", 1, 4, corr, len(client)) + client
    body += struct.pack(">iiiib", -1, 500, 1, maxb, 0)
    body += struct.pack(">ih", 1, len(topic)) + topic
    body += struct.pack(">iiqi", 1, 0, off, maxb)
    s.sendall(struct.pack(">i", len(body)) + body)
    recv_exact(4 + prefix)
    size = struct.unpack_from(">i", buf, 0)[0]
    err = struct.unpack_from(">h", buf, 4 + prefix - 4 - 4 - 8 - 8 - 2)[0]
    if err != 0: raise SystemExit("fetch error %d" % err)
    rlen = struct.unpack_from(">i", buf, 4 + prefix - 4)[0]
    # Stream the records through the 1 MiB buffer (as the replay reader does), keeping only
    # the batch headers, which may straddle two reads.
    pos = 0; nxt = 0; hdr = bytearray()
    while pos < rlen:
        k = s.recv_into(mv, min(CH, rlen - pos))
        if k == 0: raise EOFError()
        stop = pos + k
        while nxt < stop:
            a = max(nxt + len(hdr), pos); b = min(nxt + 27, stop)
            if a < b: hdr += mv[a - pos:b - pos]
            if len(hdr) < 27: break
            base, blen = struct.unpack_from(">qi", hdr, 0)
            off = base + struct.unpack_from(">i", hdr, 23)[0] + 1
            nxt += 12 + blen; hdr = bytearray()
        pos = stop
t1 = time.perf_counter()
print(0, t1 - t0, flush=True)
`;

function runProcess(cmd: string, args: string[], input?: string): Promise<{ seconds: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => {
      if (out.length < 4096) out += d;
    });
    p.stderr!.on('data', (d) => {
      if (err.length < 4096) err += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), runTimeoutMs);
    p.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ seconds: (performance.now() - t0) / 1000, stdout: out });
      else reject(new Error(`${cmd} exited with ${code}: ${err}`));
    });
    if (input !== undefined) {
      const stream = fs.createReadStream(input);
      stream.pipe(p.stdin!);
    }
  });
}

async function kafkajsConsume(port: number, hw: number): Promise<number> {
  const require = createRequire(import.meta.url);
  const { Kafka, logLevel } = require('kafkajs');
  const kafka = new Kafka({ clientId: 'bench', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `bench-${Math.random()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: 'bench', fromBeginning: true });
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('kafkajs stalled')), runTimeoutMs);
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }: any) => {
        if (Number(batch.lastOffset()) >= hw - 1) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  const seconds = (performance.now() - t0) / 1000;
  await consumer.disconnect();
  return seconds;
}

async function main(): Promise<void> {
  const runs = arg('runs', 3);
  const gib = arg('gib', 1);
  const produceRecords = arg('records', 2_000_000);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-kafka-bench-'));
  const children: ChildProcess[] = [];
  const t0 = performance.now();
  const loadStart = os.loadavg();
  try {
    const dataDir = path.join(work, 'consume');
    const file = await buildPartition(dataDir, gib * GiB);
    const fileBytes = fs.statSync(file).size;
    const batchBytes = 12 + fs.readFileSync(file).subarray(0, 12).readInt32BE(8);
    const hw = (fileBytes / batchBytes) * 64;
    process.stderr.write(`built a ${(fileBytes / GiB).toFixed(3)} GiB partition (${num(hw)} records) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

    const py = spawn('python3', ['-c', PY_SENDFILE_SERVER, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(py);
    const pyPort = Number(await firstLine(py));
    const srv = spawn(process.execPath, [path.join(repoRoot, 'bin/sluice.js'), 'serve', '--port', '0', '--replay-port', '0', '--kafka-port', '0', '--data-dir', dataDir, '--segment-bytes', String(2 ** 31 - 1), '--flush', 'never', '--log-level', 'warn'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(srv);
    const ports = JSON.parse(await firstLine(srv)) as { replayPort: number; kafkaPort: number };
    const broker = `127.0.0.1:${ports.kafkaPort}`;
    const replayRequest = JSON.stringify({ topic: 'bench', partition: 0, from: 'earliest' });

    interface Method {
      name: string;
      pid: () => number;
      run(): Promise<number>;
    }
    const fetchReader = (maxBytes: number) => async () => (await runProcess('python3', ['-c', PY_FETCH_READER, String(ports.kafkaPort), 'bench', String(maxBytes), String(hw)])).seconds;
    const kcatArgs = ['-b', broker, '-C', '-t', 'bench', '-o', 'beginning', '-e', '-q', '-f', '%o\\n'];
    const methods: Method[] = [
      { name: 'python-sendfile', pid: () => py.pid!, run: async () => (await runReader(pyPort)).seconds },
      { name: 'sluice-replay', pid: () => srv.pid!, run: async () => (await runReader(ports.replayPort, replayRequest)).seconds },
      { name: 'kafka-fetch-64MiB', pid: () => srv.pid!, run: fetchReader(64 * MiB) },
      { name: 'kafka-fetch-1MiB', pid: () => srv.pid!, run: fetchReader(1 * MiB) },
      { name: 'kcat', pid: () => srv.pid!, run: async () => (await runProcess('kcat', kcatArgs)).seconds },
      {
        name: 'kcat-64MiB',
        pid: () => srv.pid!,
        run: async () =>
          (await runProcess('kcat', [...kcatArgs, '-X', `fetch.message.max.bytes=${64 * MiB}`, '-X', `fetch.max.bytes=${64 * MiB}`, '-X', `receive.message.max.bytes=${65 * MiB}`, '-X', 'queued.max.messages.kbytes=1048576'])).seconds,
      },
      { name: 'kafkajs', pid: () => srv.pid!, run: () => kafkajsConsume(ports.kafkaPort, hw) },
    ];
    const results = methods.map(() => ({ gbps: [] as number[], cpuPerGiB: [] as number[] }));
    for (let round = 0; round <= runs; round++) {
      for (let i = 0; i < methods.length; i++) {
        const pid = methods[i].pid();
        const before = cpuNs(pid);
        const seconds = await methods[i].run();
        const cpu = (cpuNs(pid) - before) / 1e9;
        const gbps = fileBytes / seconds / 1e9;
        process.stderr.write(`${round === 0 ? 'warm-up' : `run ${round}`} ${methods[i].name}: ${gbps.toFixed(2)} GB/s, server CPU ${cpu.toFixed(3)} s\n`);
        if (round === 0) continue;
        results[i].gbps.push(gbps);
        results[i].cpuPerGiB.push(cpu / (fileBytes / GiB));
      }
    }
    srv.kill('SIGTERM');

    // --- production -------------------------------------------------------------------
    const input = path.join(work, 'records.txt');
    const line = `${'v'.repeat(99)}\n`;
    const fd = fs.openSync(input, 'w');
    const chunk = line.repeat(100_000);
    for (let n = 0; n < produceRecords; n += 100_000) fs.writeSync(fd, n + 100_000 <= produceRecords ? chunk : line.repeat(produceRecords - n));
    fs.closeSync(fd);
    const produceRuns: { recs: number; cpuPerM: number }[] = [];
    for (let round = 0; round <= runs; round++) {
      const pdir = path.join(work, `produce-${round}`);
      const p = spawn(process.execPath, [path.join(repoRoot, 'bin/sluice.js'), 'serve', '--port', '0', '--replay-port', '0', '--kafka-port', '0', '--data-dir', pdir, '--flush', 'always', '--log-level', 'warn'], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(p);
      const pp = JSON.parse(await firstLine(p)) as { kafkaPort: number };
      const before = cpuNs(p.pid!);
      const r = await runProcess('kcat', ['-b', `127.0.0.1:${pp.kafkaPort}`, '-P', '-t', 'produced', '-p', '0'], input);
      const cpu = (cpuNs(p.pid!) - before) / 1e9;
      const recs = produceRecords / r.seconds;
      process.stderr.write(`${round === 0 ? 'warm-up' : `run ${round}`} kcat produce: ${num(recs)} rec/s, server CPU ${cpu.toFixed(2)} s\n`);
      const hwNow = await new Promise<number>((resolve, reject) => {
        const k = spawn('kcat', ['-b', `127.0.0.1:${pp.kafkaPort}`, '-Q', '-t', 'produced:0:-1']);
        let out = '';
        k.stdout.on('data', (d) => (out += d));
        k.once('exit', () => {
          const m = /produced \[0\] offset (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
          else reject(new Error(`kcat -Q: ${out}`));
        });
      });
      if (hwNow !== produceRecords) throw new Error(`produced ${produceRecords} records but the hw is ${hwNow}`);
      p.kill('SIGTERM');
      await new Promise((res) => p.once('exit', res));
      fs.rmSync(pdir, { recursive: true, force: true });
      if (round > 0) produceRuns.push({ recs, cpuPerM: cpu / (produceRecords / 1e6) });
    }

    const replay = median(results[1].gbps);
    const python = median(results[0].gbps);
    const replayCpu = median(results[1].cpuPerGiB);
    const cpus = os.cpus();
    const rows = methods.map((m, i) => {
      const g = median(results[i].gbps);
      const c = median(results[i].cpuPerGiB);
      return [m.name, g.toFixed(2), results[i].gbps.map((x) => x.toFixed(2)).join(' '), (g / replay).toFixed(2), (g / python).toFixed(2), i === 0 ? '-' : c.toFixed(3), i === 0 ? '-' : (c / replayCpu).toFixed(2)];
    });
    const lines = [
      `sluice Kafka benchmark: ${(fileBytes / GiB).toFixed(3)} GiB partition (${num(hw)} records of 1 KiB in batches of 64) over loopback, median of ${runs} runs after 1 warm-up`,
      `machine: ${cpus[0]?.model ?? '?'} x ${cpus.length} CPUs, ${(os.totalmem() / GiB).toFixed(0)} GiB RAM, Linux ${os.release()}, Node ${process.version}, ${execFileSync('python3', ['--version']).toString().trim()}, ${execFileSync('kcat', ['-V']).toString().split('\n')[0].trim()}, sendfile addon ${loadSendfile() ? 'loaded' : 'NOT loaded'}`,
      `load average at the start / end: ${loadStart.map((x) => x.toFixed(1)).join(' ')} / ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (other work on the machine skews the figures)`,
      '',
      formatTable(['reader', 'GB/s (median)', 'runs GB/s', 'vs replay', 'vs python', 'server CPU s/GiB', 'CPU vs replay'], rows),
      '',
      formatTable(
        ['producer', 'acked rec/s (median)', 'runs rec/s', 'server CPU s per M records'],
        [['kcat -P, 100 B values, flush=always', num(median(produceRuns.map((r) => r.recs))), produceRuns.map((r) => num(r.recs)).join(' '), median(produceRuns.map((r) => r.cpuPerM)).toFixed(2)]],
      ),
      '',
      `${num(produceRecords)} records per produce run; total time ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();

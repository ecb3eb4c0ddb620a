/**
 * The core of the TCP replay benchmark, shared by loadtest/replay-bench.ts and the side-by-side
 * run (loadtest/run.ts): building a >= 1 GiB single-segment partition, Python's
 * `socket.sendfile` server (the yardstick), and a discarding Python reader that times a replay.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { LogManager, encodeRecordBatch } from '../../engine/index.ts';

const runTimeoutMs = 30_000;

export const PY_SENDFILE_SERVER = `
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

export const PY_READER = `
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

export function firstLine(proc: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

export async function buildPartition(dataDir: string, bytes: number): Promise<string> {
  const log = await LogManager.open({ dataDir, segmentBytes: 2 ** 31 - 1, flush: 'never', retentionCheckMs: 0 });
  await log.createTopic('bench', { partitions: 1 });
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

export async function runReader(port: number, request?: string): Promise<{ bytes: number; seconds: number }> {
  const args = [String(port)];
  if (request) args.push(request);
  const [bytes, seconds] = await runPython(PY_READER, args, runTimeoutMs, `reader on port ${port}`);
  return { bytes, seconds };
}

/**
 * Runs a python3 reader and returns the numbers it prints on one line. Bounded: a run that
 * stalls past `timeoutMs` is killed and fails the benchmark instead of hanging it.
 */
export function runPython(script: string, args: string[], timeoutMs: number, what: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout!.on('data', (d) => (out += d));
    p.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim().split(' ').map(Number));
      else reject(new Error(`${what} exited with ${code}${code === null ? ' (killed after a stall)' : ''}`));
    });
  });
}


/**
 * Runs a real `sluice serve` in a child process for the SDK and CLI tests: free ports, a data
 * directory that survives restart() and kill(), the listening line read from stdout.
 */
import { tempDir } from '../helpers/temp-dir.ts';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const bin = path.join(root, 'bin/sluice.js');

export interface ServerProcess {
  port: number;
  replayPort: number;
  url: string;
  httpUrl: string;
  dataDir: string;
  /** Stops with SIGTERM and starts again on the same ports and data directory. */
  restart(opts?: { downMs?: number; whileDown?: () => Promise<void> }): Promise<void>;
  /** SIGKILL, and waits for the exit; the data directory stays (stop() removes it). */
  kill(): Promise<void>;
  /** SIGTERM (if still running), then removes the data directory. */
  stop(): Promise<void>;
  stderr(): string;
}

function startChild(args: string[]): Promise<{ child: ChildProcess; port: number; replayPort: number; err: string[] }> {
  const child = spawn(process.execPath, [bin, 'serve', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' } });
  const err: string[] = [];
  child.stderr!.on('data', (d: Buffer) => {
    err.push(d.toString());
    if (err.length > 200) err.shift();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within 30 s: ${err.join('')}`));
    }, 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      const line = JSON.parse(out.slice(0, nl)) as { port: number; replayPort: number };
      resolve({ child, port: line.port, replayPort: line.replayPort, err });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${err.join('')}`));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** `dataDir`: start on this directory (e.g. a copy of another server's) instead of a new one. */
export async function startServer(extra: string[] = [], opts: { dataDir?: string } = {}): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? tempDir('sluice-sdk-');
  // Ports below the kernel's ephemeral range (32768-60999 here): a --port 0 port is taken from
  // that range, and while the server is down for a restart any outgoing connection on the
  // machine may grab it as its local port, so restarting on it could fail. A bounded number of tries.
  let cur: Awaited<ReturnType<typeof startChild>> | undefined;
  let lastErr: unknown;
  for (let i = 0; i < 10 && !cur; i++) {
    const p = 20_000 + 2 * Math.floor(Math.random() * 6000);
    try {
      cur = await startChild(['--port', String(p), '--replay-port', String(p + 1), '--kafka-port', '-1', '--data-dir', dataDir, ...extra]);
    } catch (err) {
      lastErr = err;
    }
  }
  if (!cur) throw lastErr;
  let child = cur;
  const port = cur.port;
  const replayPort = cur.replayPort;
  return {
    port,
    replayPort,
    url: `ws://127.0.0.1:${port}`,
    httpUrl: `http://127.0.0.1:${port}`,
    dataDir,
    async restart(opts = {}) {
      await stopChild(child.child);
      if (opts.whileDown) await opts.whileDown();
      if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
      // Same ports, so that clients reconnect to the same URL. A port may linger in TIME_WAIT
      // for a moment: a bounded number of tries.
        for (let i = 0; i < 20; i++) {
        try {
          child = await startChild(['--port', String(port), '--replay-port', String(replayPort), '--kafka-port', '-1', '--data-dir', dataDir, ...extra]);
          return;
        } catch (err) {
          lastErr = err;
              await new Promise((r) => setTimeout(r, 250));
        }
      }
      throw lastErr;
    },
    async kill() {
      const c = child.child;
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
    async stop() {
      await stopChild(child.child);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
    stderr: () => child.err.join(''),
  };
}

/**
 * A copy of a stopped server's data directory (without its lock file): a second server
 * started on it has the same topics, epochs and offsets, as two nodes of a cluster would.
 */
export function cloneDataDir(dataDir: string): string {
  const copy = tempDir('sluice-sdk-clone-');
  fs.cpSync(dataDir, copy, { recursive: true, filter: (src) => path.basename(src) !== '.lock' });
  return copy;
}

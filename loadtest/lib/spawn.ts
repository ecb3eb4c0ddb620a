/**
 * Starting the servers under test as their own processes on 127.0.0.1: sluice itself (through
 * the test helper that reads its "listening" line), Node peers that print {"port":P}, and
 * outside binaries (nats-server, redis-server) found on PATH or, when running as root and
 * missing, installed with apt-get. Nothing here throws for a missing peer: `findOrInstall`
 * returns the reason, and the caller prints it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sleep } from './machine.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

import { type ServerProcess, startServer } from '../../test/helpers/server.ts';

export type { ServerProcess };

/**
 * Every server this run started, killed when the run exits by any path (an exception in a
 * scenario once left a nats-server running after the bench had died).
 */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
export function track(proc: ChildProcess): ChildProcess {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

/** Where sluice servers write a V8 CPU profile each (`--cpu-prof`), when asked for. */
let cpuProfileDir: string | null = null;
export function profileSluiceInto(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  cpuProfileDir = dir;
}

export async function startSluice(opts: Parameters<typeof startServer>[0] = {}): Promise<ServerProcess> {
  const nodeArgs = cpuProfileDir === null ? opts.nodeArgs : ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`, ...(opts.nodeArgs ?? [])];
  const srv = await startServer({ ...opts, nodeArgs });
  track(srv.proc);
  return srv;
}

/** The first line a child prints on stdout (rejects if it exits first). */
export function firstLine(proc: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`exited with ${code} before printing its port`)));
  });
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Polls until a TCP connect to 127.0.0.1:port succeeds, at most `ms`. */
export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${ms} ms`);
    await sleep(50);
  }
}

export function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => (clearTimeout(t), resolve()));
    proc.kill('SIGTERM');
  });
}

/** Spawns `node --import tsx <file>` and reads the {"port":P} line it prints. */
export async function spawnNodePeer(file: string): Promise<{ proc: ChildProcess; port: number }> {
  const proc = track(spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, file)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] }));
  try {
    return { proc, port: (JSON.parse(await firstLine(proc)) as { port: number }).port };
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
}

function which(bin: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/usr/local/bin', '/sbin'])) {
    const p = path.join(dir, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * The path of `bin`, installing Debian package `pkg` first when it is missing and this process
 * is root; otherwise `{ missing: reason }`.
 */
export function findOrInstall(bin: string, pkg: string): string | { missing: string } {
  const found = which(bin);
  if (found) return found;
  if (process.getuid?.() !== 0) return { missing: `${bin} not found and not root, so not installed (apt-get install ${pkg})` };
  try {
    process.stderr.write(`installing ${pkg} with apt-get...\n`);
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 180_000 });
  } catch (e) {
    return { missing: `apt-get install ${pkg} failed: ${(e as Error).message.split('\n')[0]}` };
  }
  return which(bin) ?? { missing: `${bin} still not found after apt-get install ${pkg}` };
}

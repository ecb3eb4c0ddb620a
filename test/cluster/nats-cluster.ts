/**
 * A real three-server NATS JetStream cluster on 127.0.0.1 for the cluster tests and the
 * cluster benchmark: each server has its own `server_name`, a JetStream `store_dir` in a temp
 * dir, and routes to the other two. Ports are chosen free, below the kernel's ephemeral range
 * (32768 and up here), so that a killed server can start again on the same ports without an
 * outgoing connection having taken one meanwhile.
 *
 * Every server started is killed when the test process exits, by any path.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from '../helpers/temp-dir.ts';

const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** How long a server may take to accept clients. */
const serverStartMs = 15_000;
/** How long the cluster may take to elect a JetStream meta leader. */
const clusterReadyMs = 30_000;
/** Largest message a client may publish: sluice batches up to a few MiB (the default is 1 MiB). */
export const natsMaxPayloadBytes = 8 * 1024 * 1024;

export interface NatsServer {
  readonly name: string;
  readonly clientPort: number;
  readonly clusterPort: number;
  readonly monitorPort: number;
  readonly url: string;
  readonly running: boolean;
  /** The running process's pid; null while down. */
  readonly pid: number | null;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** Starts again on the same ports and store dir. */
  start(): Promise<void>;
  log(): string;
}

export interface NatsCluster {
  servers: NatsServer[];
  /** `nats://127.0.0.1:P,...` of every server, as `--cluster` takes it. */
  urls: string;
  /** Waits until every running server knows a JetStream meta leader and a leader for each stream it holds. */
  waitReady(ms?: number): Promise<void>;
  stop(): Promise<void>;
}

/** What `/jsz?accounts=true&streams=true` answers, as far as the tests need. */
export interface JszBody {
  meta_cluster?: { leader?: string };
  account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[];
}

/** A server's JetStream view: its meta leader and the streams it holds, each with its leader. */
export async function jsz(server: NatsServer): Promise<JszBody> {
  const res = await fetch(`http://127.0.0.1:${server.monitorPort}/jsz?accounts=true&streams=true`);
  return (await res.json()) as JszBody;
}

async function isFree(port: number): Promise<boolean> {
  const srv = net.createServer();
  return new Promise((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** `count` distinct free ports below the ephemeral range; a bounded number of tries. */
async function freePorts(count: number): Promise<number[]> {
  const out = new Set<number>();
  for (let tries = 0; out.size < count && tries < 500; tries++) {
    const p = 20_000 + Math.floor(Math.random() * 12_000);
    if (!out.has(p) && (await isFree(p))) out.add(p);
  }
  if (out.size < count) throw new Error('no free ports');
  return [...out];
}

function waitForPort(port: number, ms: number, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (proc.exitCode !== null || proc.signalCode !== null) return reject(new Error(`nats-server exited (${proc.exitCode ?? proc.signalCode}):\n${log()}`));
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nats-server did not listen on ${port} within ${ms} ms:\n${log()}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startNatsCluster(opts: { name?: string; size?: number } = {}): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  const clusterName = opts.name ?? 'sluice-test';
  const dir = tempDir('sluice-nats-');
  const ports = await freePorts(size * 3);
  const defs = Array.from({ length: size }, (_, i) => ({
    name: `n${i + 1}`,
    clientPort: ports[i * 3],
    clusterPort: ports[i * 3 + 1],
    monitorPort: ports[i * 3 + 2],
  }));
  const servers: NatsServer[] = defs.map((d) => {
    const storeDir = path.join(dir, d.name);
    const conf = path.join(dir, `${d.name}.conf`);
    fs.mkdirSync(storeDir, { recursive: true });
    const routes = defs.filter((o) => o !== d).map((o) => `nats-route://127.0.0.1:${o.clusterPort}`);
    fs.writeFileSync(
      conf,
      [
        `server_name: ${d.name}`,
        `listen: 127.0.0.1:${d.clientPort}`,
        `http: 127.0.0.1:${d.monitorPort}`,
        `max_payload: ${natsMaxPayloadBytes}`,
        `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
        `cluster { name: ${clusterName}, listen: 127.0.0.1:${d.clusterPort}, routes: [${routes.join(', ')}] }`,
        '',
      ].join('\n'),
    );
    let proc: ChildProcess | null = null;
    let out = '';
    const server: NatsServer = {
      ...d,
      url: `nats://127.0.0.1:${d.clientPort}`,
      get running() {
        return proc !== null && proc.exitCode === null && proc.signalCode === null;
      },
      get pid() {
        return server.running ? (proc!.pid ?? null) : null;
      },
      async start() {
        if (server.running) return;
        const p = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
        started.add(p);
        p.once('exit', () => started.delete(p));
        const keep = (b: Buffer): void => {
          out += b.toString();
          if (out.length > 200_000) out = out.slice(-100_000);
        };
        p.stdout!.on('data', keep);
        p.stderr!.on('data', keep);
        proc = p;
        await waitForPort(d.clientPort, serverStartMs, p, () => out);
      },
      async kill() {
        const p = proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGKILL');
        await exited;
      },
      log: () => out,
    };
    return server;
  });
  const cluster: NatsCluster = {
    servers,
    urls: servers.map((s) => s.url).join(','),
    async waitReady(ms = clusterReadyMs) {
      const deadline = Date.now() + ms;
      for (;;) {
        let ready = true;
        for (const s of servers) {
          if (!s.running) continue;
          try {
            const body = await jsz(s);
            if (!body.meta_cluster?.leader) ready = false;
            // A meta leader is not enough after a restart: a stream (a partition's, or the
            // topics bucket) may still be electing its own, and a write to it would time out.
            for (const a of body.account_details ?? []) for (const st of a.stream_detail ?? []) if (!st.cluster?.leader) ready = false;
          } catch {
            ready = false;
          }
        }
        if (ready) return;
        if (Date.now() > deadline) throw new Error(`no JetStream meta leader, or a stream without a leader, within ${ms} ms:\n${servers.map((s) => s.log().slice(-2000)).join('\n---\n')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      await Promise.all(servers.map((s) => s.kill()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(servers.map((s) => s.start()));
    await cluster.waitReady();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

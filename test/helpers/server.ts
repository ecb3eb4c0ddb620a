/**
 * Test helpers: a real `sluice serve` process on 127.0.0.1 with free ports and its own data
 * directory, and a small WebSocket client (the `ws` package) that decodes what it gets.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './temp-dir.ts';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { type StoredRecord, decodeBatches } from '../../engine/codec/index.ts';
import { parseDataFrame } from '../../src/gateway/frames.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServerProcess {
  port: number;
  replayPort: number;
  /** The Kafka listener's port (-1 when started with --kafka-port -1). */
  kafkaPort: number;
  dataDir: string;
  proc: ChildProcess;
  url: string;
  http: string;
  stderr(): string;
  /** SIGTERM, then waits for the exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** VmRSS of the server process, in bytes. */
  rss(): number;
  /** Anonymous memory of the server (RssAnon: heaps and buffers, without mapped segment files), in bytes. */
  rssAnon(): number;
  /** File descriptors the server process holds open. */
  fds(): number;
}

export { tempDir };

/**
 * Spawns `node bin/sluice.js serve --port 0 --replay-port 0 --kafka-port 0 --data-dir <dir>`
 * and reads its listening line; under `ulimit -n <ulimit>` when given (bash execs node: the
 * pid is the server's).
 */
export async function startServer(opts: { dataDir?: string; args?: string[]; env?: NodeJS.ProcessEnv; ulimit?: number; nodeArgs?: string[] } = {}): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? tempDir();
  const argv = [...(opts.nodeArgs ?? []), 'bin/sluice.js', 'serve', '--port', '0', '--replay-port', '0', '--kafka-port', '0', '--data-dir', dataDir, '--log-level', 'warn', ...(opts.args ?? [])];
  const [cmd, cmdArgs] =
    opts.ulimit === undefined
      ? [process.execPath, argv]
      : ['bash', ['-c', `ulimit -n ${opts.ulimit} && exec "$0" "$@"`, process.execPath, ...argv]];
  const proc = spawn(cmd, cmdArgs, {
    cwd: root,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 100_000) err = err.slice(-50_000);
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const lines = readline.createInterface({ input: proc.stdout! });
  const listening = await new Promise<{ port: number; replayPort: number; kafkaPort: number }>((resolve, reject) => {
    lines.on('line', (line) => {
      try {
        const m = JSON.parse(line);
        if (m.event === 'listening') resolve(m);
      } catch {
        // not ours
      }
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${err}`)));
  });
  return {
    ...listening,
    dataDir,
    proc,
    url: `ws://127.0.0.1:${listening.port}/v1/ws`,
    http: `http://127.0.0.1:${listening.port}`,
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
    fds() {
      return fs.readdirSync(`/proc/${proc.pid}/fd`).length;
    },
    rssAnon() {
      const m = /RssAnon:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
      if (!m) throw new Error('no RssAnon');
      return Number(m[1]) * 1024;
    },
    rss() {
      const status = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (!m) throw new Error('no VmRSS');
      return Number(m[1]) * 1024;
    },
  };
}

export interface DataRecord extends StoredRecord {
  topic: string;
  partition: number;
}

type Json = Record<string, any>;

/** A WebSocket client that queues JSON answers and decodes DATA frames. */
export class Client {
  readonly ws: WebSocket;
  readonly messages: Json[] = [];
  readonly records: DataRecord[] = [];
  readonly frames: Buffer[] = [];
  /** Keep raw DATA frames (off by default to save memory). */
  keepFrames = false;
  /** Decode DATA frames into `records` (off for tests that check bytes themselves). */
  decode = true;
  onData: ((frame: Buffer) => void) | null = null;
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];
  private nextId = 1;
  /** Lowest offset each partition should deliver: records of a first batch below it are skipped. */
  private readonly minOffset = new Map<string, number>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        if (this.keepFrames) this.frames.push(data);
        if (this.onData) this.onData(data);
        if (this.decode) {
          const f = parseDataFrame(data);
          const k = `${f.topic}\0${f.partition}`;
          for (const r of decodeBatches(f.batches, this.minOffset.get(k) ?? 0)) this.records.push({ ...r, topic: f.topic, partition: f.partition });
        }
      } else {
        const m = JSON.parse(data.toString());
        if (m.op === 'subbed') for (const p of m.partitions) this.minOffset.set(`${m.topic}\0${p.partition}`, p.next);
        this.messages.push(m);
      }
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  static async connect(url: string, opts: { headers?: Record<string, string>; autoPong?: boolean } = {}): Promise<Client> {
    const ws = new WebSocket(url, { maxPayload: 512 * 1024 * 1024, headers: opts.headers, autoPong: opts.autoPong ?? true });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new Client(ws);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `pred()` holds (checked on every message), at most `ms` (a hang guard, not an assertion about time). */
  async until(pred: () => boolean, what = 'condition', ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (this.closed && !pred()) throw new Error(`socket closed (${this.closed.code}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(obj: Json): number {
    const id = obj.id ?? this.nextId++;
    this.ws.send(JSON.stringify({ ...obj, id }));
    return id;
  }

  /** Sends a request and waits for the JSON answer with its id. */
  async request(obj: Json): Promise<Json> {
    const id = this.send(obj);
    let found: Json | undefined;
    await this.until(() => (found = this.messages.find((m) => m.id === id)) !== undefined, `answer to ${obj.op} ${id}`);
    return found!;
  }

  async waitMessage(pred: (m: Json) => boolean, what = 'message'): Promise<Json> {
    let found: Json | undefined;
    await this.until(() => (found = this.messages.find(pred)) !== undefined, what);
    return found!;
  }

  recordsOf(topic: string, partition: number): DataRecord[] {
    return this.records.filter((r) => r.topic === topic && r.partition === partition);
  }

  close(): void {
    this.ws.terminate();
  }
}

export function http(method: string, url: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  return httpAs(null, method, url, body);
}

export const utf8 = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('utf8'));

/**
 * Tries a WebSocket upgrade that the server is expected to refuse: the HTTP status and the
 * JSON body it answered with (`upgraded` true if it upgraded after all).
 */
export async function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<{ upgraded: boolean; status: number; body: any }> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      resolve({ upgraded: true, status: 101, body: null });
    });
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let body: any = null;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        resolve({ upgraded: false, status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    ws.once('error', (err) => {
      if (!/Unexpected server response/.test(String(err))) reject(err);
    });
  });
}

/** GET/PUT/... with an Authorization: Bearer token. */
export async function httpAs(token: string | null, method: string, url: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const payload = body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body);
  const res = await fetch(url, { method, headers, body: payload });
  const text = await res.text();
  let parsed: any = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, text };
}

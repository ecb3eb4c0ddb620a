/**
 * Helpers of the Kafka front's tests: a raw protocol client built on sluice's own codec
 * (to ask exactly what a test needs: a max_bytes, a version, a malformed body), and kcat runs.
 * Behaviour against clients nobody here wrote is checked with kcat and kafkajs themselves.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { API_TABLE } from '../../src/kafka/protocol/header.ts';
import { Reader, Writer } from '../../src/kafka/protocol/wire.ts';

export type Body = Record<string, any>;

/** One request as bytes: size | header v1/v2 | body. */
export function encodeRequest(apiKey: number, version: number, correlationId: number, body: Body, clientId: string | null = 'sluice-test'): Buffer {
  const entry = API_TABLE.get(apiKey);
  if (!entry) throw new Error(`no API ${apiKey}`);
  const w = new Writer();
  w.int16(apiKey);
  w.int16(version);
  w.int32(correlationId);
  w.string(clientId);
  if (entry.requestFlexible(version)) w.uvarint(0);
  entry.requests.get(version)!.write(w, body);
  const bytes = Buffer.concat(w.finish().map((p) => (Buffer.isBuffer(p) ? p : Buffer.alloc(0))));
  const out = Buffer.allocUnsafe(4 + bytes.length);
  out.writeInt32BE(bytes.length, 0);
  bytes.copy(out, 4);
  return out;
}

export function decodeResponse(apiKey: number, version: number, frame: Buffer): { correlationId: number; body: Body } {
  const entry = API_TABLE.get(apiKey)!;
  const r = new Reader(frame);
  const correlationId = r.int32();
  if (apiKey !== 18 && entry.responseFlexible(version)) {
    const n = r.uvarint();
    for (let i = 0; i < n; i++) {
      r.uvarint();
      r.raw(r.uvarint());
    }
  }
  return { correlationId, body: entry.responses.get(version)!.read(r) as Body };
}

/** A raw connection: send requests, read size-prefixed frames in order. */
export class RawKafka {
  private buf = Buffer.alloc(0);
  private readonly frames: Buffer[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  private nextCorrelation = 1;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4) {
        const n = this.buf.readInt32BE(0);
        if (this.buf.length < 4 + n) break;
        this.frames.push(Buffer.from(this.buf.subarray(4, 4 + n)));
        this.buf = this.buf.subarray(4 + n);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<RawKafka> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawKafka(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next frame, or null once the server closed the connection. Bounded by `ms`. */
  async frame(ms = 30_000): Promise<Buffer | null> {
    const deadline = Date.now() + ms;
    while (this.frames.length === 0) {
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.frames.shift()!;
  }

  /** Resolves true once the server has closed the connection (bounded by `ms`). */
  async waitClosed(ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  async request(apiKey: number, version: number, body: Body): Promise<Body> {
    const id = this.nextCorrelation++;
    this.write(encodeRequest(apiKey, version, id, body));
    const f = await this.frame();
    if (f === null) throw new Error(`connection closed before the answer to API ${apiKey} v${version}`);
    const r = decodeResponse(apiKey, version, f);
    if (r.correlationId !== id) throw new Error(`correlation id ${r.correlationId}, expected ${id}`);
    return r.body;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface KcatResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs kcat with `args` (and `input` on stdin), killed after `ms` as a hang guard. */
export function kcat(args: string[], input?: string | Buffer, ms = 60_000): Promise<KcatResult> {
  return new Promise((resolve, reject) => {
    const p = spawn('kcat', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) p.stdin.end(input);
    else p.stdin.end();
  });
}

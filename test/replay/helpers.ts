/** Shared by the replay tests: a log in a temp dir, a replay server on it, a raw wire client. */
import fs from 'node:fs';
import net from 'node:net';
import pino from 'pino';
import { tempDir as makeTempDir } from '../helpers/temp-dir.ts';
import { ChunkReader, type Codec, LogManager, type PartitionLog, encodeRecordBatch } from '../../engine/index.ts';
import { ConfigSchema } from '../../src/common/config.ts';
import { type ReplayFront, startReplayServer } from '../../src/replay/replay-server.ts';
import { createAuth } from '../../src/common/auth.ts';
import { createFrontContext } from '../../src/server.ts';

export function tempDir(prefix = 'sluice-replay-'): string {
  return makeTempDir(prefix);
}

export interface Harness {
  dir: string;
  log: LogManager;
  server: ReplayFront;
  url: string;
  close(): Promise<void>;
}

export async function startHarness(opts: { segmentBytes?: number; flush?: 'always' | 'interval' | 'never'; config?: Record<string, unknown> } = {}): Promise<Harness> {
  const dir = tempDir();
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const log = await LogManager.open({ dataDir: dir, segmentBytes: opts.segmentBytes ?? 64 * 1024, flush: opts.flush ?? 'never', retentionCheckMs: 0, logger });
  const config = ConfigSchema.parse({ dataDir: dir, replayPort: 0, ...opts.config });
  const server = await startReplayServer(createFrontContext(config, log, logger, createAuth(config), '127.0.0.1'));
  return {
    dir,
    log,
    server,
    url: `tcp://127.0.0.1:${server.port}`,
    async close() {
      await server.close();
      await log.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A deterministic value for record `offset` of a test topic (distinct per offset). */
export function valueFor(offset: number, size: number): Buffer {
  // Pseudo-random (an LCG seeded by the offset) so that LZ4 batches stay large.
  const b = Buffer.allocUnsafe(size);
  let x = (offset * 2654435761) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  b.write(`#${offset}#`, 0);
  return b;
}

/**
 * Appends `batches` batches of `perBatch` records to the partition; record values come
 * from valueFor(offset), keys are `k<offset>`. Returns the high watermark.
 */
export async function fill(p: PartitionLog, batches: number, perBatch: number, valueBytes: number, codec: Codec = 'none'): Promise<number> {
  for (let i = 0; i < batches; i++) {
    const base = p.nextOffset;
    const records = Array.from({ length: perBatch }, (_, j) => ({ key: Buffer.from(`k${base + j}`), value: valueFor(base + j, valueBytes) }));
    await p.append(encodeRecordBatch(records, { codec, timestamp: 1_700_000_000_000 + base }));
  }
  return p.hw;
}

export interface Frame {
  header: { ok: boolean; bytes?: number; first?: number; end?: boolean; next?: number; hw?: number; code?: string; message?: string };
  body: Buffer;
}

/** A client that speaks the wire directly, frame by frame. */
export class RawClient {
  readonly socket: net.Socket;
  private readonly chunks = new ChunkReader();
  private waiter: (() => void) | null = null;
  ended = false;
  received = 0;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.received += d.length;
      this.chunks.push(d);
      this.poke();
    });
    socket.on('end', () => {
      this.ended = true;
      this.poke();
    });
    socket.on('close', () => {
      this.ended = true;
      this.poke();
    });
    socket.on('error', () => {});
  }

  static connect(url: string): Promise<RawClient> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: u.hostname, port: Number(u.port) }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private poke(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private wait(): Promise<void> {
    return new Promise((r) => (this.waiter = r));
  }

  send(req: unknown): void {
    this.socket.write(typeof req === 'string' ? req : `${JSON.stringify(req)}\n`);
  }

  /** The next frame, or null when the server closed the connection first. */
  async frame(): Promise<Frame | null> {
    for (;;) {
      const c = this.chunks.next();
      if (c !== null) return { header: c.header as Frame['header'], body: Buffer.from(c.body) };
      if (this.ended) return null;
      await this.wait();
    }
  }

  /** Frames up to and including the end or error header (null: closed before either). */
  async untilEnd(): Promise<{ chunks: Frame[]; last: Frame | null }> {
    const chunks: Frame[] = [];
    for (;;) {
      const f = await this.frame();
      if (f === null || !f.header.ok || f.header.end) return { chunks, last: f };
      chunks.push(f);
    }
  }

  /** Resolves once the server has closed the connection (bounded by the caller's test timeout). */
  async closed(): Promise<void> {
    while (!this.ended) await this.wait();
  }

  close(): void {
    this.socket.destroy();
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Seeded, so that a failing fuzz case can be replayed with SEED=. */
export { rng as prng } from '../helpers/random.ts';

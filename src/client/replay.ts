/**
 * Bulk replay from a sluice server's TCP replay port (wire contract §4), for Node.
 *
 *   const r = replay({ url: 'tcp://127.0.0.1:8081', topic: 'orders', partition: 0, from: 'earliest' });
 *   for await (const chunk of r) { ... chunk.first, chunk.bytes (whole RecordBatch v2) ... }
 *   r.end  // {next, hw} once the server ended the replay
 *
 *   for await (const record of replay({...}).records()) { ... }   // decoded, within [from, to)
 *
 * A server error rejects the iteration with a SluiceError carrying the wire `code`
 * (UNKNOWN_TOPIC, OFFSET_OUT_OF_RANGE, BAD_REQUEST, UNAVAILABLE, ...). Leaving the loop
 * early (break, return, throw) or calling close() closes the connection.
 *
 * Backpressure: the socket is paused while more than `highWaterMarkBytes` of chunks wait
 * for the consumer, so a slow consumer slows the server (which reads from disk at the
 * client's pace) instead of filling memory.
 *
 * Imports nothing but the shared codec and errors (and node:net).
 */
import net from 'node:net';
import { ChunkReader, type StoredRecord, decodeBatches } from '../../engine/codec/index.ts';
import { SluiceError } from '../../engine/errors.ts';
import type { ErrorCode } from '../../engine/errors.ts';

export interface ReplayOptions {
  /** `tcp://host:port`; the port defaults to 8081. */
  url: string;
  topic: string;
  partition: number;
  from: number | 'earliest' | 'latest';
  /** Exclusive. The server may send a last batch that straddles it; records() drops the rest. */
  to?: number;
  /** Body bytes for the whole replay (at least one whole batch is sent). */
  maxBytes?: number;
  /** Keep streaming appends instead of ending at the high watermark. */
  follow?: boolean;
  /** A JWT whose acl.sub covers the topic when the server runs with auth; ignored without. */
  token?: string;
  /** Chunks the consumer has not taken yet, in bytes, above which reading pauses. Default 8 MiB. */
  highWaterMarkBytes?: number;
}

export interface ReplayChunk {
  /** baseOffset of the first batch; it may hold records below `from`. */
  first: number;
  /** Whole stored RecordBatch v2, exactly as on the server's disk. */
  bytes: Uint8Array;
  /** Offsets from..to-1 the server lost to storage damage, skipped before this chunk. */
  gap?: { from: number; to: number };
}

export interface ReplayEnd {
  /** Where to resume: the offset after the last record sent. */
  next: number;
  /** The partition's high watermark when the replay ended. */
  hw: number;
}

export function parseReplayUrl(url: string): { host: string; port: number } {
  const u = new URL(url);
  if (u.protocol !== 'tcp:') throw new TypeError(`replay url must be tcp://host:port, got ${url}`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  return { host, port: u.port ? Number(u.port) : 8081 };
}

export class ReplayStream implements AsyncIterable<ReplayChunk> {
  /** Set once the server has ended the replay. */
  end: ReplayEnd | null = null;
  private readonly socket: net.Socket;
  private readonly queue: ReplayChunk[] = [];
  private queuedBytes = 0;
  private failure: Error | null = null;
  private finished = false;
  private notify: (() => void) | null = null;
  private readonly highWaterMarkBytes: number;
  private readonly chunks = new ChunkReader();
  private iterating = false;

  constructor(readonly opts: ReplayOptions) {
    this.highWaterMarkBytes = opts.highWaterMarkBytes ?? 8 * 1024 * 1024;
    const { host, port } = parseReplayUrl(opts.url);
    const request: Record<string, unknown> = { topic: opts.topic, partition: opts.partition, from: opts.from };
    for (const k of ['to', 'maxBytes', 'follow', 'token'] as const) if (opts[k] !== undefined) request[k] = opts[k];
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.write(`${JSON.stringify(request)}\n`);
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(new SluiceError('UNAVAILABLE', 'the replay connection closed before the end of the replay', 'CONNECTION_CLOSED')));
  }

  /** Closes the connection; an iteration in progress ends. */
  close(): void {
    this.finished = true;
    this.socket.destroy();
    this.signal();
  }

  private signal(): void {
    const n = this.notify;
    this.notify = null;
    n?.();
  }

  private fail(err: Error): void {
    if (this.finished || this.failure) return;
    this.failure = err;
    this.socket.destroy();
    this.signal();
  }

  private onData(data: Buffer): void {
    if (this.finished || this.failure) return;
    this.chunks.push(data);
    for (;;) {
      let c;
      try {
        c = this.chunks.next();
      } catch (err) {
        return this.fail(err as Error); // ChunkFramingError: INTERNAL, reason PROTOCOL
      }
      if (c === null) break;
      const h = c.header;
      if (!h.ok) return this.fail(new SluiceError(h.code as ErrorCode, h.message ?? 'replay failed'));
      if (h.end) {
        this.end = { next: h.next, hw: h.hw };
        this.finished = true;
        this.socket.end();
        this.signal();
        return;
      }
      this.queue.push(h.gap ? { first: h.first, bytes: c.body, gap: h.gap } : { first: h.first, bytes: c.body });
      this.queuedBytes += c.body.length;
      this.signal();
    }
    if (this.queuedBytes > this.highWaterMarkBytes) this.socket.pause();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ReplayChunk> {
    if (this.iterating) throw new Error('a replay stream can be iterated once');
    this.iterating = true;
    try {
      for (;;) {
        const c = this.queue.shift();
        if (c) {
          this.queuedBytes -= c.bytes.length;
          if (this.queuedBytes <= this.highWaterMarkBytes / 2 && !this.finished) this.socket.resume();
          yield c;
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.finished) return;
        await new Promise<void>((resolve) => (this.notify = resolve));
      }
    } finally {
      if (!this.finished || this.failure) this.close();
    }
  }

  /** The records of the replay, decoded and CRC-checked, within [from, to). */
  async *records(): AsyncGenerator<StoredRecord> {
    const min = typeof this.opts.from === 'number' ? this.opts.from : -Infinity;
    const to = this.opts.to ?? Infinity;
    for await (const c of this) {
      for (const r of decodeBatches(c.bytes, min)) {
        if (r.offset >= to) return;
        yield r;
      }
    }
  }
}

/** Starts a replay; iterate the result for chunks, or its records() for decoded records. */
export function replay(opts: ReplayOptions): ReplayStream {
  return new ReplayStream(opts);
}

/**
 * A batching producer: records for the same topic-partition wait up to `lingerMs` (or until
 * `batchBytes` of them gathered), are encoded client side into ONE RecordBatch v2 with the
 * shared codec (LZ4 by default), and travel as one binary PRODUCE frame (protocol §3). The
 * server validates the batch and stores it byte for byte; its ack gives the first offset,
 * so record i of the batch got `offset + i`.
 *
 * Placement: an explicit partition wins; a keyed record goes to
 * `partitionForKey(key, partitions)` (Kafka's murmur2 partitioner) over the partition count
 * from `meta` (cached per connection); an unkeyed record lets the server choose (0xFFFFFFFF).
 * A keyed record for a topic that does not exist yet creates it through a JSON publish
 * (see createByPublish).
 *
 * Records of one partition are acked in the order they were sent; a batch is one unit: it
 * is stored whole or not at all.
 */
import { type Codec, type ProducerRecord, type RecordHeader, encodeRecordBatch, partitionForKey } from '../../engine/codec/index.ts';
import type { AckAnswer } from '../../engine/codec/wire-messages.ts';
import { ANY_PARTITION, CLIENT_REASONS, SluiceError, clientError } from './codes.ts';
import { produceFrame, toBytes } from './frames.ts';
import type { PublishAck, PublishOptions } from './types.ts';

/**
 * What a producer needs from a connection (the client is one): sending PRODUCE frames, the
 * partition count for keyed placement, and a JSON publish to create a topic. A small
 * interface, so the producer does not depend on the client.
 */
export interface ProducerSink {
  /** The server's --max-frame-bytes: a larger batch is split. */
  readonly maxFrameBytes: number;
  /** Sends a PRODUCE frame (the sink writes its id) and resolves with the ack. */
  sendProduce(frame: Uint8Array): Promise<AckAnswer>;
  /** The partition count of a topic (UNKNOWN_TOPIC when it does not exist). */
  partitionCount(topic: string): Promise<number>;
  /** One record through the JSON `pub` op, which creates a missing topic under auto-create. */
  publish(topic: string, value: string | Uint8Array | null, options: PublishOptions): Promise<PublishAck>;
}

export interface ProducerOptions {
  /** How long a record may wait for others of its partition (ms, default 5). */
  lingerMs?: number;
  /** A batch is sent once its records reach this many bytes (uncompressed, default 256 KiB). */
  batchBytes?: number;
  /** Records per batch at most (default 10 000). */
  batchRecordsMax?: number;
  /** 'lz4' (default) or 'none'. */
  compression?: Codec;
}

export interface SendOptions {
  key?: string | Uint8Array | null;
  partition?: number;
  headers?: Record<string, string | Uint8Array> | RecordHeader[];
  /** ms since the epoch; default: when send() was called. */
  timestamp?: number;
}

interface Open {
  topic: string;
  partition: number;
  records: ProducerRecord[];
  waiters: { resolve(a: PublishAck): void; reject(e: Error): void }[];
  bytes: number;
  timer: ReturnType<typeof setTimeout> | null;
}

const BATCH_OVERHEAD = 61 + 32;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export class Producer {
  private readonly lingerMs: number;
  private readonly batchBytes: number;
  private readonly batchRecordsMax: number;
  private readonly codec: Codec;
  private readonly open = new Map<string, Open>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;
  private readonly creating = new Map<string, Promise<PublishAck>>();

  constructor(
    private readonly sink: ProducerSink,
    opts: ProducerOptions = {},
  ) {
    this.lingerMs = opts.lingerMs ?? 5;
    this.batchBytes = opts.batchBytes ?? 256 * 1024;
    this.batchRecordsMax = opts.batchRecordsMax ?? 10_000;
    this.codec = opts.compression ?? 'lz4';
  }

  /** Queues one record; resolves with its partition and offset once its batch is acked. */
  send(topic: string, value: string | Uint8Array | null, opts: SendOptions = {}): Promise<PublishAck> {
    if (this.closed) return Promise.reject(clientError(CLIENT_REASONS.CLOSED, 'producer is closed'));
    const key = opts.key === undefined || opts.key === null ? null : toBytes(opts.key);
    const record: ProducerRecord = {
      key,
      value: value === null ? null : toBytes(value),
      headers: normalizeHeaders(opts.headers),
      timestamp: opts.timestamp ?? Date.now(),
    };
    if (opts.partition !== undefined) return this.add(topic, opts.partition, record);
    if (key === null) return this.add(topic, ANY_PARTITION, record);
    // Keyed: the partition count first (cached; the promise queue keeps per-key order).
    return this.sink.partitionCount(topic).then(
      (n) => this.add(topic, partitionForKey(key, n), record),
      (err: SluiceError) => this.createByPublish(topic, key, record, err),
    );
  }

  /**
   * A keyed record for a topic that does not exist: "auto-creation happens on publish only",
   * so the first such record goes as a JSON `pub` (the server creates the topic with its
   * default partition count and places the record by the same murmur2), and the others wait
   * for it, then place themselves over the new topic's `meta`. The JSON path carries text
   * keys and headers only; with bytes that are not UTF-8 the record is refused instead.
   */
  private async createByPublish(topic: string, key: Uint8Array, record: ProducerRecord, err: SluiceError): Promise<PublishAck> {
    if (err.code !== 'UNKNOWN_TOPIC') throw err;
    const pending = this.creating.get(topic);
    if (pending) {
      await pending.catch(() => {});
      const n = await this.sink.partitionCount(topic);
      return this.add(topic, partitionForKey(key, n), record);
    }
    let keyText: string;
    const headers: Record<string, string> = {};
    try {
      keyText = strictUtf8.decode(key);
      for (const h of record.headers ?? []) headers[h.key] = h.value === null ? '' : strictUtf8.decode(h.value);
    } catch {
      throw new SluiceError('UNKNOWN_TOPIC', `topic ${JSON.stringify(topic)} does not exist and this record's key or headers are not text: create the topic first`, 'UNKNOWN_TOPIC');
    }
    const p = this.sink.publish(topic, record.value, { key: keyText, headers: record.headers?.length ? headers : undefined });
    this.creating.set(topic, p);
    try {
      return await p;
    } finally {
      this.creating.delete(topic);
    }
  }

  /** Sends every open batch now and waits for the answers of everything sent so far. */
  async flush(): Promise<void> {
    for (const b of [...this.open.values()]) this.seal(b);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Flushes, then refuses further sends. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  private add(topic: string, partition: number, record: ProducerRecord): Promise<PublishAck> {
    return new Promise((resolve, reject) => {
      const k = `${topic}\u0000${partition}`;
      const size = recordBytes(record);
      let b = this.open.get(k);
      if (b && (b.bytes + size > this.batchBytes || b.records.length >= this.batchRecordsMax)) {
        this.seal(b);
        b = undefined;
      }
      if (!b) {
        b = { topic, partition, records: [], waiters: [], bytes: BATCH_OVERHEAD, timer: null };
        this.open.set(k, b);
        const bb = b;
        b.timer = setTimeout(() => this.seal(bb), this.lingerMs);
      }
      b.records.push(record);
      b.waiters.push({ resolve, reject });
      b.bytes += size;
      if (b.bytes >= this.batchBytes) this.seal(b);
    });
  }

  private seal(b: Open): void {
    const k = `${b.topic}\u0000${b.partition}`;
    if (this.open.get(k) === b) this.open.delete(k);
    if (b.timer) clearTimeout(b.timer);
    b.timer = null;
    if (b.records.length === 0) return;
    this.sendBatch(b.topic, b.partition, b.records, b.waiters);
  }

  private sendBatch(topic: string, partition: number, records: ProducerRecord[], waiters: Open['waiters']): void {
    let frame: Uint8Array;
    try {
      frame = produceFrame(0, topic, partition, encodeRecordBatch(records, { codec: this.codec }));
    } catch (err) {
      for (const w of waiters) w.reject(err as Error);
      return;
    }
    if (frame.length > this.sink.maxFrameBytes && records.length > 1) {
      // Too big for one frame: split in halves (each keeps its records' order).
      const h = records.length >>> 1;
      this.sendBatch(topic, partition, records.slice(0, h), waiters.slice(0, h));
      this.sendBatch(topic, partition, records.slice(h), waiters.slice(h));
      return;
    }
    const p = this.sink.sendProduce(frame).then(
      (ack) => {
        const part = ack.partition;
        const first = ack.offset;
        for (let i = 0; i < waiters.length; i++) waiters[i].resolve({ partition: part, offset: first + i });
      },
      (err: SluiceError) => {
        for (const w of waiters) w.reject(err);
      },
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }
}

function normalizeHeaders(h: SendOptions['headers']): RecordHeader[] | undefined {
  if (!h) return undefined;
  if (Array.isArray(h)) return h;
  return Object.entries(h).map(([key, v]) => ({ key, value: toBytes(v) }));
}

function recordBytes(r: ProducerRecord): number {
  let n = 24 + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const h of r.headers ?? []) n += 8 + h.key.length * 3 + (h.value?.length ?? 0);
  return n;
}

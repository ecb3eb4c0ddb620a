/**
 * Inbound: turns publishes into appends.
 *
 * JSON publishes (WebSocket `pub`, HTTP POST) from every connection are gathered per
 * partition and appended as ONE RecordBatch per partition per flush: a flush happens
 * `lingerMs` after the first record arrived, or at once when the batch reaches
 * `batchBytes`. Each publisher is answered with its own offset (baseOffset + index) once
 * the engine's append resolves, which under `flush: always` is after the fsync.
 *
 * Binary PRODUCE batches are already batches: they are appended as they are.
 *
 * Partition choice (wire contract §1): keyed records go to murmur2(key) % partitions, the
 * Kafka default; unkeyed ones stick to one partition of the topic until that partition's
 * batch is flushed, then move to the next (Kafka's sticky partitioner, round-robin order).
 *
 * A publish to a topic that does not exist yet (with auto-create on) waits for the topic's
 * creation, which may go over the network in cluster mode; publishes that arrive meanwhile
 * wait for the same creation and are queued in arrival order behind it.
 *
 * Every append in flight is tracked, so `close()` can wait for them at shutdown.
 */
import {
  type Codec,
  type Log,
  type LogPartition,
  type ProducerRecord,
  BadRequestError,
  SluiceError,
  TopicExistsError,
  UnknownTopicError,
  asSluiceError,
  encodeRecordBatch,
  partitionForKey,
} from '../../engine/index.ts';
import type { Metrics } from '../common/metrics.ts';

export type AppendCallback = (err: SluiceError | null, partition: number, offset: number) => void;

export interface BatcherOptions {
  lingerMs: number;
  batchBytes: number;
  compression: Codec;
  autoCreate: boolean;
  partitions: number;
}

interface PendingBatch {
  topic: string;
  partition: number;
  log: LogPartition;
  records: ProducerRecord[];
  callbacks: AppendCallback[];
  bytes: number;
  timer: NodeJS.Timeout | null;
}

export class Batcher {
  private readonly pending = new Map<string, PendingBatch>();
  private readonly sticky = new Map<string, number>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Topics being auto-created, and the publishes waiting for each. */
  private readonly creating = new Map<string, Promise<void>>();
  private closing = false;

  constructor(
    private readonly log: Log,
    private readonly opts: BatcherOptions,
    private readonly metrics: Metrics,
  ) {}

  /**
   * The partition count the topic has, or would have once a publish creates it; throws
   * UnknownTopicError when it does not exist and may not be created. Creates nothing.
   */
  partitionCountFor(topic: string): number {
    if (this.log.hasTopic(topic)) return this.log.partitionCount(topic);
    if (this.opts.autoCreate) return this.opts.partitions;
    throw new UnknownTopicError(topic);
  }

  /**
   * Runs `then` once the topic exists: at once when it does, after its auto-creation when it
   * does not (several publishes share one creation and run in arrival order). `failed` gets
   * the error when it cannot be created. Throws UnknownTopicError, creating nothing, when it
   * does not exist and may not be created.
   */
  private whenTopic(topic: string, then: () => void, failed: (err: SluiceError) => void): void {
    const pending = this.creating.get(topic);
    if (pending === undefined && this.log.hasTopic(topic)) return then();
    if (!this.opts.autoCreate) throw new UnknownTopicError(topic);
    let creation = pending;
    if (creation === undefined) {
      creation = this.log.createTopic(topic, { partitions: this.opts.partitions }).then(
        () => {},
        (err) => {
          // Created meanwhile by another node or request: as good as ours.
          if (!(err instanceof TopicExistsError)) throw err;
        },
      );
      this.creating.set(topic, creation);
      const done = creation;
      void creation.finally(() => {
        if (this.creating.get(topic) === done) this.creating.delete(topic);
      }).catch(() => {});
    }
    const waited = creation.then(
      () => {
        try {
          then();
        } catch (err) {
          failed(asSluiceError(err));
        }
      },
      (err) => failed(asSluiceError(err)),
    );
    this.inFlight.add(waited);
    void waited.finally(() => this.inFlight.delete(waited));
  }

  private choosePartition(topic: string, count: number, partition: number | undefined, key: Uint8Array | null): number {
    if (partition !== undefined) {
      if (partition >= count) throw new BadRequestError(`partition ${partition} does not exist in ${topic} (0..${count - 1})`, 'BAD_PARTITION');
      return partition;
    }
    if (key !== null) return partitionForKey(key, count);
    let p = this.sticky.get(topic);
    if (p === undefined || p >= count) {
      p = Math.floor(Math.random() * count);
      this.sticky.set(topic, p);
    }
    return p;
  }

  /**
   * Queues one record; `cb` runs once with its partition and offset, or with the error.
   * Throws (synchronously, nothing queued) for an unknown topic or a bad partition.
   */
  publish(topic: string, partition: number | undefined, record: ProducerRecord, cb: AppendCallback): void {
    if (this.closing) throw new SluiceError('UNAVAILABLE', 'the server is shutting down', 'SHUTTING_DOWN');
    // The partition is checked before the topic is created: a refused publish creates nothing.
    if (partition !== undefined) this.choosePartition(topic, this.partitionCountFor(topic), partition, null);
    this.whenTopic(topic, () => this.gather(topic, partition, record, cb), (err) => cb(err, partition ?? -1, -1));
  }

  private gather(topic: string, partition: number | undefined, record: ProducerRecord, cb: AppendCallback): void {
    const count = this.log.partitionCount(topic);
    const key = record.key ?? null;
    const p = this.choosePartition(topic, count, partition, key);
    const k = `${topic}\0${p}`;
    let b = this.pending.get(k);
    if (!b) {
      b = { topic, partition: p, log: this.log.partition(topic, p), records: [], callbacks: [], bytes: 0, timer: null };
      this.pending.set(k, b);
    }
    b.records.push(record);
    b.callbacks.push(cb);
    b.bytes += 16 + (key?.length ?? 0) + (record.value?.length ?? 0);
    if (record.headers) for (const h of record.headers) b.bytes += 4 + h.key.length + (h.value?.length ?? 0);
    if (b.bytes >= this.opts.batchBytes) this.flush(k, b);
    else if (b.timer === null) {
      const batch = b;
      b.timer = setTimeout(() => this.flush(k, batch), this.opts.lingerMs);
    }
  }

  private flush(k: string, b: PendingBatch): void {
    if (b.timer) clearTimeout(b.timer);
    b.timer = null;
    if (this.pending.get(k) === b) this.pending.delete(k);
    if (b.records.length === 0) return;
    if (this.sticky.get(b.topic) === b.partition) {
      const count = this.log.hasTopic(b.topic) ? this.log.partitionCount(b.topic) : 1;
      this.sticky.set(b.topic, (b.partition + 1) % count);
    }
    const callbacks = b.callbacks;
    let batch: Uint8Array;
    try {
      batch = encodeRecordBatch(b.records, { codec: this.opts.compression });
    } catch (err) {
      const e = asSluiceError(err);
      for (const cb of callbacks) cb(e, b.partition, -1);
      return;
    }
    this.metrics.batchRecords.observe(b.records.length);
    this.track(b.log, batch, b.records.length, (err, base) => {
      for (let i = 0; i < callbacks.length; i++) callbacks[i](err, b.partition, err ? -1 : base + i);
    });
  }

  /**
   * Appends one validated PRODUCE batch (owned by the caller, copied out of uWS) to the
   * topic; `partition` undefined lets the server choose. `cb` gets the first offset.
   */
  appendBatch(topic: string, partition: number | undefined, batch: Uint8Array, recordCount: number, cb: AppendCallback): void {
    if (this.closing) throw new SluiceError('UNAVAILABLE', 'the server is shutting down', 'SHUTTING_DOWN');
    if (partition !== undefined) this.choosePartition(topic, this.partitionCountFor(topic), partition, null);
    this.whenTopic(topic, () => this.appendNow(topic, partition, batch, recordCount, cb), (err) => cb(err, partition ?? -1, -1));
  }

  private appendNow(topic: string, partition: number | undefined, batch: Uint8Array, recordCount: number, cb: AppendCallback): void {
    const count = this.log.partitionCount(topic);
    let p: number;
    if (partition === undefined) {
      p = this.choosePartition(topic, count, undefined, null);
      this.sticky.set(topic, (p + 1) % count);
    } else p = this.choosePartition(topic, count, partition, null);
    // JSON records gathered for this partition arrived before this batch: append them first,
    // so that a partition's offsets follow arrival order.
    const k = `${topic}\0${p}`;
    const gathered = this.pending.get(k);
    if (gathered) this.flush(k, gathered);
    this.metrics.batchRecords.observe(recordCount);
    this.track(this.log.partition(topic, p), batch, recordCount, (err, base) => cb(err, p, base));
  }

  private track(log: LogPartition, batch: Uint8Array, records: number, done: (err: SluiceError | null, base: number) => void): void {
    const t0 = performance.now();
    const promise = log.append(batch);
    const t1 = performance.now();
    this.metrics.appendSeconds.observe((t1 - t0) / 1000);
    const tracked = promise.then(
      (r) => {
        this.metrics.appendDurableSeconds.observe((performance.now() - t0) / 1000);
        this.metrics.countIn(log.topic, records, batch.length);
        this.metrics.batchBytes.observe(batch.length);
        done(null, r.baseOffset);
      },
      (err) => done(asSluiceError(err), -1),
    );
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  /** Drops what waits for a deleted topic (its publishers get UNKNOWN_TOPIC). */
  dropTopic(topic: string): void {
    for (const [k, b] of this.pending) {
      if (b.topic !== topic) continue;
      if (b.timer) clearTimeout(b.timer);
      this.pending.delete(k);
      const e = new SluiceError('UNKNOWN_TOPIC', `topic ${JSON.stringify(topic)} was deleted`, 'TOPIC_DELETED');
      for (const cb of b.callbacks) cb(e, b.partition, -1);
    }
    this.sticky.delete(topic);
  }

  /** Refuses new publishes, appends what is gathered, waits for every append in flight. */
  async close(): Promise<void> {
    this.closing = true;
    for (const [k, b] of [...this.pending]) this.flush(k, b);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}

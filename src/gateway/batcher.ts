/**
 * Inbound: turns publishes into appends.
 *
 * JSON publishes (WebSocket `pub`, HTTP POST) from every connection are gathered per
 * partition and appended as ONE RecordBatch per partition. When a batch is appended is
 * decided group-commit style, with no fixed wait when the server is idle:
 * - With `lingerMs` 0 (the default) a partition's batch is ripe at the end of the
 *   event-loop turn its first record arrived in (a `setImmediate`, which runs once uWS has
 *   handed over every message the turn read): one publish on an idle server is appended at
 *   once, and under load everything that arrived in one turn shares a batch.
 * - With `lingerMs` > 0 it is ripe `lingerMs` after its first record: a bound on how long
 *   a record waits for company, for those who want bigger batches at light load.
 * - A ripe batch is appended as soon as the partition's previous append from this batcher
 *   has finished (written, and under `flush: always` synced). While the writer is busy the
 *   batch keeps gathering, so batches grow with the load and one append (one fsync) carries
 *   everything that came during the previous one.
 * - A batch that reaches `batchBytes` is appended at once, busy writer or not, so that what
 *   waits for a slow disk stays bounded.
 * Each publisher is answered with its own offset (baseOffset + index) once the append
 * resolves, which under `flush: always` is after the fsync.
 *
 * Binary PRODUCE batches are already batches: they are appended as they are.
 *
 * Partition choice (wire contract §1): keyed records go to murmur2(key) % partitions, the
 * Kafka default; unkeyed ones stick to one partition of the topic until that partition's
 * batch is appended, then move to the next (Kafka's sticky partitioner, round-robin order).
 *
 * A publish to a topic that does not exist yet (with auto-create on) waits for the topic's
 * creation, which may go over the network in cluster mode; publishes that arrive meanwhile
 * wait for the same creation and are queued in arrival order behind it.
 *
 * Every append in flight is tracked, so `close()` can wait for them at shutdown.
 */
import { type RecordField, type RecordHeaderFields, RecordBatchBuilder, writeUtf8 } from '../../engine/codec/record-batch-builder.ts';
import {
  type Codec,
  type Log,
  type LogPartition,
  BadRequestError,
  SluiceError,
  TopicExistsError,
  UnknownTopicError,
  asSluiceError,
  partitionForKey,
} from '../../engine/index.ts';
import type { Metrics } from '../common/metrics.ts';

/** Told once how a publish's append went: its partition and offset, or the error. */
export interface AppendWaiter {
  appended(err: SluiceError | null, partition: number, offset: number): void;
}

export interface BatcherOptions {
  /** 0: a batch is ripe at the end of the event-loop turn; > 0: this long after its first record. */
  lingerMs: number;
  batchBytes: number;
  compression: Codec;
  autoCreate: boolean;
  partitions: number;
}

/**
 * One topic-partition's inbound path on this batcher: the batch it gathers, and whether
 * its last append is still in flight. Kept while it gathers or appends; dropped when idle.
 */
interface PartitionWriter {
  readonly topic: string;
  readonly partition: number;
  readonly log: LogPartition;
  /** The batch gathered now, its records written as they came. */
  readonly builder: RecordBatchBuilder;
  waiters: AppendWaiter[];
  /** The linger timer (lingerMs > 0) of the batch gathered now. */
  timer: NodeJS.Timeout | null;
  /** The gathered batch may go: its turn ended or its linger ran out. */
  ripe: boolean;
  /** Appends of this writer in flight. */
  appending: number;
}

/** A key's bytes for the partitioner: text is hashed as its UTF-8, as it is stored. */
const keyScratch = { buf: new Uint8Array(1024) };
function keyBytes(key: Exclude<RecordField, null>): Uint8Array {
  if (typeof key !== 'string') return key;
  if (keyScratch.buf.length < key.length * 3) keyScratch.buf = new Uint8Array(key.length * 3);
  return keyScratch.buf.subarray(0, writeUtf8(keyScratch.buf, 0, key));
}

export class Batcher {
  /** By topic, then partition: no key string is built per publish. */
  private readonly writers = new Map<string, (PartitionWriter | undefined)[]>();
  /** Writers that gathered records in the current turn (lingerMs 0), ripened when it ends. */
  private readonly gatheredThisTurn: PartitionWriter[] = [];
  private turnEndScheduled = false;
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

  private choosePartition(topic: string, count: number, partition: number | undefined, key: RecordField): number {
    if (partition !== undefined) {
      if (partition >= count) throw new BadRequestError(`partition ${partition} does not exist in ${topic} (0..${count - 1})`, 'BAD_PARTITION');
      return partition;
    }
    if (key !== null) return count === 1 ? 0 : partitionForKey(keyBytes(key), count);
    let p = this.sticky.get(topic);
    if (p === undefined || p >= count) {
      p = Math.floor(Math.random() * count);
      this.sticky.set(topic, p);
    }
    return p;
  }

  /**
   * Queues one record; `waiter` is told once its partition and offset, or the error.
   * Throws (synchronously, nothing queued) for an unknown topic or a bad partition. Byte
   * fields may be views valid only during this call (a uWS message): they are copied into
   * the batch at once, or copied out when the record must wait for its topic's creation.
   */
  publish(topic: string, partition: number | undefined, key: RecordField, value: RecordField, headers: RecordHeaderFields | null, waiter: AppendWaiter): void {
    if (this.closing) throw new SluiceError('UNAVAILABLE', 'the server is shutting down', 'SHUTTING_DOWN');
    // As whenTopic decides: a topic whose creation is pending queues behind it, others go straight in.
    if (!this.creating.has(topic) && this.log.hasTopic(topic)) return this.gather(topic, partition, key, value, headers, waiter);
    // The partition is checked before the topic is created: a refused publish creates nothing.
    if (partition !== undefined) this.choosePartition(topic, this.partitionCountFor(topic), partition, null);
    const k = key instanceof Uint8Array ? key.slice() : key;
    const v = value instanceof Uint8Array ? value.slice() : value;
    this.whenTopic(topic, () => this.gather(topic, partition, k, v, headers, waiter), (err) => waiter.appended(err, partition ?? -1, -1));
  }

  private writerFor(topic: string, p: number): PartitionWriter {
    let ws = this.writers.get(topic);
    if (ws === undefined) {
      ws = [];
      this.writers.set(topic, ws);
    }
    let w = ws[p];
    if (w === undefined) {
      w = { topic, partition: p, log: this.log.partition(topic, p), builder: new RecordBatchBuilder(), waiters: [], timer: null, ripe: false, appending: 0 };
      ws[p] = w;
    }
    return w;
  }

  /** False once the writer was dropped (its topic deleted, or it went idle and was forgotten). */
  private isCurrent(w: PartitionWriter): boolean {
    return this.writers.get(w.topic)?.[w.partition] === w;
  }

  private *allWriters(): Iterable<PartitionWriter> {
    for (const ws of this.writers.values()) for (const w of ws) if (w !== undefined) yield w;
  }

  private gather(topic: string, partition: number | undefined, key: RecordField, value: RecordField, headers: RecordHeaderFields | null, waiter: AppendWaiter): void {
    const count = this.log.partitionCount(topic);
    // A text key the partitioner hashes is encoded once, and the batch takes those bytes.
    const k = typeof key === 'string' && partition === undefined && count > 1 ? keyBytes(key) : key;
    const p = this.choosePartition(topic, count, partition, k);
    const w = this.writerFor(topic, p);
    const first = w.waiters.length === 0;
    w.builder.add(k, value, headers);
    w.waiters.push(waiter);
    if (w.builder.recordBytes >= this.opts.batchBytes) return this.append(w);
    if (!first) return;
    if (this.opts.lingerMs > 0) {
      w.timer = setTimeout(() => this.ripen(w), this.opts.lingerMs);
      return;
    }
    this.gatheredThisTurn.push(w);
    if (!this.turnEndScheduled) {
      this.turnEndScheduled = true;
      setImmediate(this.endTurn);
    }
  }

  /** The event-loop turn is over: every batch gathered in it is ripe. */
  private readonly endTurn = (): void => {
    this.turnEndScheduled = false;
    const ws = this.gatheredThisTurn.splice(0);
    for (const w of ws) this.ripen(w);
  };

  /** The batch may go; it goes now unless the writer's previous append is in flight. */
  private ripen(w: PartitionWriter): void {
    if (w.waiters.length === 0 || !this.isCurrent(w)) return;
    w.ripe = true;
    if (w.appending === 0) this.append(w);
  }

  /** Encodes and appends what `w` gathered, whatever the writer's state. */
  private append(w: PartitionWriter): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = null;
    w.ripe = false;
    const waiters = w.waiters;
    const count = waiters.length;
    if (count === 0) return;
    w.waiters = [];
    if (this.sticky.get(w.topic) === w.partition) {
      const partitions = this.log.hasTopic(w.topic) ? this.log.partitionCount(w.topic) : 1;
      this.sticky.set(w.topic, (w.partition + 1) % partitions);
    }
    let batch: Uint8Array;
    try {
      batch = w.builder.seal(this.opts.compression, Date.now());
    } catch (err) {
      w.builder.clear();
      const e = asSluiceError(err);
      for (const x of waiters) x.appended(e, w.partition, -1);
      this.forgetIfIdle(w);
      return;
    }
    this.metrics.batchRecords.observe(count);
    w.appending++;
    this.track(w.log, batch, count, (err, base) => {
      w.appending--;
      for (let i = 0; i < waiters.length; i++) waiters[i].appended(err, w.partition, err ? -1 : base + i);
      if (!this.isCurrent(w)) return;
      if (w.appending === 0 && w.ripe) this.append(w);
      else this.forgetIfIdle(w);
    });
  }

  private forgetIfIdle(w: PartitionWriter): void {
    if (w.appending !== 0 || w.waiters.length !== 0 || !this.isCurrent(w)) return;
    const ws = this.writers.get(w.topic)!;
    ws[w.partition] = undefined;
    if (ws.every((x) => x === undefined)) this.writers.delete(w.topic);
  }

  /**
   * Appends one validated PRODUCE batch (owned by the caller, copied out of uWS) to the
   * topic; `partition` undefined lets the server choose. `waiter` gets the first offset.
   */
  appendBatch(topic: string, partition: number | undefined, batch: Uint8Array, recordCount: number, waiter: AppendWaiter): void {
    if (this.closing) throw new SluiceError('UNAVAILABLE', 'the server is shutting down', 'SHUTTING_DOWN');
    if (partition !== undefined) this.choosePartition(topic, this.partitionCountFor(topic), partition, null);
    this.whenTopic(topic, () => this.appendNow(topic, partition, batch, recordCount, waiter), (err) => waiter.appended(err, partition ?? -1, -1));
  }

  private appendNow(topic: string, partition: number | undefined, batch: Uint8Array, recordCount: number, waiter: AppendWaiter): void {
    const count = this.log.partitionCount(topic);
    let p: number;
    if (partition === undefined) {
      p = this.choosePartition(topic, count, undefined, null);
      this.sticky.set(topic, (p + 1) % count);
    } else p = this.choosePartition(topic, count, partition, null);
    // JSON records gathered for this partition arrived before this batch: append them first,
    // so that a partition's offsets follow arrival order.
    const w = this.writers.get(topic)?.[p];
    if (w) this.append(w);
    this.metrics.batchRecords.observe(recordCount);
    this.track(this.log.partition(topic, p), batch, recordCount, (err, base) => waiter.appended(err, p, base));
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
    const ws = this.writers.get(topic) ?? [];
    this.writers.delete(topic);
    for (const w of ws) {
      if (w === undefined) continue;
      if (w.timer) clearTimeout(w.timer);
      const e = new SluiceError('UNKNOWN_TOPIC', `topic ${JSON.stringify(topic)} was deleted`, 'TOPIC_DELETED');
      for (const x of w.waiters) x.appended(e, w.partition, -1);
      w.builder.clear();
      w.waiters = [];
    }
    this.sticky.delete(topic);
  }

  /** Refuses new publishes, appends what is gathered, waits for every append in flight. */
  async close(): Promise<void> {
    this.closing = true;
    for (const w of [...this.allWriters()]) this.append(w);
    while (this.inFlight.size > 0) {
      await Promise.allSettled([...this.inFlight]);
      // An append that finished may have started the one its writer held back.
      for (const w of [...this.allWriters()]) this.append(w);
    }
  }
}

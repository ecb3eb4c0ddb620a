/**
 * The log as a thread other than the log thread sees it: a `Log` whose appends, topic admin
 * and group offsets go to the log thread (log-host.ts) over a MessagePort, and whose reads
 * are local: every partition is a PartitionReader over the segment files, mapped here.
 *
 * What it knows (topics, epochs, starts, hws, segments) it learns from the host's messages,
 * applied in order in this thread's event loop, so the Log contract holds as seen from here:
 * `hw` moves and commit listeners are told in one step, in offset order, so a reader that
 * reads up to `hw` and then listens misses nothing; `append` resolves after its commit was
 * applied here; `createTopic` resolves once the topic is known here, `deleteTopic` once it
 * is gone. It may lag the log thread by one message, never contradict it.
 *
 * Appends of one event-loop turn leave in one message, their batches transferred (moved,
 * not copied).
 */
import type { MessagePort } from 'node:worker_threads';
import { BadRequestError, SluiceError, TopicExistsError, UnknownTopicError } from './errors.ts';
import type {
  AppendResult,
  CommitListener,
  CommittedOffset,
  CreateTopicOptions,
  Log,
  LogPartition,
  OffsetStore,
  ReadResult,
  SegmentSpan,
  TopicInfo,
  TopicListener,
} from './log.ts';
import type { Logger } from './logger.ts';
import { PartitionReader } from './partition-reader.ts';
import { SegmentGoneError } from './segment-reader.ts';
import {
  type HostEvent,
  type HostMessage,
  type HostReply,
  type PartitionSnapshot,
  type ThreadRequest,
  type TopicSnapshot,
  EVENT_COMMIT,
  EVENT_CREATED,
  EVENT_DELETED,
  EVENT_START,
  fromWireError,
} from './thread-messages.ts';

type Ask = (req: DistributiveOmit<ThreadRequest, 'id'>, transfer?: ArrayBuffer) => Promise<unknown>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

export class ThreadPartition implements LogPartition {
  readonly topic: string;
  readonly partition: number;
  readonly epoch: string;
  readonly pid: number;
  readonly reader: PartitionReader;
  private readonly listeners = new Set<CommitListener>();

  constructor(
    topic: string,
    s: PartitionSnapshot,
    private readonly ask: Ask,
    logger?: Logger,
  ) {
    this.topic = topic;
    this.partition = s.partition;
    this.epoch = s.epoch;
    this.pid = s.pid;
    this.reader = new PartitionReader(s.dir, s.spans, s.start, s.hw, { topic, partition: s.partition, logger });
  }

  get startOffset(): number {
    return this.reader.start;
  }

  get hw(): number {
    return this.reader.hw;
  }

  /** Sent to the log thread with the other appends of this turn; the batch's buffer moves there. */
  append(batch: Uint8Array): Promise<AppendResult> {
    // Only a whole ArrayBuffer can be transferred; a view of a larger one is copied first.
    const own = batch.byteOffset === 0 && batch.byteLength === batch.buffer.byteLength && batch.buffer instanceof ArrayBuffer ? batch : batch.slice();
    return this.ask({ op: 'append', pid: this.pid, batch: own }, own.buffer as ArrayBuffer) as Promise<AppendResult>;
  }

  read(offset: number, maxBytes: number): ReadResult | null {
    return this.reader.read(offset, maxBytes);
  }

  offsetForTime(timestamp: number): number {
    return this.reader.offsetForTime(timestamp);
  }

  onCommit(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  segmentSpans(): SegmentSpan[] {
    return this.reader.spans();
  }

  /** A run of batches became visible (a host event): hw moves, then the listeners are told. */
  commit(segmentBase: number, position: number, end: number, first: number, next: number): void {
    const seg = this.reader.commit(segmentBase, position, end, first, next);
    if (this.listeners.size === 0) return;
    let bytes: Uint8Array;
    try {
      bytes = seg.view(position, end - position);
    } catch (err) {
      // Gone before this thread mapped it (retention, a deletion): the listeners are not
      // told; a live reader then finds a hole at the next commit and reads from disk,
      // where the start has moved past it (a gap), as on the log thread.
      if (err instanceof SegmentGoneError) return;
      throw err;
    }
    for (const l of this.listeners) {
      try {
        l(bytes, first, next, seg, position);
      } catch {
        // A listener's failure is its own; the others are still told.
      }
    }
  }

  close(): void {
    this.listeners.clear();
    this.reader.close();
  }
}

interface Topic {
  snapshot: TopicSnapshot;
  partitions: ThreadPartition[];
}

export class ThreadLog implements Log {
  private readonly topics = new Map<string, Topic>();
  private readonly byPid = new Map<number, ThreadPartition>();
  private readonly topicListeners = new Set<TopicListener>();
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** createTopic / deleteTopic answered before the event arrived: resolved when it does. */
  private readonly topicWaiters: { topic: string; exists: boolean; done: () => void }[] = [];
  private outbox: ThreadRequest[] = [];
  private transfers: ArrayBuffer[] = [];
  private flushScheduled = false;
  private nextId = 1;
  private closed = false;
  readonly offsets: OffsetStore;

  private constructor(
    private readonly port: MessagePort,
    /** Told of an event this thread could not apply (the others still are), and of damaged batches read here. */
    private readonly logger?: Logger,
  ) {
    this.offsets = {
      fetch: (group: string) => this.ask({ op: 'fetchOffsets', group }) as Promise<CommittedOffset[]>,
      commit: async (group: string, offsets: CommittedOffset[]) => {
        await this.ask({ op: 'commitOffsets', group, offsets });
      },
      forgetTopic: async (topic: string) => {
        await this.ask({ op: 'forgetOffsets', topic });
      },
    };
  }

  /** Resolves once the host's snapshot arrived on `port`. */
  static connect(port: MessagePort, logger?: Logger): Promise<ThreadLog> {
    const log = new ThreadLog(port, logger);
    return new Promise((resolve) => {
      port.on('message', (m: HostMessage) => {
        if ('snapshot' in m) {
          for (const t of m.snapshot) log.addTopic(t);
          resolve(log);
        } else log.apply(m.seq, m.events, m.replies);
      });
    });
  }

  private readonly ask: Ask = (req, transfer) => {
    if (this.closed) return Promise.reject(new SluiceError('UNAVAILABLE', 'the log is closed', 'CLOSED'));
    const id = this.nextId++;
    this.outbox.push({ ...req, id } as ThreadRequest);
    if (transfer) this.transfers.push(transfer);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flush);
    }
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  };

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const requests = this.outbox;
    const transfers = this.transfers;
    this.outbox = [];
    this.transfers = [];
    if (requests.length > 0) this.port.postMessage({ requests }, transfers);
  };

  private addTopic(t: TopicSnapshot): void {
    const partitions = t.partitions.map((p) => new ThreadPartition(t.name, p, this.ask, this.logger));
    this.topics.set(t.name, { snapshot: t, partitions });
    for (const p of partitions) this.byPid.set(p.pid, p);
  }

  private removeTopic(name: string): void {
    const t = this.topics.get(name);
    if (!t) return;
    this.topics.delete(name);
    for (const p of t.partitions) {
      this.byPid.delete(p.pid);
      p.close();
    }
  }

  private applyEvent(e: HostEvent): void {
    switch (e[0]) {
      case EVENT_COMMIT:
        this.byPid.get(e[1])?.commit(e[2], e[3], e[4], e[5], e[6]);
        break;
      case EVENT_START:
        this.byPid.get(e[1])?.reader.setStart(e[2]);
        break;
      case EVENT_CREATED:
        this.removeTopic(e[1].name);
        this.addTopic(e[1]);
        this.emit({ type: 'created', topic: e[1].name });
        break;
      case EVENT_DELETED:
        this.removeTopic(e[1]);
        this.emit({ type: 'deleted', topic: e[1] });
        break;
    }
  }

  private apply(seq: number, events: HostEvent[], replies: HostReply[]): void {
    let topicEvents = false;
    for (const e of events) {
      try {
        this.applyEvent(e);
        if (e[0] === EVENT_CREATED || e[0] === EVENT_DELETED) topicEvents = true;
      } catch (err) {
        this.logger?.error({ err, event: e[0] }, 'an event of the log thread could not be applied on this thread');
      }
    }
    // Told at once, not with the next requests: topic admin waits for every thread's ack.
    if (topicEvents && !this.closed) this.port.postMessage({ requests: [], ack: seq });
    for (const w of [...this.topicWaiters]) {
      if (this.topics.has(w.topic) !== w.exists) continue;
      this.topicWaiters.splice(this.topicWaiters.indexOf(w), 1);
      w.done();
    }
    for (const r of replies) {
      const w = this.waiting.get(r.id);
      if (!w) continue;
      this.waiting.delete(r.id);
      if (r.ok) w.resolve(r.value);
      else w.reject(fromWireError(r.error));
    }
  }

  private emit(event: Parameters<TopicListener>[0]): void {
    for (const l of this.topicListeners) {
      try {
        l(event);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  /** Resolves once the topic's existence here is `exists` (at once when it already is). */
  private untilTopic(topic: string, exists: boolean): Promise<void> {
    if (this.topics.has(topic) === exists) return Promise.resolve();
    return new Promise((done) => this.topicWaiters.push({ topic, exists, done }));
  }

  hasTopic(topic: string): boolean {
    return this.topics.has(topic);
  }

  listTopics(): string[] {
    return [...this.topics.keys()].sort();
  }

  partitionCount(topic: string): number {
    const t = this.topics.get(topic);
    if (!t) throw new UnknownTopicError(topic);
    return t.partitions.length;
  }

  describe(topic: string): TopicInfo {
    const t = this.topics.get(topic);
    if (!t) throw new UnknownTopicError(topic);
    return {
      name: topic,
      retentionMs: t.snapshot.retentionMs,
      retentionBytes: t.snapshot.retentionBytes,
      createdAt: t.snapshot.createdAt,
      partitions: t.partitions.map((p) => ({ partition: p.partition, epoch: p.epoch, start: p.startOffset, hw: p.hw, bytes: p.reader.bytes, segments: p.reader.segmentCount })),
    };
  }

  async createTopic(topic: string, opts: CreateTopicOptions): Promise<TopicInfo> {
    try {
      await this.ask({ op: 'createTopic', topic, opts });
    } catch (err) {
      // Created meanwhile by another thread or node: its event is on its way here, and a
      // caller that takes "exists" as good as "created" must find the topic.
      if (err instanceof TopicExistsError) await this.untilTopic(topic, true);
      throw err;
    }
    await this.untilTopic(topic, true);
    return this.describe(topic);
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.ask({ op: 'deleteTopic', topic });
    await this.untilTopic(topic, false);
  }

  onTopicEvent(listener: TopicListener): () => void {
    this.topicListeners.add(listener);
    return () => this.topicListeners.delete(listener);
  }

  partition(topic: string, partition: number): ThreadPartition {
    const t = this.topics.get(topic);
    if (!t) throw new UnknownTopicError(topic);
    const p = t.partitions[partition];
    if (!Number.isInteger(partition) || p === undefined) {
      throw new BadRequestError(`partition ${partition} does not exist in ${topic} (0..${t.partitions.length - 1})`, 'BAD_PARTITION');
    }
    return p;
  }

  /** Stops: what still waits for an answer is refused; the mappings are let go. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    const err = new SluiceError('UNAVAILABLE', 'the log is closed', 'CLOSED');
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    for (const name of [...this.topics.keys()]) this.removeTopic(name);
    this.port.removeAllListeners('message');
  }
}

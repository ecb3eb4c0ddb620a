/**
 * The log thread's side of a log shared with other threads (their side: thread-log.ts; the
 * messages: thread-messages.ts). It serves any `Log` — the local engine, or the cluster log
 * whose mirror is kept in the same segment format — to threads attached by a MessagePort:
 *
 * - each thread gets a snapshot of every topic (epochs, start, hw, segment files and their
 *   visible bytes) and then, once per event-loop turn in which anything happened, the events
 *   of that turn in order: commits as positions in segment files (consecutive batches of a
 *   partition in one segment are sent as one run), starts moved by retention (checked every
 *   `startCheckMs`), topics created and deleted;
 * - appends arrive by transfer, grouped per turn of the sending thread, and are applied in
 *   the order sent; their answers, and those of topic admin and group offsets, go back
 *   after the events that made them true (a commit before the answer to its append).
 *
 * Topic admin is seen alike by every thread: `log` (the Log this thread's own fronts use)
 * and the threads' createTopic and deleteTopic resolve only once every attached thread has
 * applied the event (each acks the message that carried it). Whoever was told "created"
 * may then use the topic on any thread.
 *
 * Nothing here copies batch bytes: a thread maps the segment files and reads them itself.
 */
import path from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import type { CreateTopicOptions, Log, LogPartition, OffsetStore, CommittedSegment, TopicInfo, TopicListener } from './log.ts';
import type { Logger } from './logger.ts';
import {
  type HostEvent,
  type HostReply,
  type PartitionSnapshot,
  type ThreadMessage,
  type ThreadRequest,
  type TopicSnapshot,
  EVENT_COMMIT,
  EVENT_CREATED,
  EVENT_DELETED,
  EVENT_START,
  toWireError,
} from './thread-messages.ts';


interface Hosted {
  topic: string;
  partition: number;
  log: LogPartition;
  start: number;
  unlisten: () => void;
}

interface Link {
  port: MessagePort;
  replies: HostReply[];
  /** The last message with a topic event this thread has applied. */
  acked: number;
}

export interface LogHostOptions {
  /** How often the partitions' starts are checked for retention's moves. */
  startCheckMs?: number;
  logger?: Logger;
}

export class LogHost {
  private readonly links = new Set<Link>();
  private readonly hosted = new Map<number, Hosted>();
  private readonly pidsOf = new Map<string, number[]>();
  private nextPid = 1;
  private events: HostEvent[] = [];
  private flushScheduled = false;
  /** The number of the next message (every thread gets the same events under one number). */
  private seq = 1;
  /** The number of the message that carries (or carried) the latest topic event. */
  private topicEventSeq = 0;
  private propagationWaiters: { seq: number; done: () => void }[] = [];
  /** The log for this thread's own fronts: topic admin resolves once every thread knows. */
  readonly log: Log;
  private readonly unlistenTopics: () => void;
  private readonly startTimer: NodeJS.Timeout;
  private closed = false;

  constructor(
    /** The log served: the local engine or the cluster log. */
    private readonly source: Log,
    private readonly opts: LogHostOptions = {},
  ) {
    for (const t of source.listTopics()) this.host(t);
    this.unlistenTopics = source.onTopicEvent((e) => {
      if (e.type === 'created') {
        this.host(e.topic);
        const snap = this.snapshot(e.topic);
        if (snap) this.push([EVENT_CREATED, snap]);
      } else this.unhost(e.topic);
    });
    this.startTimer = setInterval(() => this.checkStarts(), opts.startCheckMs ?? 1000);
    this.startTimer.unref();
    this.log = new PropagatedLog(source, () => this.propagated());
  }

  /** Serves the log to the thread at the other end of `port`; returns the function that stops. */
  attach(port: MessagePort): () => void {
    // What its snapshot holds it need not ack: events from the next message on.
    const link: Link = { port, replies: [], acked: this.seq - 1 };
    this.links.add(link);
    const snapshot: TopicSnapshot[] = [];
    for (const t of this.pidsOf.keys()) {
      const s = this.snapshot(t);
      if (s) snapshot.push(s);
    }
    port.postMessage({ snapshot, seq: this.seq - 1 });
    const onMessage = (m: ThreadMessage): void => this.serve(link, m);
    port.on('message', onMessage);
    return () => {
      port.off('message', onMessage);
      this.links.delete(link);
      this.checkPropagation();
    };
  }

  /** Resolves once every attached thread has applied the latest topic event. */
  propagated(): Promise<void> {
    const seq = this.topicEventSeq;
    if (this.allAcked(seq)) return Promise.resolve();
    return new Promise((done) => this.propagationWaiters.push({ seq, done }));
  }

  private allAcked(seq: number): boolean {
    for (const l of this.links) if (l.acked < seq) return false;
    return true;
  }

  private checkPropagation(): void {
    if (this.propagationWaiters.length === 0) return;
    const ready = this.propagationWaiters.filter((w) => this.allAcked(w.seq));
    if (ready.length === 0) return;
    this.propagationWaiters = this.propagationWaiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.done();
  }

  private host(topic: string): void {
    if (this.pidsOf.has(topic)) return;
    const pids: number[] = [];
    let count: number;
    try {
      count = this.source.partitionCount(topic);
    } catch {
      return; // deleted meanwhile
    }
    for (let p = 0; p < count; p++) {
      const pid = this.nextPid++;
      const log = this.source.partition(topic, p);
      const unlisten = log.onCommit((bytes, first, next, segment, position) => this.commit(pid, segment, position, bytes.length, first, next));
      this.hosted.set(pid, { topic, partition: p, log, start: log.startOffset, unlisten });
      pids.push(pid);
    }
    this.pidsOf.set(topic, pids);
  }

  private unhost(topic: string): void {
    const pids = this.pidsOf.get(topic);
    if (!pids) return;
    this.pidsOf.delete(topic);
    for (const pid of pids) {
      this.hosted.get(pid)?.unlisten();
      this.hosted.delete(pid);
    }
    this.push([EVENT_DELETED, topic]);
  }

  private snapshot(topic: string): TopicSnapshot | null {
    const pids = this.pidsOf.get(topic);
    if (!pids) return null;
    let info;
    try {
      info = this.source.describe(topic);
    } catch {
      return null;
    }
    const partitions: PartitionSnapshot[] = pids.map((pid) => {
      const h = this.hosted.get(pid)!;
      const spans = h.log.segmentSpans();
      return { pid, partition: h.partition, epoch: h.log.epoch, start: h.log.startOffset, hw: h.log.hw, dir: path.dirname(spans[0].logPath), spans };
    });
    return { name: topic, retentionMs: info.retentionMs, retentionBytes: info.retentionBytes, createdAt: info.createdAt, partitions };
  }

  private commit(pid: number, segment: CommittedSegment, position: number, length: number, first: number, next: number): void {
    if (this.links.size === 0) return;
    const base = segment.baseOffset;
    const last = this.events[this.events.length - 1];
    // The next batch of the same run: one event for the run.
    if (last !== undefined && last[0] === EVENT_COMMIT && last[1] === pid && last[2] === base && last[4] === position && last[6] === first) {
      last[4] = position + length;
      last[6] = next;
      return;
    }
    this.push([EVENT_COMMIT, pid, base, position, position + length, first, next]);
  }

  private checkStarts(): void {
    for (const [pid, h] of this.hosted) {
      let start: number;
      try {
        start = h.log.startOffset;
      } catch {
        continue;
      }
      if (start === h.start) continue;
      h.start = start;
      this.push([EVENT_START, pid, start]);
    }
  }

  private push(e: HostEvent): void {
    if (this.links.size === 0) return;
    this.events.push(e);
    if (e[0] === EVENT_CREATED || e[0] === EVENT_DELETED) this.topicEventSeq = this.seq;
    this.scheduleFlush();
  }

  /**
   * One message per thread per turn. Two microtask hops: the answers of appends settled in
   * this turn are queued as promise jobs behind the first hop, and go in the same message.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => queueMicrotask(this.flush));
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const events = this.events;
    this.events = [];
    const seq = this.seq++;
    for (const link of this.links) {
      if (events.length === 0 && link.replies.length === 0) continue;
      const replies = link.replies;
      link.replies = [];
      try {
        link.port.postMessage({ seq, events, replies });
      } catch (err) {
        this.opts.logger?.error({ err }, 'could not post to a thread');
      }
    }
  };

  private reply(link: Link, r: HostReply): void {
    link.replies.push(r);
    this.scheduleFlush();
  }

  private settle(link: Link, id: number, p: Promise<unknown>, topic?: string): void {
    p.then(
      (value) => this.reply(link, { id, ok: true, value }),
      (err) => this.reply(link, { id, ok: false, error: toWireError(err, topic) }),
    );
  }

  private serve(link: Link, m: ThreadMessage): void {
    if (m.ack !== undefined && m.ack > link.acked) {
      link.acked = m.ack;
      this.checkPropagation();
    }
    for (const r of m.requests) this.request(link, r);
  }

  private request(link: Link, r: ThreadRequest): void {
    if (this.closed) return this.reply(link, { id: r.id, ok: false, error: { name: 'UnavailableError', code: 'UNAVAILABLE', message: 'the log is closed', reason: 'CLOSED' } });
    try {
      switch (r.op) {
        case 'append': {
          const h = this.hosted.get(r.pid);
          if (!h) {
            return this.reply(link, { id: r.id, ok: false, error: { name: 'SluiceError', code: 'UNKNOWN_TOPIC', message: 'the topic was deleted', reason: 'TOPIC_DELETED' } });
          }
          return this.settle(link, r.id, h.log.append(r.batch));
        }
        case 'createTopic':
          return this.settle(link, r.id, this.log.createTopic(r.topic, r.opts), r.topic);
        case 'deleteTopic':
          return this.settle(link, r.id, this.log.deleteTopic(r.topic), r.topic);
        // (this.log: answered once every thread, the asking one included, has applied it)
        case 'fetchOffsets':
          return this.settle(link, r.id, this.source.offsets.fetch(r.group));
        case 'commitOffsets':
          return this.settle(link, r.id, this.source.offsets.commit(r.group, r.offsets));
        case 'forgetOffsets':
          return this.settle(link, r.id, this.source.offsets.forgetTopic(r.topic));
      }
    } catch (err) {
      this.reply(link, { id: r.id, ok: false, error: toWireError(err, 'topic' in r ? r.topic : undefined) });
    }
  }

  /** Stops serving: later requests are refused; the log itself is its owner's to close. */
  close(): void {
    this.closed = true;
    clearInterval(this.startTimer);
    this.unlistenTopics();
    for (const h of this.hosted.values()) h.unlisten();
    this.hosted.clear();
    this.pidsOf.clear();
    this.flush();
    this.links.clear();
    this.checkPropagation();
  }
}

/**
 * The shared log as the log thread's own fronts use it: the log itself, except that topic
 * admin resolves once every thread has applied it (LogHost.propagated).
 */
class PropagatedLog implements Log {
  constructor(
    private readonly inner: Log,
    private readonly propagated: () => Promise<void>,
  ) {}

  get offsets(): OffsetStore {
    return this.inner.offsets;
  }

  hasTopic(topic: string): boolean {
    return this.inner.hasTopic(topic);
  }

  listTopics(): string[] {
    return this.inner.listTopics();
  }

  partitionCount(topic: string): number {
    return this.inner.partitionCount(topic);
  }

  describe(topic: string): TopicInfo {
    return this.inner.describe(topic);
  }

  async createTopic(topic: string, opts: CreateTopicOptions): Promise<TopicInfo> {
    const info = await this.inner.createTopic(topic, opts);
    await this.propagated();
    return info;
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.inner.deleteTopic(topic);
    await this.propagated();
  }

  onTopicEvent(listener: TopicListener): () => void {
    return this.inner.onTopicEvent(listener);
  }

  partition(topic: string, partition: number): LogPartition {
    return this.inner.partition(topic, partition);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

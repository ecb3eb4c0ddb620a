/**
 * Write path: one partition's appends, published to its JetStream stream with optimistic
 * concurrency, several in flight at once.
 *
 * The node believes it knows the stream's tail: the last message's id (Nats-Msg-Id), its
 * sequence, and the offset after its last record. Each batch is stamped with that offset as
 * its baseOffset (the CRC does not cover it: 8 bytes rewritten), given a fresh id, and
 * published with an expectation that JetStream checks atomically before storing it:
 *
 * - `Nats-Expected-Last-Msg-Id: <id of the batch before it>` — the batch is stored only if
 *   the stream's last message is exactly the batch it was stamped to follow. So a chain of
 *   batches can be pipelined: if one is refused, every later one (expecting an id that never
 *   landed) is refused too, and a stored batch always begins where its predecessor ends.
 *   Offsets are dense and never given twice, whichever nodes publish.
 * - `Nats-Expected-Last-Sequence: <seq>` — for the first batch after a tail was looked up,
 *   and after the chain has been idle for half the duplicate window: JetStream remembers the
 *   last message id across its own restarts only within that window, while a sequence is
 *   checked the same way by every replica at all times.
 *
 * Any refusal (another node appended first), timeout or lost connection stops the pipeline.
 * Once every publish in flight has its outcome, the tail is looked up in JetStream. Each batch
 * any attempt of which got no answer is looked for in the mirror (once the mirror holds the
 * stream up to that tail) at the offset it was stamped with: found byte for byte, it was
 * stored (a PubAck lost on the way, or an attempt that landed after a later one was refused)
 * and is answered; otherwise it was not, and it is stamped again from the new tail and
 * published again, in its original order before anything that came later. An unanswered
 * attempt can still land only while the stream's last message is the one it expects; the
 * new attempt then expects the same one and carries the same bytes at the same offset, so
 * one of them lands, never both.
 *
 * An append resolves after its PubAck AND once the local mirror holds it (hw moved, commit
 * listeners told), so the Log contract holds in cluster mode too. It is answered UNAVAILABLE
 * when JetStream did not take it within appendDeadlineMs (no quorum, no connection); it may
 * still be stored after that, as a Kafka producer's timed-out send may (docs/cluster.md).
 */
import {
  type AppendResult,
  BadRequestError,
  type PartitionLog,
  SluiceError,
  TooLargeError,
  UnavailableError,
  UnknownTopicError,
  checkBatch,
  limits,
  setBaseOffset,
} from '../../engine/index.ts';
import type { Logger } from '../common/logger.ts';
import { JetStreamApiError, type JetStreamClient, type JetStreamManager, type JetStreamPublishOptions, type PubAck } from '@nats-io/jetstream';
import { MESSAGE_TOO_LARGE, STREAM_NOT_FOUND, WRONG_LAST_MSG_ID, WRONG_LAST_SEQUENCE, clusterUnavailable, sleep } from './jetstream.ts';
import { type MirrorFeed, batchRange, mirrorHolds } from './mirror-feed.ts';
import {
  appendBytesInFlightMax,
  appendDeadlineMs,
  appendsInFlightMax,
  contentionYieldMs,
  duplicateWindowMs,
  pubAckTimeoutMs,
  retryDelayMaxMs,
  retryDelayMinMs,
} from './limits.ts';


export interface AppenderOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  topic: string;
  partition: number;
  stream: string;
  subject: string;
  mirror: PartitionLog;
  feed: MirrorFeed;
  /** Unique to this process: message ids are `<session>.<n>`. */
  session: string;
  /** Asks the other nodes to pause their publishes to this partition (see askToYield). */
  askToYield?: () => void;
  /** The largest batch NATS takes (its max_payload less room for headers). */
  batchBytesMax: number;
  logger: Logger;
}

/** What this node believes the stream's last message is. */
interface Tail {
  /** Its Nats-Msg-Id; null when it has none or the stream is empty. */
  id: string | null;
  /** Its sequence; null until known (a chained publish learns it from its PubAck). */
  seq: number | null;
  /** The offset after its last record: the next batch's baseOffset. */
  next: number;
  /** Set by this node's own publish at this local time (ms); 0 when looked up. */
  publishedAt: number;
}

type State = 'queued' | 'sent' | 'landing' | 'retry' | 'done';

interface Entry {
  batch: Uint8Array;
  count: number;
  deadline: number;
  resolve: (r: AppendResult) => void;
  reject: (err: Error) => void;
  state: State;
  /** The baseOffset the batch carries now. */
  base: number;
  id: string;
  attempts: number;
  /**
   * Some attempt got no answer (a timeout, a lost connection), so it may be stored — now, or
   * later while its expectation still holds. Stays set until the entry is answered: a later
   * attempt refused because that earlier one landed meanwhile must not make it forgotten.
   */
  maybeStored: boolean;
}

export class PartitionAppender {
  private queue: Entry[] = [];
  private inFlight: Entry[] = [];
  private inFlightBytes = 0;
  /** Publishes without a PubAck, in the order they were first published. */
  private retry: Entry[] = [];
  /** Acked by JetStream, waiting for the mirror. */
  private readonly landing = new Set<Entry>();
  private tail: Tail | null = null;
  private syncing = false;
  private syncDelayMs = retryDelayMinMs;
  private conflictsInRow = 0;
  private counter = 0;
  /** No new publish before this time (ms): another node asked for a turn. */
  private yieldUntil = 0;
  private yieldTimer: NodeJS.Timeout | null = null;
  private askedAt = 0;
  private closed: SluiceError | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: AppenderOptions) {
    this.timer = setInterval(() => this.expire(), 250);
    this.timer.unref();
  }

  append(batch: Uint8Array): Promise<AppendResult> {
    if (this.closed) return Promise.reject(this.closed);
    if (batch.length > this.opts.batchBytesMax) {
      return Promise.reject(new TooLargeError(`a batch of ${batch.length} bytes is over the ${this.opts.batchBytesMax} bytes NATS takes (its max_payload)`));
    }
    let count: number;
    try {
      // The checks the local engine makes, with its errors: nothing unchecked reaches JetStream.
      const h = checkBatch(batch, 0, batch.length, limits.batchBytesMax);
      if (h.size !== batch.length) throw new BadRequestError('bytes after the batch', 'TRAILING_BYTES');
      count = h.recordCount;
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ batch, count, deadline: Date.now() + appendDeadlineMs, resolve, reject, state: 'queued', base: -1, id: '', attempts: 0, maybeStored: false });
      this.pump();
    });
  }

  /** Publishes what is queued, as far as the in-flight limits allow. */
  private pump(): void {
    if (this.closed || this.syncing) return;
    const wait = this.yieldUntil - Date.now();
    if (wait > 0) {
      this.yieldTimer ??= setTimeout(() => {
        this.yieldTimer = null;
        this.pump();
      }, wait);
      return;
    }
    while (this.queue.length > 0 && this.inFlight.length < appendsInFlightMax && this.inFlightBytes < appendBytesInFlightMax) {
      const tail = this.tail;
      if (tail === null) return this.startSync();
      const chained = tail.id !== null && tail.publishedAt > 0 && Date.now() - tail.publishedAt < duplicateWindowMs / 2;
      if (!chained && tail.seq === null) {
        // Our own last publish is old and its PubAck not in yet: wait for it, or look up.
        if (this.inFlight.length > 0) return;
        return this.startSync();
      }
      this.send(this.queue.shift()!, tail, chained);
    }
  }

  private send(e: Entry, tail: Tail, chained: boolean): void {
    // The NATS client keeps a reference to a published payload until it is written to the
    // socket (after a reconnect, maybe): an earlier attempt's bytes must not change under it.
    if (e.attempts++ > 0) e.batch = Uint8Array.from(e.batch);
    e.base = tail.next;
    setBaseOffset(e.batch, 0, e.base);
    e.id = `${this.opts.session}.${++this.counter}`;
    e.state = 'sent';
    const expect: JetStreamPublishOptions['expect'] = chained ? { lastMsgID: tail.id! } : { lastSequence: tail.seq! };
    this.tail = { id: e.id, seq: null, next: e.base + e.count, publishedAt: Date.now() };
    this.inFlight.push(e);
    this.inFlightBytes += e.batch.length;
    this.opts.js.publish(this.opts.subject, e.batch, { msgID: e.id, expect, timeout: pubAckTimeoutMs }).then(
      (ack) => this.onAck(e, ack),
      (err) => this.onFailure(e, err as Error),
    );
  }

  private leaveInFlight(e: Entry): void {
    const i = this.inFlight.indexOf(e);
    if (i >= 0) {
      this.inFlight.splice(i, 1);
      this.inFlightBytes -= e.batch.length;
    }
  }

  private onAck(e: Entry, ack: PubAck): void {
    this.leaveInFlight(e);
    if (this.tail?.id === e.id) this.tail.seq = ack.seq;
    this.conflictsInRow = 0;
    e.state = 'landing';
    this.landing.add(e);
    // Stored on a quorum; answered once the mirror holds it too.
    this.opts.feed.whenApplied(ack.seq).then(
      () => this.settleFromMirror(e),
      (err) => this.finish(e, err as Error),
    );
    this.afterOutcome();
    this.pump();
  }

  private onFailure(e: Entry, err: Error): void {
    this.leaveInFlight(e);
    if (err instanceof JetStreamApiError) {
      const code = err.code;
      if (code === MESSAGE_TOO_LARGE) return this.finish(e, new TooLargeError(`JetStream refused a batch of ${e.batch.length} bytes: ${err.message}`)), this.afterOutcome();
      if (code === STREAM_NOT_FOUND) return this.finish(e, new UnknownTopicError(this.opts.topic)), this.afterOutcome();
      if (code === WRONG_LAST_MSG_ID || code === WRONG_LAST_SEQUENCE) {
        this.conflictsInRow++;
        this.opts.logger.debug({ stream: this.opts.stream, base: e.base }, 'another publisher appended first; the batch is stamped again');
        if (this.conflictsInRow >= 2) this.askToYield();
      } else this.opts.logger.warn({ err, stream: this.opts.stream }, 'JetStream refused a publish');
    } else {
      e.maybeStored = true;
      this.opts.logger.warn({ err: err.message, stream: this.opts.stream }, 'publish without a PubAck; its outcome will be looked up');
    }
    e.state = 'retry';
    this.retry.push(e);
    this.syncing = true;
    this.afterOutcome();
  }

  /**
   * Fairness under contention. A node whose batches keep losing the race for the tail asks
   * the others (a core NATS message, `<cluster>.y.<epoch>`, best effort) to pause; without
   * that, a node that pipelines without pause can keep another from ever landing a batch,
   * since the loser must look the tail up and publish again in the gap between two of the
   * winner's batches. Scheduling only: correctness never depends on it.
   */
  private askToYield(): void {
    const now = Date.now();
    if (now - this.askedAt < contentionYieldMs) return;
    this.askedAt = now;
    this.opts.askToYield?.();
  }

  /** Another node asked for a turn: publish nothing new for `ms`, then look the tail up again. */
  yieldFor(ms: number): void {
    if (this.closed || (this.queue.length === 0 && this.inFlight.length === 0)) return;
    this.yieldUntil = Math.max(this.yieldUntil, Date.now() + ms);
    // The other node is about to append: the tail known here will be stale.
    this.tail = null;
  }

  /** Once nothing is in flight any more, a pending look-up of the tail starts. */
  private afterOutcome(): void {
    if (this.syncing && this.inFlight.length === 0) this.startSync(true);
  }

  private startSync(force = false): void {
    if (this.closed) return;
    if (this.syncing && !force) return;
    this.syncing = true;
    if (this.inFlight.length > 0) return;
    // Two nodes hammering one partition would otherwise collide in lockstep.
    const jitter = this.conflictsInRow > 1 ? Math.random() * Math.min(50, 2 ** this.conflictsInRow) : 0;
    setTimeout(() => void this.sync(), jitter);
  }

  /**
   * Looks the tail up in JetStream, lets the mirror catch up to it, answers the publishes that
   * were stored after all, and queues the rest again (in their first order) from the new tail.
   */
  private async sync(): Promise<void> {
    if (this.closed) return;
    const { jsm, stream, subject, mirror, feed } = this.opts;
    try {
      const last = await jsm.streams.getMessage(stream, { last_by_subj: subject });
      // Entries whose every attempt was refused stored nothing; those with an attempt that got
      // no answer are looked for in the mirror, which must first hold the stream up to the tail.
      const unknown = this.retry.some((e) => e.state === 'retry' && e.maybeStored);
      let tail: Tail;
      const r = last ? batchRange(last.data) : null;
      if (last && r) {
        if (unknown) await feed.whenApplied(last.seq);
        tail = { id: last.header?.get('Nats-Msg-Id') || null, seq: last.seq, next: r.next, publishedAt: 0 };
      } else if (last) {
        // The last message is not a batch (every feed drops it): the offsets go on from the mirror's end.
        await feed.whenApplied(last.seq);
        tail = { id: last.header?.get('Nats-Msg-Id') || null, seq: last.seq, next: mirror.nextOffset, publishedAt: 0 };
      } else {
        const info = await jsm.streams.info(stream);
        await feed.whenApplied(info.state.last_seq);
        tail = { id: null, seq: info.state.last_seq, next: mirror.nextOffset, publishedAt: 0 };
      }
      if (this.closed) return;
      const again: Entry[] = [];
      for (const e of this.retry) {
        if (e.state !== 'retry') continue;
        if (e.maybeStored && this.inMirror(e)) this.finish(e, null);
        else if (Date.now() > e.deadline) this.finish(e, this.unavailable('JetStream did not store the batch in time'));
        else {
          e.state = 'queued';
          again.push(e);
        }
      }
      this.retry = [];
      this.queue = [...again, ...this.queue];
      this.tail = tail;
      this.syncing = false;
      this.syncDelayMs = retryDelayMinMs;
      this.pump();
    } catch (err) {
      if (this.closed) return;
      if ((err as { code?: number }).code === STREAM_NOT_FOUND) {
        this.close(new UnknownTopicError(this.opts.topic));
        return;
      }
      this.opts.logger.warn({ err: (err as Error).message, stream }, 'cannot look up the stream tail; retrying');
      this.expire();
      const delay = this.syncDelayMs;
      this.syncDelayMs = Math.min(this.syncDelayMs * 2, retryDelayMaxMs);
      setTimeout(() => void this.sync(), delay);
    }
  }

  /** True when the mirror holds this entry's batch, byte for byte, at the offset it was stamped with. */
  private inMirror(e: Entry): boolean {
    const mirror = this.opts.mirror;
    if (e.base < mirror.startOffset || e.base + e.count > mirror.hw) return false;
    return mirrorHolds(mirror, e.base, e.batch);
  }

  private settleFromMirror(e: Entry): void {
    if (e.state === 'done') return;
    if (this.inMirror(e)) return this.finish(e, null);
    // Acked by JetStream but not where it was stamped: the mirror was cut back or reset
    // meanwhile (see mirror-feed.ts). The record is stored; its offset cannot be vouched for.
    this.opts.logger.error({ stream: this.opts.stream, base: e.base, hw: this.opts.mirror.hw }, 'an acked batch is not in the mirror where it was stamped');
    this.finish(e, this.unavailable('the batch was stored but this node cannot confirm its offset'));
  }

  private finish(e: Entry, err: Error | null): void {
    if (e.state === 'done') return;
    e.state = 'done';
    this.landing.delete(e);
    if (err) e.reject(err);
    else e.resolve({ baseOffset: e.base, lastOffset: e.base + e.count - 1, recordCount: e.count });
  }

  private unavailable(why: string): UnavailableError {
    return clusterUnavailable(`${this.opts.topic}-${this.opts.partition}`, why);
  }

  /**
   * Answers UNAVAILABLE to appends past their deadline that are not in flight: queued, or
   * waiting for a look-up of the tail that does not get through (those in flight wait for
   * their PubAck or its timeout).
   */
  private expire(): void {
    const now = Date.now();
    const late = (e: Entry): boolean => e.deadline <= now && e.state !== 'done';
    if (this.queue.some(late)) {
      for (const e of this.queue) if (late(e)) this.finish(e, this.unavailable('JetStream did not store the batch in time'));
      this.queue = this.queue.filter((e) => e.state !== 'done');
    }
    if (this.syncing && this.retry.some(late)) {
      for (const e of this.retry) if (late(e)) this.finish(e, this.unavailable('JetStream did not store the batch in time'));
      this.retry = this.retry.filter((e) => e.state !== 'done');
    }
    // Acked by JetStream but still not in this node's mirror (its disk is full, say): the
    // client is told so rather than left waiting; the batch is stored, every other node shows it.
    for (const e of this.landing) {
      if (e.deadline + appendDeadlineMs <= now) {
        this.finish(e, new UnavailableError(`${this.opts.topic}-${this.opts.partition}: stored by JetStream at offset ${e.base}, but this node's copy does not show it yet`, 'CLUSTER_UNAVAILABLE'));
      }
    }
  }

  /** Publishes still unanswered (in flight, queued, or waiting for a look-up). */
  get pending(): number {
    return this.queue.length + this.inFlight.length + this.retry.length + this.landing.size;
  }

  /** Waits (up to the deadline of what is pending) for every append to be answered. */
  async drain(): Promise<void> {
    const until = Date.now() + appendDeadlineMs + pubAckTimeoutMs;
    while (this.pending > 0 && Date.now() < until && !this.closed) await sleep(20);
  }

  /** Rejects everything still pending with `err` and refuses new appends. */
  close(err: SluiceError): void {
    if (this.closed) return;
    this.closed = err;
    clearInterval(this.timer);
    if (this.yieldTimer) clearTimeout(this.yieldTimer);
    for (const e of [...this.queue, ...this.inFlight, ...this.retry, ...this.landing]) this.finish(e, err);
    this.queue = [];
    this.inFlight = [];
    this.retry = [];
  }
}

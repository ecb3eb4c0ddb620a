/**
 * Read path: one partition's JetStream stream feeding this node's mirror of it (a PartitionLog
 * in the engine's own segment format, which every front reads unchanged).
 *
 * Each stream message is one RecordBatch v2 whose baseOffset was assigned by whoever published
 * it; the mirror stores it byte for byte with `appendStamped`, so every node holds the same
 * bytes at the same offsets whichever node a batch came through. An ordered consumer delivers
 * the messages in stream order from where the mirror ends. Each one is checked before it is
 * stored, and nothing is ever skipped or stored twice:
 *
 * - its sequence is at or below the last one applied: a redelivery, dropped;
 * - it is not one whole valid batch: nobody can use it; every node drops it alike (logged);
 * - its baseOffset is the mirror's next offset: stored;
 * - its baseOffset is above: what came between is no longer in JetStream (retention ran
 *   while this node was behind); the mirror restarts empty at that offset (`resetTo`), and
 *   subscribers get a `gap` as after local retention;
 * - its baseOffset is below: the mirror holds something JetStream does not. The mirror is
 *   cut back (`truncateTo`) and refed from there, and the owner is told (`onDiverged`).
 *
 * Where to start after a restart is found by a binary search over the stream for the message
 * ending where the mirror ends (offsets grow with sequences), whose bytes must then equal the
 * mirror's last batch; a mirror that disagrees is cut back until it agrees (positioning below).
 *
 * Appenders wait here (`whenApplied`) for their acked sequence to be in the mirror, which is
 * what makes an append visible (hw moved, commit listeners told) when it resolves.
 */
import { type BatchHeader, BadRequestError, type PartitionLog, UnavailableError, checkBatch, limits } from '../../engine/index.ts';
import type { Logger } from '../common/logger.ts';
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { sleep } from './jetstream.ts';
import { feedBytesMin, feedHeartbeatMs, feedStallMs, resyncStepsMax, retryDelayMaxMs, retryDelayMinMs } from './limits.ts';

export interface MirrorFeedOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  mirror: PartitionLog;
  logger: Logger;
  /** Name prefix of the ordered consumers, for operators reading `nats consumer ls`. */
  consumerPrefix: string;
  /** The largest message NATS takes: the consumer asks for at least twice that many bytes. */
  maxPayloadBytes: number;
  /** Called after the mirror was cut back because it disagreed with JetStream. */
  onDiverged: () => void;
}

/** A batch's offsets as its header states them, or null when the bytes are not one whole valid batch. */
export function batchRange(data: Uint8Array): { base: number; next: number; header: BatchHeader } | null {
  try {
    const h = checkBatch(data, 0, data.length, limits.batchBytesMax);
    if (h.size !== data.length) return null;
    return { base: h.baseOffset, next: h.baseOffset + h.recordCount, header: h };
  } catch {
    return null;
  }
}

/** True when the mirror holds `batch` byte for byte at offset `base` (which must not be below its start). */
export function mirrorHolds(mirror: PartitionLog, base: number, batch: Uint8Array): boolean {
  const r = mirror.read(base, batch.length);
  if (!r || r.firstOffset !== base || r.bytes.length < batch.length) return false;
  return Buffer.from(r.bytes.buffer, r.bytes.byteOffset, batch.length).equals(Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength));
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class MirrorFeed {
  /** The last stream sequence the mirror reflects (stored or dropped). */
  private applied = 0;
  private waiters: Waiter[] = [];
  private messages: ConsumerMessages | null = null;
  private stopped = false;
  private running: Promise<void> | null = null;
  private retryDelayMs = retryDelayMinMs;
  private lastProgressAt = 0;
  /** Consumers started so far: part of each one's name. */
  private consumers = 0;
  private positioned: Promise<void>;
  private resolvePositioned!: () => void;

  constructor(private readonly opts: MirrorFeedOptions) {
    this.positioned = new Promise((r) => (this.resolvePositioned = r));
  }

  /** Positions the mirror against the stream and starts consuming; failures are retried. */
  start(): void {
    this.running ??= this.run();
  }

  /** Resolves once the mirror holds the stream through `seq`; rejects when the feed stops. */
  whenApplied(seq: number): Promise<void> {
    if (seq <= this.applied) return Promise.resolve();
    if (this.stopped) return Promise.reject(new UnavailableError(`the mirror of ${this.opts.stream} is stopped`, 'CLOSED'));
    return new Promise((resolve, reject) => {
      const w = { seq, resolve, reject };
      let i = this.waiters.length;
      while (i > 0 && this.waiters[i - 1].seq > seq) i--;
      this.waiters.splice(i, 0, w);
    });
  }

  /** Resolves once the mirror holds everything the stream held when this was called. */
  async caughtUp(): Promise<void> {
    await this.positioned;
    const info = await this.opts.jsm.streams.info(this.opts.stream);
    await this.whenApplied(info.state.last_seq);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.resolvePositioned();
    const err = new UnavailableError(`the mirror of ${this.opts.stream} is stopped`, 'CLOSED');
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.messages?.stop();
    await this.running?.catch(() => {});
  }

  /**
   * Positions once, then consumes from after the last applied sequence, starting a new
   * consumer whenever one stops or stalls; positions again only after a disagreement.
   */
  private async run(): Promise<void> {
    let needsPosition = true;
    while (!this.stopped) {
      try {
        if (needsPosition) {
          const from = await this.position();
          this.applied = from - 1;
          needsPosition = false;
          this.resolvePositioned();
        }
        if (this.stopped) return;
        await this.consume(this.applied + 1);
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof Reposition) needsPosition = true;
        else {
          this.opts.logger.warn({ err: (err as Error).message, stream: this.opts.stream, applied: this.applied }, 'mirror feed interrupted; resuming');
          await sleep(this.retryDelayMs);
          this.retryDelayMs = Math.min(this.retryDelayMs * 2, retryDelayMaxMs);
        }
      }
    }
  }

  /** The next offset of the batch at `seq`, with its bytes; null when no message has that sequence. */
  private async probe(seq: number): Promise<{ seq: number; data: Uint8Array; base: number; next: number } | null> {
    const m = await this.opts.jsm.streams.getMessage(this.opts.stream, { seq });
    if (!m) return null;
    const r = batchRange(m.data);
    // A message that is not a batch is dropped by every feed: it has no offsets, so for the
    // search it ends where it starts, which only a neighbour can tell; treat it as absent.
    if (!r) return null;
    return { seq: m.seq, data: m.data, base: r.base, next: r.next };
  }

  /** The first present message at or after `seq` (up to `last`), skipping absent ones. */
  private async probeFrom(seq: number, last: number): Promise<Awaited<ReturnType<MirrorFeed['probe']>>> {
    for (let s = seq; s <= last; s++) {
      const p = await this.probe(s);
      if (p) return p;
    }
    return null;
  }

  /**
   * Brings the mirror in line with the stream and returns the sequence to consume from. When
   * the mirror's end is the end of a stream message whose bytes equal the mirror's last
   * batch, it resumes after it; otherwise the mirror is cut back (or reset) until it does.
   */
  private async position(): Promise<number> {
    const { jsm, stream, mirror, logger } = this.opts;
    for (let step = 0; step < resyncStepsMax; step++) {
      const info = await jsm.streams.info(stream);
      const { first_seq: firstSeq, last_seq: lastSeq, messages } = info.state;
      const empty = mirror.hw === mirror.startOffset;
      if (messages === 0) {
        if (!empty && lastSeq === 0) logger.error({ stream, mirrorEnd: mirror.hw }, 'JetStream holds nothing for a partition this node mirrors; keeping the mirror (its offsets are not given again)');
        this.applied = lastSeq;
        return lastSeq + 1;
      }
      const first = await this.probeFrom(firstSeq, lastSeq);
      if (!first) {
        this.applied = lastSeq;
        return lastSeq + 1;
      }
      if (empty) {
        if (mirror.hw !== first.base) mirror.resetTo(first.base);
        this.applied = first.seq - 1;
        return first.seq;
      }
      const end = mirror.hw;
      if (end < first.base) {
        logger.warn({ stream, mirrorEnd: end, streamStart: first.base }, 'JetStream no longer holds what follows this mirror (retention ran while the node was behind); the mirror starts again');
        mirror.resetTo(first.base);
        this.applied = first.seq - 1;
        return first.seq;
      }
      // Smallest sequence whose batch ends at or after the mirror's end.
      let lo = first.seq;
      let hi = lastSeq;
      let found: Awaited<ReturnType<MirrorFeed['probe']>> = null;
      while (lo <= hi) {
        const mid = Math.floor((lo + hi) / 2);
        const p = await this.probeFrom(mid, hi);
        if (!p) {
          hi = mid - 1;
          continue;
        }
        if (p.next >= end) {
          found = p;
          hi = mid - 1;
        } else lo = p.seq + 1;
      }
      if (!found) {
        // The stream ends before the mirror does: JetStream lost acknowledged data, or the
        // mirror holds batches nobody acknowledged. JetStream is the truth.
        const last = await this.probeFrom(lastSeq, lastSeq);
        const cut = last ? last.next : first.base;
        logger.error({ stream, mirrorEnd: end, streamEnd: cut }, 'the mirror holds more than JetStream; cutting it back');
        mirror.truncateTo(cut);
        this.opts.onDiverged();
        continue;
      }
      if (found.next === end && found.base >= mirror.startOffset) {
        if (mirrorHolds(mirror, found.base, found.data)) {
          this.applied = found.seq;
          return found.seq + 1;
        }
      } else if (found.next === end) {
        // The mirror starts inside this batch's range (should not happen): start over from it.
        mirror.resetTo(found.base);
        this.applied = found.seq - 1;
        return found.seq;
      }
      logger.error({ stream, seq: found.seq, base: found.base, mirrorEnd: end }, 'the mirror disagrees with JetStream; cutting it back');
      mirror.truncateTo(found.base);
      this.opts.onDiverged();
    }
    throw new UnavailableError(`cannot bring the mirror of ${stream} in line with JetStream`, 'CLUSTER_UNAVAILABLE');
  }

  /**
   * One ordered consumer from `from` until it stops. The client library recreates an ordered
   * consumer by itself after some failures, not all (a consumer whose server was killed could
   * stay silent): this one is dropped and replaced when its heartbeats go missing, or when an
   * appender waits for a sequence the stream has and nothing arrives for feedStallMs.
   */
  private async consume(from: number): Promise<void> {
    const { js, jsm, stream, consumerPrefix, maxPayloadBytes } = this.opts;
    // A new name each time: the consumer this one replaces may still exist on the server.
    const consumer = await js.consumers.get(stream, { opt_start_seq: from, name_prefix: `${consumerPrefix}_${++this.consumers}` });
    let failure: Error | null = null;
    let messages: ConsumerMessages | null = null;
    const fail = (err: Error): void => {
      failure ??= err;
      messages?.stop();
    };
    messages = await consumer.consume({
      // Bounded by bytes (the client takes bytes or messages, not both): at least two of the
      // largest message, or the server refuses the pull.
      max_bytes: Math.max(feedBytesMin, 2 * maxPayloadBytes),
      idle_heartbeat: feedHeartbeatMs,
      expires: 10_000,
      callback: (m: JsMsg) => {
        if (failure) return;
        try {
          if (!this.onMessage(m)) fail(new Reposition());
          else this.lastProgressAt = Date.now();
        } catch (err) {
          fail(err as Error);
        }
      },
    });
    this.messages = messages;
    if (this.stopped) messages.stop();
    void (async () => {
      for await (const n of messages.status()) {
        if (n.type === 'heartbeats_missed' && n.count >= 2) fail(new UnavailableError('consumer heartbeats missed', 'CLUSTER_UNAVAILABLE'));
      }
    })().catch(() => {});
    let checking = false;
    const watchdog = setInterval(() => {
      if (checking || this.waiters.length === 0 || Date.now() - this.lastProgressAt < feedStallMs) return;
      checking = true;
      jsm.streams
        .info(stream)
        .then((info) => {
          if (info.state.last_seq > this.applied && Date.now() - this.lastProgressAt >= feedStallMs) fail(new UnavailableError('consumer stalled behind the stream', 'CLUSTER_UNAVAILABLE'));
        })
        .catch(() => {})
        .finally(() => (checking = false));
    }, feedStallMs / 2);
    this.lastProgressAt = Date.now();
    try {
      await messages.closed();
    } finally {
      clearInterval(watchdog);
      this.messages = null;
      consumer.delete().catch(() => {});
    }
    if (failure) throw failure;
    if (!this.stopped) throw new UnavailableError(`the consumer of ${stream} stopped`, 'CLUSTER_UNAVAILABLE');
  }

  /** Applies one delivered message; false when the feed must be positioned again. */
  private onMessage(m: JsMsg): boolean {
    const { mirror, stream, logger } = this.opts;
    const seq = m.seq;
    if (seq <= this.applied) return true;
    const data = m.data;
    const r = batchRange(data);
    if (!r) {
      logger.error({ stream, seq, bytes: data.length }, 'dropping a JetStream message that is not one record batch');
      this.advance(seq);
      return true;
    }
    const next = mirror.nextOffset;
    if (r.base === next) {
      this.store(data, r.header, seq);
      return true;
    }
    if (r.base > next) {
      logger.warn({ stream, seq, base: r.base, mirrorEnd: next }, 'JetStream no longer holds what follows this mirror; the mirror starts again');
      mirror.resetTo(r.base);
      this.store(data, r.header, seq);
      return true;
    }
    // Below the mirror's end: the mirror holds something this stream does not.
    logger.error({ stream, seq, base: r.base, mirrorEnd: next }, 'a JetStream batch overlaps the mirror; cutting the mirror back');
    mirror.truncateTo(r.base);
    this.opts.onDiverged();
    if (mirror.nextOffset === r.base) {
      this.store(data, r.header, seq);
      return true;
    }
    return false;
  }

  /** Stores a batch batchRange found whole and valid (its header): the mirror does not check it again. */
  private store(data: Uint8Array, header: BatchHeader, seq: number): void {
    const mirror = this.opts.mirror;
    const before = mirror.nextOffset;
    // The mirror's flush policy is never `always` (see cluster-log.ts), so the batch is
    // written and visible when appendStamped returns; its promise only reports.
    mirror.appendStamped(data, header).catch((err) => this.opts.logger.error({ err, stream: this.opts.stream, seq }, 'mirror append failed'));
    if (mirror.nextOffset === before) throw new BadRequestError(`the mirror of ${this.opts.stream} did not take sequence ${seq}`, 'OFFSET_GAP');
    this.advance(seq);
  }

  private advance(seq: number): void {
    this.applied = seq;
    this.retryDelayMs = retryDelayMinMs;
    let n = 0;
    while (n < this.waiters.length && this.waiters[n].seq <= seq) n++;
    if (n === 0) return;
    for (const w of this.waiters.splice(0, n)) w.resolve();
  }
}

/** The feed must find its place in the stream again (the mirror was cut back). */
class Reposition extends Error {
  constructor() {
    super('the mirror needs positioning again');
  }
}

/**
 * What each WebSocket request does (wire contract §3): one method per op, plus PRODUCE
 * frames, `drain` and `close`. "Every request gets exactly one answer" and "A bad frame
 * gets an error, never a crash": every path ends in an answer, and nothing a client sends
 * can throw out of here.
 */
import { type ErrorCode, type Log, SluiceError, asSluiceError, isValidTopicName, validateProducedBatch } from '../../engine/index.ts';
import { type Auth, type Principal, authenticate, authorize, can, forbidden, onExpiry } from '../common/auth.ts';
import type { Activity } from '../common/activity.ts';
import type { Config } from '../common/config.ts';
import type { Limits } from '../common/limits.ts';
import type { Logger } from '../common/logger.ts';
import type { Metrics } from '../common/metrics.ts';
import type { Batcher } from './batcher.ts';
import type { RecordField, RecordHeaderFields } from '../../engine/codec/record-batch-builder.ts';
import { Connection, type Slot } from './connection.ts';
import type { Fanout } from './fanout.ts';
import { PARTITION_ANY, parseProduceFrame } from './frames.ts';
import { type ScannedPub, scanPub } from './pub-scanner.ts';
import { catchUpBufferedBytesMax } from './limits.ts';
import {
  type AuthRequest,
  type MetaRequest,
  type PubRequest,
  type SubRequest,
  type UnsubRequest,
  errorMessage,
  isProtocolError,
  parseControl,
  toJsonRecord,
} from './ws-protocol.ts';

export interface WsContext {
  config: Config;
  limits: Limits;
  log: Log;
  batcher: Batcher;
  fanout: Fanout;
  metrics: Metrics;
  logger: Logger;
  /** null: auth is off and every request is allowed. */
  auth: Auth | null;
  /** What the operator sees: error answers and refusals are counted and logged here. */
  activity: Activity;
}

/** Close code for a connection whose token expired (wire contract §6), or a browser's refused upgrade. */
export const closeCodeTokenExpired = 4001;
export const closeCodeUnauthorized = closeCodeTokenExpired;
/** Close code for a browser's upgrade refused with FORBIDDEN (docs/protocol.md). */
export const closeCodeForbidden = 4003;

export class WsHandlers {
  /** Reused by every scanned `pub` (scanning is synchronous and does not re-enter). */
  private readonly scanned: ScannedPub = { id: undefined, topic: '', partition: undefined, keyStart: -1, keyEnd: -1, valueStart: -1, valueEnd: -1 };
  /** Connections with a `sub` waiting for each topic that does not exist yet. */
  private readonly waitingByTopic = new Map<string, Set<Connection>>();

  constructor(private readonly ctx: WsContext) {}

  /**
   * A text frame, as the bytes uWS handed over (valid only during this call): a plainly
   * written `pub` is taken from the bytes (pub-scanner.ts), anything else is decoded and
   * parsed.
   */
  onTextFrame(conn: Connection, bytes: Uint8Array): void {
    if (scanPub(bytes, this.ctx.limits.recordBytesMax, this.scanned)) return this.pubScanned(conn, bytes, this.scanned);
    this.onText(conn, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  }

  onText(conn: Connection, text: string): void {
    const r = parseControl(text);
    if (!r.ok) {
      const msg = this.failText(conn, r.id, r);
      if (r.op === 'pub') conn.answer(conn.reserve(r.id), msg);
      else conn.sendText(msg);
      return;
    }
    const req = r.req;
    try {
      switch (req.op) {
        case 'pub':
          return this.pub(conn, req);
        case 'sub':
          return this.sub(conn, req);
        case 'unsub':
          return this.unsub(conn, req);
        case 'meta':
          return this.meta(conn, req);
        case 'ping':
          return conn.sendJson({ op: 'pong', id: req.id });
        case 'auth':
          return this.auth(conn, req);
      }
    } catch (err) {
      conn.sendText(this.failText(conn, req.id, this.wireError(err)));
    }
  }

  private wireError(err: unknown): SluiceError {
    const e = asSluiceError(err);
    if (e.code === 'INTERNAL') this.ctx.logger.error({ err }, 'request failed');
    return e;
  }

  /**
   * An error answer to a client request: counted and logged (refused tokens and ACLs as auth
   * refusals, with their reason; src/common/activity.ts), and returned as the text to send.
   */
  private failText(conn: Connection, id: number | undefined, e: { code: ErrorCode; message: string; reason?: string }, extra?: { topic?: string; partition?: number }): string {
    const fields = { conn: conn.id, remote: conn.remote, ...extra };
    if (e.code === 'UNAUTHORIZED' || e.code === 'FORBIDDEN') this.ctx.activity.authRefused('ws', e.code, e.reason ?? e.code, e.message, fields);
    else this.ctx.activity.clientError('ws', e.code, e.message, fields);
    return errorMessage({ id, code: e.code, message: e.message, ...extra });
  }

  /** A new socket: keep its principal and arm the expiry of its token. */
  onOpen(conn: Connection, principal: Principal | null): void {
    conn.principal = principal;
    conn.failText = (id, err) => this.failText(conn, id, err);
    this.armExpiry(conn);
  }

  /**
   * "When a connection's token expires it gets `UNAUTHORIZED` and is closed (code 4001)
   * unless an `auth` op refreshed it."
   */
  private armExpiry(conn: Connection): void {
    conn.expiry?.cancel();
    conn.expiry = onExpiry(conn.principal, () => {
      if (conn.closed) return;
      conn.sendText(this.failText(conn, undefined, { code: 'UNAUTHORIZED', reason: 'TOKEN_EXPIRED', message: 'token expired: reconnect with a fresh token (or refresh it with the auth op before it expires)' }));
      conn.ws.end(closeCodeTokenExpired, 'token expired');
    });
  }

  /**
   * `auth`: verifies the new token and, once it verifies, makes it the connection's token.
   * A token that fails leaves the old one in place (until it expires). Subscriptions the new
   * ACL no longer allows are ended, each with FORBIDDEN (with topic and partition, no id).
   * Requests that arrive while the token verifies are checked against the old one.
   */
  private auth(conn: Connection, req: AuthRequest): void {
    const auth = this.ctx.auth;
    if (auth === null) return conn.sendJson({ op: 'authed', id: req.id });
    const seq = ++conn.authSeq;
    authenticate(auth, req.token).then(
      (principal) => {
        if (conn.closed) return;
        if (seq < conn.authApplied) {
          // A later `auth` op already replaced the token; this older one must not undo it.
          return conn.sendJson({ op: 'authed', id: req.id });
        }
        conn.authApplied = seq;
        conn.principal = principal;
        this.armExpiry(conn);
        const dropped: { topic: string; partition: number }[] = [];
        for (const [k, sub] of conn.subs) {
          if (can(principal, 'sub', sub.topic)) continue;
          sub.close();
          conn.subs.delete(k);
          dropped.push({ topic: sub.topic, partition: sub.partition });
        }
        if (dropped.length > 0) this.ctx.fanout.prune();
        conn.sendJson({ op: 'authed', id: req.id });
        for (const d of dropped) {
          conn.sendText(this.failText(conn, undefined, { code: 'FORBIDDEN', reason: 'ACL_DENIED', message: `the new token does not allow sub on topic ${JSON.stringify(d.topic)}: subscription ended` }, d));
        }
      },
      (err) => {
        if (conn.closed) return;
        const e = this.wireError(err);
        conn.sendText(this.failText(conn, req.id, { code: e.code, reason: e.reason, message: `${e.message} (the connection keeps its current token)` }));
      },
    );
  }

  private pub(conn: Connection, req: PubRequest): void {
    const id = req.id;
    const slot = conn.reserve(id);
    if (!this.pubAllowed(conn, slot, id, req.topic)) return;
    const rec = toJsonRecord(req, this.ctx.limits);
    if (isProtocolError(rec)) return conn.answer(slot, this.failText(conn, id, rec));
    this.pubAdmitted(conn, slot, id, req.topic, req.partition, rec.key, rec.value, rec.headers);
  }

  /**
   * A `pub` read by the scanner: the same checks in the same order as `pub` (the scanner
   * has declined an oversized value, so TOO_LARGE is always the general path's); key and
   * value go to the batcher as views of the frame, copied into the batch at once.
   */
  private pubScanned(conn: Connection, bytes: Uint8Array, s: ScannedPub): void {
    const id = s.id;
    const slot = conn.reserve(id);
    if (!this.pubAllowed(conn, slot, id, s.topic)) return;
    const key = s.keyStart < 0 ? null : bytes.subarray(s.keyStart, s.keyEnd);
    const value = s.valueStart < 0 ? null : bytes.subarray(s.valueStart, s.valueEnd);
    this.pubAdmitted(conn, slot, id, s.topic, s.partition, key, value, null);
  }

  /** ACL first: a publish the token does not allow gets FORBIDDEN whatever else is wrong with it. */
  private pubAllowed(conn: Connection, slot: Slot, id: number | undefined, topic: string): boolean {
    if (can(conn.principal, 'pub', topic)) return true;
    conn.answer(slot, this.failText(conn, id, forbidden('pub', topic)));
    return false;
  }

  /** The rate limit, then the record to the batcher: the last steps of both `pub` paths. */
  private pubAdmitted(conn: Connection, slot: Slot, id: number | undefined, topic: string, partition: number | undefined, key: RecordField, value: RecordField, headers: RecordHeaderFields | null): void {
    if (!conn.takeTokens(1)) {
      return conn.answer(slot, this.failText(conn, id, { code: 'RATE_LIMITED', message: `over ${this.ctx.limits.publishRecordsPerSecond} records/s` }));
    }
    try {
      this.ctx.batcher.publish(topic, partition, key, value, headers, slot);
    } catch (err) {
      conn.answer(slot, this.failText(conn, id, this.wireError(err)));
    }
  }

  /** A binary frame: PRODUCE is the only one a client sends. */
  onBinary(conn: Connection, data: ArrayBuffer): void {
    const p = parseProduceFrame(new Uint8Array(data));
    const slot = conn.reserve(p.ok ? p.frame.id : p.id);
    if (!p.ok) return conn.answer(slot, this.failText(conn, p.id, { code: 'BAD_REQUEST', reason: 'BAD_FRAME', message: p.message }));
    const { id, topic, partition } = p.frame;
    const fail = (err: unknown): void => {
      conn.answer(slot, this.failText(conn, id, this.wireError(err)));
    };
    try {
      if (!isValidTopicName(topic)) throw new SluiceError('BAD_REQUEST', `invalid topic name ${JSON.stringify(topic)}`, 'BAD_TOPIC_NAME');
      authorize(conn.principal, 'pub', topic);
      const view = p.frame.batch;
      // "The batch is validated whole before it is stored — CRC, codec 0 or 3, the records inside."
      // The same check every front runs: the record limits and the timestamps included.
      const { header: h } = validateProducedBatch(view, this.ctx.limits);
      if (!conn.takeTokens(h.recordCount)) throw new SluiceError('RATE_LIMITED', `over ${this.ctx.limits.publishRecordsPerSecond} records/s`);
      // uWS's ArrayBuffer is valid only during this callback: the engine keeps a copy.
      const batch = new Uint8Array(view);
      slot.count = h.recordCount;
      this.ctx.batcher.appendBatch(topic, partition === PARTITION_ANY ? undefined : partition, batch, h.recordCount, slot);
    } catch (err) {
      fail(err);
    }
  }

  private meta(conn: Connection, req: MetaRequest): void {
    // Before the topic is looked up, so that UNKNOWN_TOPIC does not tell which topics exist.
    authorize(conn.principal, 'sub', req.topic);
    const info = this.ctx.log.describe(req.topic);
    conn.sendJson({
      op: 'meta',
      id: req.id,
      topic: req.topic,
      partitions: info.partitions.map((p) => ({ partition: p.partition, epoch: p.epoch, start: p.start, hw: p.hw })),
    });
  }

  private sub(conn: Connection, req: SubRequest): void {
    const { log, fanout, limits } = this.ctx;
    authorize(conn.principal, 'sub', req.topic);
    if (!log.hasTopic(req.topic)) return this.waitForTopic(conn, req);
    const count = log.partitionCount(req.topic);
    if (req.partition !== undefined && req.partition >= count) {
      throw new SluiceError('BAD_REQUEST', `partition ${req.partition} does not exist in ${req.topic} (0..${count - 1})`, 'BAD_PARTITION');
    }
    const parts = req.partition === undefined ? Array.from({ length: count }, (_, i) => i) : [req.partition];
    for (const p of parts) {
      if (conn.subs.has(Connection.key(req.topic, p))) {
        throw new SluiceError('BAD_REQUEST', `already subscribed to ${req.topic} partition ${p}: unsub first`, 'ALREADY_SUBSCRIBED');
      }
    }
    this.checkSubscriptionBudget(conn, parts.length);
    // Positions first, so that an offset out of range refuses the whole request.
    const from = req.from;
    const starts = parts.map((p) => {
      const plog = log.partition(req.topic, p);
      let next: number;
      if (from === 'latest') next = plog.hw;
      else if (from === 'earliest') next = plog.startOffset;
      else if ('offset' in from) {
        if (from.offset > plog.hw) throw new SluiceError('OFFSET_OUT_OF_RANGE', `offset ${from.offset} is above the high watermark ${plog.hw} of partition ${p}`);
        next = from.offset;
      } else next = plog.offsetForTime(from.time);
      return { plog, next };
    });
    const subs = starts.map(({ plog, next }) => {
      const sub = fanout.get(plog).subscribe(conn, next, (ended) => conn.subs.delete(Connection.key(ended.topic, ended.partition)));
      conn.subs.set(Connection.key(req.topic, plog.partition), sub);
      return sub;
    });
    conn.sendJson({
      op: 'subbed',
      id: req.id,
      topic: req.topic,
      partitions: subs.map((s) => ({ partition: s.partition, epoch: s.log.epoch, next: s.next, hw: s.log.hw })),
    });
    for (const s of subs) s.pump();
  }

  /** "--max-subscriptions": followed topic-partitions plus subs waiting for their topic (one each). */
  private checkSubscriptionBudget(conn: Connection, adding: number): void {
    const max = this.ctx.limits.subscriptionsMax;
    const total = conn.subs.size + conn.waiting.size + adding;
    if (total > max) {
      throw new SluiceError(
        'BAD_REQUEST',
        `this would follow ${total} topic-partitions on one connection, more than --max-subscriptions ${max}: unsub first`,
        'TOO_MANY_SUBSCRIPTIONS',
      );
    }
  }

  /**
   * A `sub` to a topic that does not exist yet "is not refused: it waits for the topic".
   * Chosen (docs/protocol.md): it waits, and never creates the topic, even under
   * --auto-create: reading is not writing (a sub-only token must not make topics, and a typo
   * in a reader must not leave a topic behind), as Kafka consumers do not create topics. The
   * answer is deferred: `subbed` (with this request's id) comes once the topic is created,
   * from its earliest record, offset 0. A waiting sub counts as one topic-partition against
   * --max-subscriptions; `unsub` ends the wait (the sub is then answered UNKNOWN_TOPIC).
   */
  private waitForTopic(conn: Connection, req: SubRequest): void {
    const key = Connection.key(req.topic, req.partition ?? -1);
    if (conn.waiting.has(key)) {
      throw new SluiceError('BAD_REQUEST', `already waiting for ${req.topic}${req.partition === undefined ? '' : ` partition ${req.partition}`} to be created: unsub first`, 'ALREADY_SUBSCRIBED');
    }
    this.checkSubscriptionBudget(conn, 1);
    conn.waiting.set(key, req);
    let conns = this.waitingByTopic.get(req.topic);
    if (!conns) this.waitingByTopic.set(req.topic, (conns = new Set()));
    conns.add(conn);
    this.ctx.metrics.subscriptionsWaiting.inc();
  }

  /** A topic was created: the subs waiting for it subscribe now, from its start, and get their `subbed`. */
  topicCreated(topic: string): void {
    const conns = this.waitingByTopic.get(topic);
    if (!conns) return;
    this.waitingByTopic.delete(topic);
    for (const conn of conns) {
      for (const [key, req] of [...conn.waiting]) {
        if (req.topic !== topic) continue;
        conn.waiting.delete(key);
        this.ctx.metrics.subscriptionsWaiting.dec();
        if (conn.closed) continue;
        try {
          // Checked again: an `auth` op may have replaced the token while it waited.
          this.sub(conn, { ...req, from: 'earliest' });
        } catch (err) {
          conn.sendText(this.failText(conn, req.id, this.wireError(err)));
        }
      }
    }
  }

  /** Ends the waits of `conn` on `topic` (all, or the one for `partition`); each waiting sub is answered UNKNOWN_TOPIC. */
  private endWaits(conn: Connection, topic: string, partition: number | undefined): void {
    for (const [key, req] of [...conn.waiting]) {
      if (req.topic !== topic || (partition !== undefined && req.partition !== partition)) continue;
      conn.waiting.delete(key);
      this.ctx.metrics.subscriptionsWaiting.dec();
      conn.sendText(errorMessage({ id: req.id, code: 'UNKNOWN_TOPIC', message: `unsubscribed before topic ${JSON.stringify(topic)} was created` }));
    }
    if (![...conn.waiting.values()].some((r) => r.topic === topic)) this.waitingByTopic.get(topic)?.delete(conn);
  }

  private unsub(conn: Connection, req: UnsubRequest): void {
    for (const [k, sub] of conn.subs) {
      if (sub.topic !== req.topic || (req.partition !== undefined && sub.partition !== req.partition)) continue;
      sub.close();
      conn.subs.delete(k);
    }
    this.ctx.fanout.prune();
    this.endWaits(conn, req.topic, req.partition);
    conn.sendJson({ op: 'unsubbed', id: req.id });
  }

  /** uWS `drain`: the socket has room again; feed subscriptions that wait on the disk path. */
  onDrain(conn: Connection): void {
    for (const sub of conn.subs.values()) {
      if (conn.bufferedAmount >= catchUpBufferedBytesMax) break;
      sub.pump();
    }
  }

  onClose(conn: Connection): void {
    conn.closed = true;
    conn.expiry?.cancel();
    for (const req of conn.waiting.values()) {
      this.waitingByTopic.get(req.topic)?.delete(conn);
      this.ctx.metrics.subscriptionsWaiting.dec();
    }
    conn.waiting.clear();
    for (const sub of conn.subs.values()) sub.close();
    conn.subs.clear();
    this.ctx.fanout.prune();
  }

  /** A topic was deleted: "its subscribers get `UNKNOWN_TOPIC`". */
  topicDeleted(topic: string): void {
    this.ctx.batcher.dropTopic(topic);
    for (const sub of this.ctx.fanout.dropTopic(topic)) sub.end('UNKNOWN_TOPIC', `topic ${JSON.stringify(topic)} was deleted`);
  }
}

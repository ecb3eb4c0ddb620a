/**
 * Per-socket state: the subscriptions, the publish answers waiting their turn, the rate
 * bucket, and the only code that writes to the uWS socket.
 *
 * "Answers to publishes (`pub` and PRODUCE: an ack or an error each) come in the order the
 * publishes arrived on the connection; answers to other requests may overtake them."
 * Each publish takes a slot in `pending` when it arrives; a slot is answered when it and
 * every slot before it are settled, so an append that finishes early waits for older ones.
 *
 * A uWS WebSocket must not be touched after its `close` event: every write checks `closed`.
 *
 * "Every request gets an answer, or the connection is closed": an answer is never dropped
 * in silence. One that uWS reports dropped (status 2), or one that would go behind more than
 * answerBacklogBytesMax of unsent bytes (the client sends and does not read), closes the
 * connection with closeCodeAnswersUnread instead; the client learns why from the close frame.
 */
import type { WebSocket } from 'uWebSockets.js';
import type { ErrorCode, SluiceError } from '../../engine/index.ts';
import type { ExpiryTimer, Principal } from '../common/auth.ts';
import type { AppendWaiter } from './batcher.ts';
import { answerBacklogBytesMax, closeCodeAnswersUnread, uwsBackpressureBytesMax } from './limits.ts';
import { type SubRequest, errorMessage } from './ws-protocol.ts';
import type { SubscriberSocket, Subscription } from './fanout.ts';

export interface SocketData {
  conn: Connection | null;
  /** Who the upgrade's token says the peer is (null: auth off); handed to the Connection in `open`. */
  principal: Principal | null;
  /** The peer's address, read during the upgrade. */
  remote: string;
  /** A browser's upgrade that was refused: told over the socket in `open`, then closed. */
  refused?: { code: 'UNAUTHORIZED' | 'FORBIDDEN'; message: string };
}

/** The ack of a publish: `count` only for PRODUCE (wire contract §3). */
function ackText(id: number | undefined, partition: number, offset: number, count?: number): string {
  const idPart = id === undefined ? '' : `"id":${id},`;
  const countPart = count === undefined ? '' : `,"count":${count}`;
  return `{"op":"ack",${idPart}"partition":${partition},"offset":${offset}${countPart}}`;
}

/**
 * One publish's place in its connection's answer order, and the waiter the batcher settles:
 * one object per publish, no closure. An ack keeps its numbers until it goes out, so its
 * text is made just before the send and never outlives the turn.
 */
export class Slot implements AppendWaiter {
  /** An error's text, once settled with one. */
  text: string | null = null;
  settled = false;
  partition = -1;
  offset = -1;
  /** Records of a PRODUCE batch (its ack says how many); undefined for `pub`. */
  count: number | undefined = undefined;

  constructor(
    private readonly conn: Connection,
    readonly id: number | undefined,
  ) {}

  appended(err: SluiceError | null, partition: number, offset: number): void {
    if (err) return this.conn.answer(this, this.conn.failText(this.id, err));
    this.partition = partition;
    this.offset = offset;
    this.conn.settle(this);
  }

  get answerText(): string {
    return this.text ?? ackText(this.id, this.partition, this.offset, this.count);
  }
}

export class Connection implements SubscriberSocket {
  closed = false;
  /** Who this connection acts as (null: auth off). Replaced by a successful `auth` op. */
  principal: Principal | null = null;
  /** Fires when the principal's token expires; re-armed on each refresh. */
  expiry: ExpiryTimer | null = null;
  /** Counts `auth` ops; `authApplied` is the latest one whose token replaced the connection's. */
  authSeq = 0;
  /** Verifications can finish out of order: an older token never replaces a newer one. */
  authApplied = 0;
  readonly subs = new Map<string, Subscription>();
  /** `sub` requests waiting for their topic to be created, by topic and partition (-1: all). */
  readonly waiting = new Map<string, SubRequest>();
  private readonly pending: Slot[] = [];
  private head = 0;
  private flushScheduled = false;
  private tokens: number;
  private refilledAt = performance.now();

  /** When the socket opened (ms since the epoch), for the line logged when it closes. */
  readonly openedAt = Date.now();
  /**
   * How an error answer to a request of this connection is worded (and counted: the
   * handlers set it in `open` to theirs); used for the errors of appends.
   */
  failText: (id: number | undefined, err: SluiceError) => string = (id, err) => errorMessage({ id, code: err.code, message: err.message });

  constructor(
    readonly ws: WebSocket<SocketData>,
    /** Records per second; 0 = unlimited. */
    private readonly publishRate: number,
    /** An id for the operator's log lines about this connection (src/common/activity.ts). */
    readonly id: number = 0,
    /** The peer's address, for the same lines. */
    readonly remote: string = '',
    /** Told (with the bytes unsent) when the connection is closed for answers left unread. */
    private readonly onUnread?: (bufferedBytes: number) => void,
  ) {
    this.tokens = publishRate;
  }

  static key(topic: string, partition: number): string {
    return `${topic}\0${partition}`;
  }

  /** Sends a text message unless the socket is gone; closes the connection rather than lose it. */
  sendText(text: string): void {
    if (this.closed) return;
    if (this.ws.getBufferedAmount() > answerBacklogBytesMax) return this.closeUnread();
    if (this.ws.send(text, false, false) === 2) this.closeUnread();
  }

  /** Ends a connection whose answers its client does not read (see the file comment). */
  private closeUnread(): void {
    if (this.closed) return;
    const buffered = this.ws.getBufferedAmount();
    this.closed = true;
    this.onUnread?.(buffered);
    this.ws.end(closeCodeAnswersUnread, `answers not read: ${buffered} bytes unsent`);
  }

  sendJson(obj: object): void {
    this.sendText(JSON.stringify(obj));
  }

  sendError(code: ErrorCode, message: string, id?: number, extra?: { topic?: string; partition?: number }): void {
    this.sendText(errorMessage({ id, code, message, ...extra }));
  }

  /** Sends one binary frame; returns uWS's status (1 sent, 0 queued, 2 dropped), 2 once closed. */
  sendBinary(frame: Uint8Array): number {
    if (this.closed) return 2;
    return this.ws.send(frame, true, false);
  }

  /**
   * Sends one DATA message as two WebSocket fragments — the frame header, then the batches
   * as they are (a view of the segment's mapping) — so that JavaScript copies nothing; uWS
   * copies the bytes into its buffer once, and the kernel into the socket. Returns uWS's
   * status for the message: 1 sent, 0 queued (still delivered), 2 dropped (also once closed).
   */
  sendDataFragments(header: Uint8Array, batches: Uint8Array): number {
    if (this.closed) return 2;
    const ws = this.ws;
    // uWS drops a send once the socket holds more than its cap, and its fragment calls do
    // not say so: check first, so that a message is never cut after its first fragment.
    if (ws.getBufferedAmount() + header.length >= uwsBackpressureBytesMax) return 2;
    let sent = false;
    ws.cork(() => {
      ws.sendFirstFragment(header, true, false);
      sent = ws.sendLastFragment(batches, false);
    });
    return sent ? 1 : 0;
  }

  /** Runs `fn` with the socket corked (its sends leave in one write); not at all once closed. */
  cork(fn: () => void): void {
    if (!this.closed) this.ws.cork(fn);
  }

  get bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  /** Takes the next place in the publish-answer order; settle it with `answer` or as its waiter. */
  reserve(id: number | undefined): Slot {
    const slot = new Slot(this, id);
    this.pending.push(slot);
    return slot;
  }

  /** Settles a slot with this text (an error). */
  answer(slot: Slot, text: string): void {
    slot.text = text;
    this.settle(slot);
  }

  /**
   * Marks a slot settled. Settled answers at the head of the queue go out in a microtask,
   * all in one cork: the acks of a whole batch (settled in one loop) then cost one write(2)
   * per connection instead of one each.
   */
  settle(slot: Slot): void {
    slot.settled = true;
    if (this.flushScheduled || this.pending[this.head] !== slot) return;
    this.flushScheduled = true;
    queueMicrotask(this.flushAnswers);
  }

  private readonly sendSettled = (): void => {
    const pending = this.pending;
    // The backlog is checked once per flush: past it go at most the answers of one turn.
    if (this.ws.getBufferedAmount() > answerBacklogBytesMax) return this.closeUnread();
    while (this.head < pending.length && !this.closed) {
      const s = pending[this.head];
      if (!s.settled) break;
      if (this.ws.send(s.answerText, false, false) === 2) return this.closeUnread();
      this.head++;
    }
  };

  private readonly flushAnswers = (): void => {
    this.flushScheduled = false;
    if (this.closed) return;
    this.ws.cork(this.sendSettled);
    if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
  };

  /** Token bucket of `publishRate` records/s with a one-second burst; true when `n` fit. */
  takeTokens(n: number): boolean {
    if (this.publishRate === 0) return true;
    const now = performance.now();
    this.tokens = Math.min(this.publishRate, this.tokens + ((now - this.refilledAt) / 1000) * this.publishRate);
    this.refilledAt = now;
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}

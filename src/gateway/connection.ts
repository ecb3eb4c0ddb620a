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
 */
import type { WebSocket } from 'uWebSockets.js';
import type { ErrorCode } from '../../engine/index.ts';
import type { ExpiryTimer, Principal } from '../common/auth.ts';
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

interface Slot {
  text: string | null;
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

  constructor(
    readonly ws: WebSocket<SocketData>,
    /** Records per second; 0 = unlimited. */
    private readonly publishRate: number,
    /** An id for the operator's log lines about this connection (src/common/activity.ts). */
    readonly id: number = 0,
    /** The peer's address, for the same lines. */
    readonly remote: string = '',
  ) {
    this.tokens = publishRate;
  }

  static key(topic: string, partition: number): string {
    return `${topic}\0${partition}`;
  }

  /** Sends a text message unless the socket is gone. Control answers are small and never held back. */
  sendText(text: string): void {
    if (this.closed) return;
    this.ws.send(text, false, false);
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

  /** Runs `fn` with the socket corked (its sends leave in one write); not at all once closed. */
  cork(fn: () => void): void {
    if (!this.closed) this.ws.cork(fn);
  }

  get bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  /** Takes the next place in the publish-answer order; settle it with `answer`. */
  reserve(): Slot {
    const slot: Slot = { text: null };
    this.pending.push(slot);
    return slot;
  }

  /**
   * Settles a slot. Settled answers at the head of the queue go out in a microtask, all in
   * one cork: the acks of a whole batch (its callbacks run in one loop) then cost one
   * write(2) per connection instead of one each.
   */
  answer(slot: Slot, text: string): void {
    slot.text = text;
    if (this.flushScheduled || this.pending[this.head] !== slot) return;
    this.flushScheduled = true;
    queueMicrotask(this.flushAnswers);
  }

  private readonly flushAnswers = (): void => {
    this.flushScheduled = false;
    if (this.closed) return;
    this.ws.cork(() => {
      while (this.head < this.pending.length) {
        const s = this.pending[this.head];
        if (s.text === null) break;
        this.ws.send(s.text, false, false);
        this.head++;
      }
    });
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

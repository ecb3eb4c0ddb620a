/**
 * Publishes — JSON `pub` and binary PRODUCE — from the moment they are asked until their
 * ack or error: a bounded queue, kept in the order the publishes were asked, that survives
 * a dropped connection.
 *
 * "Answers to publishes (`pub` and PRODUCE: an ack or an error each) come in the order the
 * publishes arrived on the connection": after a reconnection the queue sends again, in
 * their original order, every publish that has no answer yet (with `retry`), so records of
 * one partition keep their order. That is at-least-once: a publish whose ack was lost with
 * the connection may be stored twice. Without `retry`, those publishes fail with reason
 * DISCONNECTED. Either way none is dropped silently.
 */
import type { AckAnswer, PubRequest, ServerMessage } from '../../engine/codec/wire-messages.ts';
import { CLIENT_REASONS, type SluiceError, clientError, wireError } from './codes.ts';
import { setProduceId } from './frames.ts';

/** A JSON publish as the SDK asks it (the id is given at each send). */
export type PubAsk = Omit<PubRequest, 'id'>;

export interface PublishQueueOptions {
  /** Send unanswered publishes again after a reconnection (else fail them with DISCONNECTED). */
  retry: boolean;
  /** Unanswered publishes at most. */
  pendingMax: number;
  /** Bytes of unanswered publishes at most (frames as sent, JSON approximated). */
  pendingBytesMax: number;
  /** The server's --max-frame-bytes: it closes the connection (1009) over a larger frame. */
  frameBytesMax: number;
}

export interface PublishQueueHooks {
  /** The next request id (uint32), from the counter the control requests share. */
  allocId(): number;
  /** Sends a frame on the open connection. */
  send(data: string | Uint8Array): void;
}

interface Pending {
  /** The JSON message, or the PRODUCE frame (its id is rewritten at each send). */
  msg: PubAsk | Uint8Array;
  bytes: number;
  id: number;
  resolve(ack: AckAnswer): void;
  reject(err: SluiceError): void;
}

const utf8 = new TextEncoder();

export class PublishQueue {
  /** Unanswered publishes in the order they were asked (a Set keeps insertion order). */
  private readonly pending = new Set<Pending>();
  /** Those sent on the current connection, by the id they were sent with. */
  private readonly byId = new Map<number, Pending>();
  private pendingBytes = 0;
  private open = false;
  private closedWith: SluiceError | null = null;

  constructor(
    private readonly opts: PublishQueueOptions,
    private readonly hooks: PublishQueueHooks,
  ) {}

  get frameBytesMax(): number {
    return this.opts.frameBytesMax;
  }

  /** Queues a publish (sent at once when connected); `bytes` is its size, exact for frames. */
  enqueue(msg: PubAsk | Uint8Array, bytes: number): Promise<AckAnswer> {
    return new Promise((resolve, reject) => {
      if (this.closedWith) return reject(this.closedWith);
      const max = this.opts.frameBytesMax;
      if (bytes > max) {
        const exact = msg instanceof Uint8Array ? msg.length : utf8.encode(JSON.stringify(msg)).length + 16;
        if (exact > max) return reject(clientError(CLIENT_REASONS.FRAME_TOO_LARGE, `a ${exact}-byte frame exceeds maxFrameBytes ${max}`));
      }
      if (this.pending.size >= this.opts.pendingMax || this.pendingBytes + bytes > this.opts.pendingBytesMax) {
        return reject(clientError(CLIENT_REASONS.QUEUE_FULL, `${this.pending.size} publishes (${this.pendingBytes} bytes) await their answer; wait for some`));
      }
      const p: Pending = {
        msg,
        bytes,
        id: -1,
        resolve: (a) => {
          this.forget(p);
          resolve(a);
        },
        reject: (e) => {
          this.forget(p);
          reject(e);
        },
      };
      this.pending.add(p);
      this.pendingBytes += bytes;
      if (this.open) this.send(p);
    });
  }

  /** A connection opened: every unanswered publish goes out, in its original order. */
  onOpen(): void {
    this.open = true;
    for (const p of this.pending) this.send(p);
  }

  /** The connection is gone: its answers will never come. */
  onLost(err: SluiceError): void {
    this.open = false;
    this.byId.clear();
    if (!this.opts.retry) this.rejectAll(err);
  }

  /** An ack or error carrying an id: settles its publish; false when no publish has that id. */
  onAnswer(m: ServerMessage & { id: number }): boolean {
    const p = this.byId.get(m.id);
    if (!p) return false;
    if (m.op === 'ack') p.resolve(m);
    else if (m.op === 'error') p.reject(wireError(m.code, m.message));
    else p.reject(clientError(CLIENT_REASONS.PROTOCOL, `${m.op} answered a publish`));
    return true;
  }

  /** Final: what is left fails with `err`, and so does every later publish. */
  close(err: SluiceError): void {
    this.closedWith = err;
    this.open = false;
    this.rejectAll(err);
  }

  private rejectAll(err: SluiceError): void {
    const all = [...this.pending];
    this.pending.clear();
    this.byId.clear();
    this.pendingBytes = 0;
    for (const p of all) p.reject(err);
  }

  private forget(p: Pending): void {
    if (this.pending.delete(p)) this.pendingBytes -= p.bytes;
    if (p.id >= 0 && this.byId.get(p.id) === p) this.byId.delete(p.id);
  }

  private send(p: Pending): void {
    const id = this.hooks.allocId();
    p.id = id;
    this.byId.set(id, p);
    if (p.msg instanceof Uint8Array) {
      setProduceId(p.msg, id);
      this.hooks.send(p.msg);
    } else {
      this.hooks.send(JSON.stringify({ ...p.msg, id }));
    }
  }
}

/**
 * Control requests — meta, sub, unsub, auth, ping — from the moment they are asked until
 * their answer: an id each, one timeout each, and deferral (a request asked while no
 * connection is open waits, and goes out once one opens).
 *
 * "Every request gets exactly one answer, or the connection is closed with an error code":
 * so a request in flight when the connection drops gets no answer ever, and is failed here
 * with reason DISCONNECTED (the caller decides whether to ask again). Ids come from the
 * client's one counter, shared with the publish queue, so that an answer's id names exactly
 * one waiter.
 */
import type { AnswerOf, AuthRequest, MetaRequest, PingRequest, ServerMessage, SubRequest, UnsubRequest } from '../../engine/codec/wire-messages.ts';
import { CLIENT_REASONS, type SluiceError, clientError, wireError } from './codes.ts';

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** A control request as the SDK asks it; the id is given when it is sent. */
export type ControlAsk = WithoutId<MetaRequest | SubRequest | UnsubRequest | PingRequest | AuthRequest>;
export type ControlOp = ControlAsk['op'];

export interface AnswerHandlers<O extends ControlOp> {
  onAnswer(answer: AnswerOf[O]): void;
  onError(err: SluiceError): void;
}

export interface RequestsHooks {
  /** The next request id (uint32). */
  allocId(): number;
  /** Sends a text frame on the open connection. */
  send(text: string): void;
  /** How long a request waits for its answer, in ms, counted from when it is asked. */
  timeoutMs: number;
}

/** The op of the answer each request gets when it succeeds. */
const answerOp: { [O in ControlOp]: AnswerOf[O]['op'] } = { meta: 'meta', sub: 'subbed', unsub: 'unsubbed', ping: 'pong', auth: 'authed' };

interface Entry {
  msg: ControlAsk;
  settle: AnswerHandlers<ControlOp>;
  timer: ReturnType<typeof setTimeout> | null;
}

export class Requests {
  private readonly inFlight = new Map<number, Entry>();
  private deferred: Entry[] = [];
  private open = false;
  private closedWith: SluiceError | null = null;

  constructor(private readonly hooks: RequestsHooks) {}

  /** A request whose answer resolves the promise; an error answer, a timeout or a drop rejects it. */
  ask<O extends ControlOp>(msg: Extract<ControlAsk, { op: O }>): Promise<AnswerOf[O]> {
    return new Promise((resolve, reject) => this.askWith(msg, { onAnswer: resolve, onError: reject }));
  }

  /** Like ask(), with callbacks; exactly one of them runs, once. */
  askWith<O extends ControlOp>(msg: Extract<ControlAsk, { op: O }>, handlers: AnswerHandlers<O>): void {
    if (this.closedWith) {
      handlers.onError(this.closedWith);
      return;
    }
    let settled = false;
    const entry: Entry = {
      msg,
      timer: null,
      settle: {
        onAnswer: (a) => {
          if (settled) return;
          settled = true;
          if (entry.timer) clearTimeout(entry.timer);
          handlers.onAnswer(a as AnswerOf[O]);
        },
        onError: (e) => {
          if (settled) return;
          settled = true;
          if (entry.timer) clearTimeout(entry.timer);
          handlers.onError(e);
        },
      },
    };
    entry.timer = setTimeout(() => {
      entry.timer = null;
      for (const [id, e] of this.inFlight) if (e === entry) this.inFlight.delete(id);
      this.deferred = this.deferred.filter((e) => e !== entry);
      entry.settle.onError(clientError(CLIENT_REASONS.TIMEOUT, `no answer to ${msg.op} within ${this.hooks.timeoutMs} ms`));
    }, this.hooks.timeoutMs);
    if (this.open) this.send(entry);
    else this.deferred.push(entry);
  }

  /** A connection opened: what waited goes out, in the order it was asked. */
  onOpen(): void {
    this.open = true;
    const waiting = this.deferred;
    this.deferred = [];
    for (const e of waiting) this.send(e);
  }

  /** The connection is gone: what was in flight gets no answer now. What was deferred keeps waiting. */
  onLost(err: SluiceError): void {
    this.open = false;
    const lost = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const e of lost) e.settle.onError(err);
  }

  /** An answer carrying an id: settles its request; false when no request of ours has that id. */
  onAnswer(m: ServerMessage & { id: number }): boolean {
    const e = this.inFlight.get(m.id);
    if (!e) return false;
    this.inFlight.delete(m.id);
    if (m.op === 'error') e.settle.onError(wireError(m.code, m.message));
    else if (m.op !== answerOp[e.msg.op]) e.settle.onError(clientError(CLIENT_REASONS.PROTOCOL, `${m.op} answered ${e.msg.op}`));
    else e.settle.onAnswer(m as AnswerOf[ControlOp]);
    return true;
  }

  /** Final: everything waiting fails with `err`, and so does every later request. */
  close(err: SluiceError): void {
    this.closedWith = err;
    this.open = false;
    const all = [...this.inFlight.values(), ...this.deferred];
    this.inFlight.clear();
    this.deferred = [];
    for (const e of all) e.settle.onError(err);
  }

  private send(e: Entry): void {
    // A `sub` to a topic that does not exist yet is answered only once the topic is created
    // (wire contract §3): once sent, it waits without a timeout. The connection's pings still
    // find a dead server, and a lost connection asks again on the next one.
    if (e.msg.op === 'sub' && e.timer) {
      clearTimeout(e.timer);
      e.timer = null;
    }
    const id = this.hooks.allocId();
    this.inFlight.set(id, e);
    this.hooks.send(JSON.stringify({ ...e.msg, id }));
  }
}

/**
 * Subscriptions across connections: the first `sub`, the resume after every reconnection
 * (to the same server or to another node of a cluster, which shares epochs and offsets),
 * gaps, and epoch changes. It owns the set of subscriptions and routes DATA frames to them.
 *
 * Per partition the resume point is `{epoch, offset}`. After a reconnection each partition
 * asks for `{offset: next}` and compares the epoch of the answer with the one it knew:
 * - same epoch, `next` as asked: resumed exactly (`subscribed` with `resumed: true`);
 * - same epoch, a higher `next`: retention deleted what was not read yet — a `gap` event;
 * - another epoch: the topic was deleted and created again, a different history in which
 *   our offset means nothing: restart from its earliest record (`reason: 'epoch-changed'`);
 * - OFFSET_OUT_OF_RANGE (the partition now ends below `next`): subscribe from `latest` to
 *   learn the epoch. Another epoch → as above. The same epoch → this server is behind us
 *   (a cluster node whose copy lags, or a single server that lost unsynced records): the
 *   subscription holds its position and delivers from `next` once the partition gets
 *   there, so that no offset is ever delivered twice (`reason: 'offset-out-of-range'`).
 * A resume point given by the app (`from: {epoch, offset}`) goes through the same steps,
 * so a checkpoint from before a delete and re-create restarts from the earliest record
 * instead of failing with OFFSET_OUT_OF_RANGE.
 */
import type { ErrorAnswer, GapMessage, SubRequest, SubbedAnswer, WireFrom } from '../../engine/codec/wire-messages.ts';
import { CLIENT_REASONS, SluiceError, SubscriptionState, clientError } from './codes.ts';
import { type Message, decodeData, parseDataFrame } from './frames.ts';
import type { AnswerHandlers, ControlAsk } from './requests.ts';
import { type OnRecords, type PartState, Subscription } from './subscription.ts';
import type { From, ResumeReason, SubscribeOptions } from './types.ts';

export interface RecoveryHooks {
  /** Sends a control request now, or once connected (requests.ts). */
  ask<O extends 'sub' | 'unsub'>(msg: Extract<ControlAsk, { op: O }>, handlers: AnswerHandlers<O>): void;
  isOpen(): boolean;
  /** The id of the current connection: a request that timed out on it drops it (and only it). */
  generation(): number;
  dropConnection(generation: number, reason: string): void;
  /** A failure nobody asked for: a throwing callback, a subscription ended with no listener. */
  reportError(err: unknown): void;
}

/**
 * initial: the first `sub`; resume: `{offset: next}` after a reconnection; restart: from the
 * earliest record of a new epoch; out-of-range: from `latest`, after OFFSET_OUT_OF_RANGE.
 */
type SubMode = 'initial' | 'resume' | 'restart' | 'out-of-range';

type SubAsk = Omit<SubRequest, 'id'>;

function wireFrom(from: From): WireFrom {
  if (typeof from === 'string') return from;
  if ('time' in from) return { time: from.time };
  return { offset: from.offset };
}

const ignore = { onAnswer: () => {}, onError: () => {} };

export class Recovery {
  private readonly subs = new Set<Subscription>();

  constructor(private readonly hooks: RecoveryHooks) {}

  /** A new subscription; resolves on the server's first `subbed` for it. */
  add(topic: string, options: SubscribeOptions, onRecords: OnRecords): Promise<Subscription> {
    const from = options.from ?? 'latest';
    if (typeof from === 'object' && 'epoch' in from && options.partition === undefined) {
      // Epochs are per partition: a resume point names one.
      return Promise.reject(new SluiceError('BAD_REQUEST', 'a resume point {epoch, offset} needs the partition it belongs to (options.partition)', 'BAD_OFFSET'));
    }
    const sub = new Subscription(topic, options.partition, from, onRecords, (s) => this.remove(s), (err) => this.hooks.reportError(err));
    // Listeners given here see the events that come before the promise resolves.
    if (options.onSubscribed) sub.on('subscribed', options.onSubscribed);
    if (options.onGap) sub.on('gap', options.onGap);
    if (options.onState) sub.on('state', options.onState);
    this.subs.add(sub);
    const done = new Promise<Subscription>((resolve, reject) => {
      sub.settle = { resolve, reject };
    });
    if (this.hooks.isOpen()) this.subscribe(sub);
    return done;
  }

  /** A connection opened: every subscription asks for what it has not delivered yet. */
  onOpen(): void {
    for (const s of this.subs) this.subscribe(s);
  }

  /** The connection is gone: every subscription waits for the next one. */
  onLost(): void {
    for (const s of this.subs) s.setState(SubscriptionState.Subscribing);
  }

  /** Final: every subscription ends (unsubscribed), and one still waiting for its first answer fails with `err`. */
  close(err: SluiceError): void {
    for (const s of this.subs) {
      s.setState(SubscriptionState.Unsubscribed);
      s.settle?.reject(err);
      s.settle = null;
    }
    this.subs.clear();
  }

  /**
   * A DATA frame. Throws (a PROTOCOL or CRC error) on a frame that does not parse or breaks
   * the offset order: the client then drops the connection and the resume reads it again.
   */
  onData(bytes: Uint8Array): void {
    const df = parseDataFrame(bytes);
    const sub = this.find(df.topic, df.partition);
    if (!sub) return; // unsubscribed meanwhile
    const part = sub.parts.get(df.partition);
    if (!part || part.waiting) return;
    // "Only the first batch sent for a partition of a subscription may hold records below
    // the offset it started from (a batch is never split); the client skips those." A
    // subscription that holds its position ahead of the server skips more than one batch.
    const records: Message[] = decodeData(df, part.next);
    if (records.length === 0) return;
    if (records[0].offset !== part.next) {
      if (records[0].offset > part.next) this.emitGap(sub, part, records[0].offset);
      else throw clientError(CLIENT_REASONS.PROTOCOL, `records out of order on ${df.topic}/${df.partition}`);
    }
    for (let i = 1; i < records.length; i++) {
      if (records[i].offset !== records[i - 1].offset + 1) throw clientError(CLIENT_REASONS.PROTOCOL, `offsets not dense on ${df.topic}/${df.partition}`);
    }
    part.next = records[records.length - 1].offset + 1;
    if (part.next > part.hw) part.hw = part.next;
    try {
      sub.onRecords(records, sub);
    } catch (err) {
      this.hooks.reportError(err);
    }
  }

  /** `{"op":"gap"}`: retention deleted what a subscription had not read yet. */
  onGap(m: GapMessage): void {
    const sub = this.find(m.topic, m.partition);
    const part = sub?.parts.get(m.partition);
    if (sub && part && m.to > part.next) this.emitGap(sub, part, m.to);
    else if (sub && !part) sub.events.emit('gap', { topic: sub.topic, partition: m.partition, from: m.from, to: m.to });
  }

  /**
   * An error without id about a topic (UNKNOWN_TOPIC after a delete, FORBIDDEN after an
   * `auth` op that narrowed the ACL): it ends the subscriptions it names. False when it
   * names none of ours.
   */
  onSubscriptionError(m: ErrorAnswer, err: SluiceError): boolean {
    if (typeof m.topic !== 'string') return false;
    const hit = [...this.subs].filter((s) => s.topic === m.topic && (typeof m.partition !== 'number' || s.partition === undefined || s.partition === m.partition));
    for (const s of hit) this.fail(s, err);
    // The same deletion is reported once per partition: the first one ended the subscription.
    return hit.length > 0 || err.code === 'UNKNOWN_TOPIC';
  }

  // ---- the sub requests -------------------------------------------------------------------

  private subscribe(sub: Subscription): void {
    if (sub.parts.size === 0) {
      const msg: SubAsk = { op: 'sub', topic: sub.topic, from: wireFrom(sub.from) };
      if (sub.partition !== undefined) msg.partition = sub.partition;
      this.sendSub(sub, msg, 'initial');
      return;
    }
    for (const p of sub.parts.values()) {
      p.waiting = true;
      // A partition whose epoch changed restarts from its earliest record; its old offset means nothing there.
      if (p.restart) this.sendSub(sub, { op: 'sub', topic: sub.topic, partition: p.partition, from: 'earliest' }, 'restart');
      else this.sendSub(sub, { op: 'sub', topic: sub.topic, partition: p.partition, from: { offset: p.next } }, 'resume');
    }
  }

  private sendSub(sub: Subscription, msg: SubAsk, mode: SubMode): void {
    const gen = this.hooks.generation();
    this.hooks.ask(msg, {
      onAnswer: (m) => {
        if (this.subs.has(sub)) this.onSubbed(sub, m, mode);
      },
      onError: (err) => {
        if (!this.subs.has(sub)) return;
        if (err.reason === CLIENT_REASONS.DISCONNECTED) return; // asked again on the next connection
        if (err.reason === CLIENT_REASONS.TIMEOUT) {
          this.hooks.dropConnection(gen, 'sub timeout'); // reconnect and ask again
          return;
        }
        const resumePoint = mode === 'resume' || (mode === 'initial' && this.givenEpoch(sub) !== undefined);
        if (err.code === 'OFFSET_OUT_OF_RANGE' && resumePoint && msg.partition !== undefined) {
          // The partition ends below our resume point: learn its epoch and hw from `latest`.
          this.sendSub(sub, { op: 'sub', topic: sub.topic, partition: msg.partition, from: 'latest' }, 'out-of-range');
          return;
        }
        this.fail(sub, err);
      },
    });
  }

  /** The epoch of a resume point the app gave (`from: {epoch, offset}`). */
  private givenEpoch(sub: Subscription): string | undefined {
    return typeof sub.from === 'object' && 'epoch' in sub.from ? sub.from.epoch : undefined;
  }

  private onSubbed(sub: Subscription, m: SubbedAnswer, mode: SubMode): void {
    const given = this.givenEpoch(sub);
    // out-of-range comes from a resume point too: exact if the partition got back to it.
    let reason: ResumeReason = mode === 'initial' && given === undefined ? 'initial' : mode === 'restart' ? 'epoch-changed' : 'resumed';
    let exact = reason === 'resumed';
    const reported: PartState[] = [];
    for (const e of m.partitions) {
      let part = sub.parts.get(e.partition);
      // Where we expected to go on: our position, or the resume point the app gave.
      let knownEpoch = part?.epoch;
      let expectNext = part?.next;
      if (!part && given !== undefined && typeof sub.from === 'object' && 'epoch' in sub.from) {
        knownEpoch = given;
        expectNext = sub.from.offset;
      }
      if (mode !== 'restart' && knownEpoch !== undefined && knownEpoch !== e.epoch) {
        // A different history under the same name: offsets from the old one mean nothing here.
        sub.parts.set(e.partition, { partition: e.partition, epoch: e.epoch, next: e.next, hw: e.hw, waiting: true, restart: true });
        this.hooks.ask({ op: 'unsub', topic: sub.topic, partition: e.partition }, ignore);
        this.sendSub(sub, { op: 'sub', topic: sub.topic, partition: e.partition, from: 'earliest' }, 'restart');
        continue;
      }
      if (mode === 'out-of-range' && expectNext !== undefined && e.next > expectNext) {
        // The partition grew past our position between the refusal and this `sub` from
        // latest: ask for our position again rather than skip what lies between.
        part ??= { partition: e.partition, epoch: e.epoch, next: expectNext, hw: e.hw, waiting: true, restart: false };
        part.waiting = true;
        sub.parts.set(e.partition, part);
        this.hooks.ask({ op: 'unsub', topic: sub.topic, partition: e.partition }, ignore);
        this.sendSub(sub, { op: 'sub', topic: sub.topic, partition: e.partition, from: { offset: expectNext } }, 'resume');
        continue;
      }
      if (!part || mode === 'restart') {
        part = { partition: e.partition, epoch: e.epoch, next: e.next, hw: e.hw, waiting: false, restart: false };
        sub.parts.set(e.partition, part);
      }
      part.hw = e.hw;
      part.waiting = false;
      part.next = e.next;
      if (expectNext !== undefined && mode !== 'restart') {
        if (e.next > expectNext) {
          // Retention deleted what we had not read: say so, never skip silently.
          exact = false;
          part.next = expectNext;
          this.emitGap(sub, part, e.next);
        } else if (e.next < expectNext) {
          // The server is behind us in the same history: hold our position (records below
          // it are skipped as they arrive), so that no offset is delivered twice.
          exact = false;
          reason = 'offset-out-of-range';
          part.next = expectNext;
        }
      }
      reported.push(part);
    }
    if (reported.length > 0 || m.partitions.length === 0) {
      const ev = {
        topic: sub.topic,
        resumed: exact,
        reason,
        partitions: reported.map((p) => ({ partition: p.partition, epoch: p.epoch, offset: p.next, hw: p.hw })),
      };
      sub.lastSubscribed = ev;
      sub.events.emit('subscribed', ev);
    }
    if (sub.state === SubscriptionState.Subscribing && [...sub.parts.values()].every((p) => !p.waiting)) {
      sub.setState(SubscriptionState.Subscribed);
      sub.settle?.resolve(sub);
      sub.settle = null;
    }
  }

  private emitGap(sub: Subscription, part: PartState, to: number): void {
    const from = part.next;
    part.next = to;
    sub.events.emit('gap', { topic: sub.topic, partition: part.partition, from, to });
  }

  private fail(sub: Subscription, err: SluiceError): void {
    this.subs.delete(sub);
    sub.setState(SubscriptionState.Failed);
    if (sub.settle) {
      sub.settle.reject(err);
      sub.settle = null;
    } else if (sub.events.listenerCount('error') > 0) {
      sub.events.emit('error', err);
    } else {
      this.hooks.reportError(err);
    }
  }

  private remove(sub: Subscription): Promise<void> {
    if (!this.subs.delete(sub)) return Promise.resolve();
    sub.setState(SubscriptionState.Unsubscribed);
    sub.settle?.reject(clientError(CLIENT_REASONS.CLOSED, 'unsubscribed before the server answered'));
    sub.settle = null;
    if (!this.hooks.isOpen()) return Promise.resolve();
    const msg: Extract<ControlAsk, { op: 'unsub' }> = { op: 'unsub', topic: sub.topic };
    if (sub.partition !== undefined) msg.partition = sub.partition;
    return new Promise((resolve, reject) =>
      this.hooks.ask(msg, {
        onAnswer: () => resolve(),
        onError: (err) => (err.reason === CLIENT_REASONS.DISCONNECTED || err.reason === CLIENT_REASONS.CLOSED ? resolve() : reject(err)),
      }),
    );
  }

  private find(topic: string, partition: number): Subscription | undefined {
    for (const s of this.subs) if (s.topic === topic && (s.partition === undefined || s.partition === partition)) return s;
    return undefined;
  }
}

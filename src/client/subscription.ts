/**
 * One subscription of an app to a topic (all partitions, or one). It keeps, per partition,
 * the resume point `{epoch, offset}` — the epoch the partition had when we first saw it and
 * the next offset to deliver — so that after any reconnection, to the same server or to
 * another node of a cluster, it can ask for exactly the records it has not delivered yet,
 * and can tell whether the history it resumes is the same one (same epoch) or a different
 * one (topic deleted and created again).
 *
 * Recovery (recovery.ts) drives it; apps read it, listen to it and call `unsubscribe()`.
 */
import { SubscriptionState } from './codes.ts';
import { Emitter } from './emitter.ts';
import type { Message } from './frames.ts';
import type { From, PartitionPosition, SubscribedEvent, SubscriptionEvents } from './types.ts';

export type OnRecords = (records: Message[], subscription: Subscription) => void;

/** @internal A partition's position. */
export interface PartState {
  partition: number;
  epoch: string;
  /** The next offset to deliver; records below it are never delivered (again). */
  next: number;
  hw: number;
  /** A `sub` for it is out on this connection: its data is dropped until the `subbed` arrives. */
  waiting: boolean;
  /** Its epoch changed: the next `sub` for it starts from its earliest record. */
  restart: boolean;
}

export class Subscription {
  /** @internal */
  readonly events: Emitter<SubscriptionEvents>;
  /** @internal per-partition positions, filled from `subbed` answers. */
  readonly parts = new Map<number, PartState>();
  /** The latest `subscribed` event: whether the last (re)subscription resumed exactly. */
  lastSubscribed: SubscribedEvent | null = null;
  /** @internal settled once, by the first `subbed` or a failure. */
  settle: { resolve: (s: Subscription) => void; reject: (e: Error) => void } | null = null;
  private stateValue = SubscriptionState.Subscribing;

  constructor(
    readonly topic: string,
    /** The one partition followed, or undefined for all of them. */
    readonly partition: number | undefined,
    readonly from: From,
    /** @internal */
    readonly onRecords: OnRecords,
    private readonly doUnsubscribe: (s: Subscription) => Promise<void>,
    onListenerError: (err: unknown) => void,
  ) {
    this.events = new Emitter<SubscriptionEvents>(onListenerError);
  }

  get state(): SubscriptionState {
    return this.stateValue;
  }

  /** @internal Moves to `next` and tells the `state` listeners; the final states stay. */
  setState(next: SubscriptionState): void {
    const old = this.stateValue;
    if (old === next || old === SubscriptionState.Unsubscribed || old === SubscriptionState.Failed) return;
    this.stateValue = next;
    this.events.emit('state', { oldState: old, newState: next });
  }

  on<K extends keyof SubscriptionEvents>(name: K, fn: (e: SubscriptionEvents[K]) => void): () => void {
    return this.events.on(name, fn);
  }

  /** Resume points of the followed partitions (save them to resume in another process: `from: {epoch, offset}`). */
  positions(): PartitionPosition[] {
    return [...this.parts.values()].sort((a, b) => a.partition - b.partition).map((p) => ({ partition: p.partition, epoch: p.epoch, offset: p.next, hw: p.hw }));
  }

  /** Stops the subscription; no callback runs after this returns. */
  unsubscribe(): Promise<void> {
    return this.doUnsubscribe(this);
  }
}

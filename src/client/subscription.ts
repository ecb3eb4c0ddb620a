/**
 * One subscription of an app to a topic (all partitions, or one). It keeps, per partition,
 * the resume point `{epoch, offset}` — the epoch the partition had when we first saw it and
 * the next offset to deliver — so that after any reconnection it can ask the server for
 * exactly the records it has not delivered yet, and can tell whether the history it resumes
 * is the same one (same epoch) or a different one (topic deleted and created again).
 *
 * The client drives it; apps only read it and call `unsubscribe()`.
 */
import { Emitter } from './emitter.ts';
import type { Message } from './frames.ts';
import type { From, PartitionPosition, SubscribedEvent, SubscriptionEvents } from './types.ts';

export type OnRecords = (records: Message[], subscription: Subscription) => void;

export interface PartState {
  partition: number;
  epoch: string;
  next: number;
  hw: number;
  /** Data for this partition is dropped until a new `subbed` arrives (after an epoch change). */
  discarding: boolean;
}

export type SubscriptionStatus = 'subscribing' | 'subscribed' | 'unsubscribed' | 'failed';

export class Subscription {
  readonly events: Emitter<SubscriptionEvents>;
  /** @internal per-partition positions, filled from `subbed` answers. */
  readonly parts = new Map<number, PartState>();
  /** The latest `subscribed` event: whether the last (re)subscription resumed exactly. */
  lastSubscribed: SubscribedEvent | null = null;
  /** @internal */
  status: SubscriptionStatus = 'subscribing';
  /** @internal settled once, by the first `subbed` or a failure. */
  settle: { resolve: (s: Subscription) => void; reject: (e: Error) => void } | null = null;

  constructor(
    readonly topic: string,
    /** The one partition followed, or undefined for all of them. */
    readonly partition: number | undefined,
    readonly from: From,
    /** @internal */
    readonly onRecords: OnRecords,
    /** @internal */
    private readonly doUnsubscribe: (s: Subscription) => Promise<void>,
    onListenerError: (err: unknown) => void,
  ) {
    this.events = new Emitter<SubscriptionEvents>(onListenerError);
  }

  on<K extends keyof SubscriptionEvents>(name: K, fn: (e: SubscriptionEvents[K]) => void): () => void {
    return this.events.on(name, fn);
  }

  get state(): SubscriptionStatus {
    return this.status;
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

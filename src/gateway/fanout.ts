/**
 * Outbound: one PartitionFanout per topic-partition that has subscribers. It listens to
 * the log's commits and frames each committed batch ONCE (DATA header + the batch bytes,
 * as stored) and sends those same bytes to every caught-up subscriber.
 *
 * Per-socket `send` rather than uWS's topic `publish`: publish skips sockets above
 * maxBackpressure without telling anyone, which would leave a gap in a stream that promises
 * none. Here every send is checked: a subscriber whose socket holds more than
 * `backpressureBytesMax` leaves the live path and is fed from disk (subscription.ts), so
 * no per-client queue grows without bound — what it has not read stays in the log.
 */
import type { PartitionLog } from '../../engine/index.ts';
import type { Metrics } from '../common/metrics.ts';
import { dataFrame, dataHeader } from './frames.ts';
import { Subscription, backpressureBytesMax } from './subscription.ts';

export class PartitionFanout {
  readonly header: Buffer;
  /** Caught-up subscribers, fed from commits. */
  readonly live = new Set<Subscription>();
  /** Every subscriber of the partition, live or catching up. */
  readonly all = new Set<Subscription>();
  private unlisten: (() => void) | null = null;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly log: PartitionLog,
    private readonly metrics: Metrics,
  ) {
    this.header = dataHeader(topic, partition);
  }

  add(sub: Subscription): void {
    this.all.add(sub);
    this.unlisten ??= this.log.onCommit((bytes, first, next) => this.onCommit(bytes, first, next));
  }

  remove(sub: Subscription): void {
    this.live.delete(sub);
    this.all.delete(sub);
    if (this.all.size === 0) this.stop();
  }

  stop(): void {
    this.unlisten?.();
    this.unlisten = null;
  }

  private onCommit(bytes: Uint8Array, first: number, next: number): void {
    if (this.live.size === 0) return;
    const frame = dataFrame(this.header, bytes);
    let sent = 0;
    for (const sub of this.live) {
      const conn = sub.conn;
      if (sub.next !== first || conn.bufferedAmount > backpressureBytesMax) {
        sub.fallBack();
        if (sub.next !== first) setImmediate(() => sub.pump());
        continue;
      }
      if (conn.sendBinary(frame) === 2) {
        sub.fallBack();
        continue;
      }
      sub.next = next;
      sent++;
    }
    if (sent > 0) {
      this.metrics.recordsOut.inc((next - first) * sent);
      this.metrics.bytesOut.inc(frame.length * sent);
    }
  }
}

/** The fan-outs of every topic-partition with subscribers. */
export class Fanout {
  private readonly partitions = new Map<string, PartitionFanout>();

  constructor(private readonly metrics: Metrics) {}

  get(log: PartitionLog): PartitionFanout {
    const k = `${log.topic}\0${log.partition}`;
    let pf = this.partitions.get(k);
    if (pf && pf.log !== log) {
      // The topic was deleted and created again: a new log, a new history.
      pf.stop();
      pf = undefined;
    }
    if (!pf) {
      pf = new PartitionFanout(log.topic, log.partition, log, this.metrics);
      this.partitions.set(k, pf);
    }
    return pf;
  }

  /** Removes a deleted topic's fan-outs; returns the subscriptions that followed it. */
  dropTopic(topic: string): Subscription[] {
    const subs: Subscription[] = [];
    for (const [k, pf] of this.partitions) {
      if (pf.topic !== topic) continue;
      subs.push(...pf.all);
      pf.stop();
      this.partitions.delete(k);
    }
    return subs;
  }

  *subscriptions(): Iterable<Subscription> {
    for (const pf of this.partitions.values()) yield* pf.all;
  }

  /** Forgets partitions nobody follows any more. */
  prune(): void {
    for (const [k, pf] of this.partitions) if (pf.all.size === 0) this.partitions.delete(k);
  }
}

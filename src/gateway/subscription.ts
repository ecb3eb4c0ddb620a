/**
 * One subscribed topic-partition of one connection, and its position `next`: the offset
 * of the first record it has not been sent yet. Everything it is sent starts at `next`,
 * so the switch between the two ways of feeding it loses and repeats nothing:
 *
 * - `disk`: catch-up. `pump()` reads whole batches from `next` through the mmap'd segment
 *   views (PartitionLog.read) and sends them while the socket's buffered amount stays
 *   under the high-water mark; uWS's `drain` calls it again. When a read finds nothing
 *   left (next == hw) the subscription joins the partition's live set; JavaScript runs
 *   one thing at a time and commit listeners run right after hw moves, so no batch can
 *   slip between the last read and joining.
 * - `live`: the fan-out hands it each committed batch whose firstOffset == next. A batch
 *   that does not start at `next`, a socket above the high-water mark, or a dropped send
 *   sends it back to `disk` (it is then served from the log at its own pace).
 *
 * A position below the log start (a `sub` from an old offset, or retention deleting what a
 * slow reader had not read) is never skipped silently: a `gap` message tells the client
 * which offsets are gone, then it goes on from the start.
 */
import { OffsetOutOfRangeError, type PartitionLog } from '../../engine/index.ts';
import type { Metrics } from '../common/metrics.ts';
import type { Connection } from './connection.ts';
import { dataFrame } from './frames.ts';
import type { PartitionFanout } from './fanout.ts';

/** Above this many bytes queued in uWS for a socket, it is fed from disk in `drain` instead. */
export const backpressureBytesMax = 1024 * 1024;
/** How much one disk read hands to one DATA frame (at least one whole batch). */
export const catchUpReadBytesMax = 256 * 1024;

export type SubscriptionMode = 'disk' | 'live' | 'closed';

export class Subscription {
  mode: SubscriptionMode = 'disk';

  constructor(
    readonly conn: Connection,
    readonly topic: string,
    readonly partition: number,
    readonly log: PartitionLog,
    readonly fanout: PartitionFanout,
    public next: number,
    private readonly metrics: Metrics,
  ) {}

  get lag(): number {
    return Math.max(0, this.log.hw - this.next);
  }

  /** Leaves the live path; `drain` (or the next pump) feeds it from disk. */
  fallBack(): void {
    if (this.mode !== 'live') return;
    this.mode = 'disk';
    this.fanout.live.delete(this);
    this.metrics.slowSubscriberSwitches.inc();
  }

  /** Sends from disk while the socket has room; joins the live path once caught up. */
  pump(): void {
    if (this.mode !== 'disk') return;
    const conn = this.conn;
    while (!conn.closed && conn.bufferedAmount < backpressureBytesMax) {
      let r;
      try {
        r = this.log.read(this.next, catchUpReadBytesMax);
      } catch (err) {
        const start = this.log.startOffset;
        if (err instanceof OffsetOutOfRangeError && this.next < start) {
          conn.sendJson({ op: 'gap', topic: this.topic, partition: this.partition, from: this.next, to: start });
          this.next = start;
          continue;
        }
        conn.sendError('INTERNAL', `reading ${this.topic}-${this.partition} at ${this.next}: ${(err as Error).message}`, undefined, { topic: this.topic, partition: this.partition });
        this.close();
        conn.subs.delete(`${this.topic}\0${this.partition}`);
        return;
      }
      if (r === null) {
        this.mode = 'live';
        this.fanout.live.add(this);
        return;
      }
      const frame = dataFrame(this.fanout.header, r.bytes);
      if (conn.sendBinary(frame) === 2) return; // dropped: nothing moved, the next drain retries
      this.metrics.recordsOut.inc(r.nextOffset - Math.max(r.firstOffset, this.next));
      this.metrics.bytesOut.inc(frame.length);
      this.next = r.nextOffset;
    }
  }

  close(): void {
    if (this.mode === 'closed') return;
    this.mode = 'closed';
    this.fanout.remove(this);
    this.metrics.subscriptions.dec();
  }
}

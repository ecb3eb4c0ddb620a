/**
 * What sluice enforces of the idempotent producer (KIP-98), per partition, in memory: the
 * last few batches each producer id appended, so that a batch sent again after a lost
 * answer (same producer id, epoch, base sequence and record count) is answered with the
 * offsets of the first copy instead of being stored twice.
 *
 * What it does not do, and Kafka does: check that sequences follow each other
 * (OUT_OF_ORDER_SEQUENCE_NUMBER), fence older epochs, or keep this state across a restart
 * (Kafka snapshots it beside the log). After a restart, or once a producer has more than
 * limits.producerBatchesKept batches between a send and its retry, a retried batch is stored
 * again: at-least-once, as without idempotence. docs/kafka.md says so.
 *
 * Producer ids come from InitProducerId: the time in ms times 1024 plus a counter, so ids do
 * not repeat across restarts of one server (within the 2^53 that JSON numbers hold exactly).
 */
import type { AppendResult, LogPartition } from '../../engine/log.ts';
import * as limits from './limits.ts';

interface Sent {
  epoch: number;
  baseSequence: number;
  count: number;
  result: Promise<AppendResult>;
}

export class ProducerState {
  private readonly partitions = new WeakMap<LogPartition, Map<number, Sent[]>>();
  private lastId = 0;

  /** A new producer id, never given before by this process nor, by the clock, by an earlier one. */
  nextProducerId(): number {
    this.lastId = Math.max(this.lastId + 1, Date.now() * 1024);
    return this.lastId;
  }

  /** The append of an earlier copy of this batch, or null when it is new. */
  duplicateOf(partition: LogPartition, producerId: number, epoch: number, baseSequence: number, count: number): Promise<AppendResult> | null {
    const sent = this.partitions.get(partition)?.get(producerId);
    if (!sent) return null;
    for (const s of sent) if (s.epoch === epoch && s.baseSequence === baseSequence && s.count === count) return s.result;
    return null;
  }

  /** Remembers a batch being appended; a failed append is forgotten, so that a retry is stored. */
  record(partition: LogPartition, producerId: number, epoch: number, baseSequence: number, count: number, result: Promise<AppendResult>): void {
    let producers = this.partitions.get(partition);
    if (!producers) this.partitions.set(partition, (producers = new Map()));
    let sent = producers.get(producerId);
    if (!sent) {
      // Least recently seen producers go first when a partition has seen too many.
      if (producers.size >= limits.producersPerPartitionMax) producers.delete(producers.keys().next().value as number);
      sent = [];
    } else {
      producers.delete(producerId);
    }
    producers.set(producerId, sent);
    const entry: Sent = { epoch, baseSequence, count, result };
    sent.push(entry);
    if (sent.length > limits.producerBatchesKept) sent.shift();
    result.catch(() => {
      const i = sent.indexOf(entry);
      if (i >= 0) sent.splice(i, 1);
    });
  }
}

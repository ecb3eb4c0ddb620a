import type { AppendResult, CommitListener, LogPartition, PartitionLog, ReadResult, SegmentSpan } from '../../engine/index.ts';
import type { PartitionAppender } from './appender.ts';
import type { MirrorFeed } from './mirror-feed.ts';

/** One partition: appends go to JetStream, reads come from the mirror. */
export class ClusterPartition implements LogPartition {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly epoch: string,
    readonly mirror: PartitionLog,
    readonly feed: MirrorFeed,
    readonly appender: PartitionAppender,
    readonly stream: string,
  ) {}

  get startOffset(): number {
    return this.mirror.startOffset;
  }

  get hw(): number {
    return this.mirror.hw;
  }

  append(batch: Uint8Array): Promise<AppendResult> {
    return this.appender.append(batch);
  }

  read(offset: number, maxBytes: number): ReadResult | null {
    return this.mirror.read(offset, maxBytes);
  }

  offsetForTime(timestamp: number): number {
    return this.mirror.offsetForTime(timestamp);
  }

  onCommit(listener: CommitListener): () => void {
    return this.mirror.onCommit(listener);
  }

  /** The mirror's segments: a front on another thread maps them and reads there (engine/log-host.ts). */
  segmentSpans(): SegmentSpan[] {
    return this.mirror.segmentSpans();
  }
}

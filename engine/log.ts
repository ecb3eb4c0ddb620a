/**
 * The log as the fronts see it: what the WebSocket gateway, the HTTP API, the TCP replay
 * server and the Kafka listener need of it, and nothing more. Two implementations satisfy
 * it: the local engine (LogManager and its PartitionLogs, one node with its own disk) and
 * the cluster log (src/cluster/: appends go to NATS JetStream, reads come from a local
 * mirror kept in this same engine format). `src/server.ts` picks one; no front knows which.
 *
 * The contract every implementation keeps:
 * - Offsets are dense per partition, start at 0 and are never given to two records. What
 *   was stored stays readable until retention moves the start past it, with one exception
 *   the log cannot help: storage damage. A run of offsets lost that way (a segment file
 *   deleted behind the log's back) is never skipped in silence: `read` says so in `gap`.
 * - A stored batch that fails its checks when read (a bad CRC on disk) is the server's
 *   fault: `read` throws UNAVAILABLE (CORRUPT_STORED_BATCH), never BAD_REQUEST.
 * - `append` resolves only once the batch is durable as the deployment defines it (fsynced
 *   under `flush: always`; stored by a JetStream quorum in cluster mode), and the batch is
 *   then visible: `hw` has moved past it and commit listeners have been told.
 * - Commit listeners are called synchronously, in offset order, with each run of batches
 *   that became visible, right after `hw` moved: a reader that reads up to `hw` and then
 *   listens (in one turn of the event loop) misses nothing and sees nothing twice.
 * - `read` hands out whole stored batches, never beyond `hw`, as views of the segment
 *   files (no copy), with the file they lie in so that sendfile(2) can send them.
 * - A partition's `epoch` never changes while it lives; a topic deleted and created again
 *   gets new epochs (and new LogPartition objects).
 */
export interface CreateTopicOptions {
  partitions: number;
  /** -1 keeps everything; absent takes the log's default. */
  retentionMs?: number;
  retentionBytes?: number;
}

export interface PartitionInfo {
  partition: number;
  epoch: string;
  start: number;
  hw: number;
  bytes: number;
  segments: number;
}

export interface TopicInfo {
  name: string;
  partitions: PartitionInfo[];
  retentionMs: number;
  retentionBytes: number;
  createdAt: number;
}

export interface AppendResult {
  baseOffset: number;
  /** Offset of the batch's last record. */
  lastOffset: number;
  recordCount: number;
}

/** A segment file that batches handed out by `read` lie in. Compared by identity. */
export interface SegmentFile {
  /** The file's path, for a reader that opens its own descriptor (sendfile). */
  readonly logPath: string;
}

export interface ReadResult {
  /** Whole stored batches: a view of the segment's mapping, valid while referenced. */
  bytes: Buffer;
  segment: SegmentFile;
  /** Byte position of `bytes` in the segment file. */
  position: number;
  /** baseOffset of the first batch (may be below the offset asked for). */
  firstOffset: number;
  /** Offset after the last record in `bytes`. */
  nextOffset: number;
  /**
   * Set when offsets [from, to) are missing from the log (lost to storage damage, found when
   * the log opened) and the read skipped them: `from` is the offset asked for, and `bytes`
   * start at `to` (`firstOffset === to`). Readers tell their clients, as they do for what
   * retention deleted, and go on from `to`.
   */
  gap?: { from: number; to: number };
}

/**
 * Called in offset order with each run of batches that became visible: their bytes (a view
 * of the segment), their offsets, and where they lie — the segment file and the byte
 * position of the run in it — so that a reader on another thread, which maps the segment
 * files itself, can be told where to read instead of being sent the bytes.
 */
export type CommitListener = (bytes: Uint8Array, firstOffset: number, nextOffset: number, segment: CommittedSegment, position: number) => void;

/** The segment a commit lies in: its file, and its base offset (which names the file). */
export interface CommittedSegment extends SegmentFile {
  readonly baseOffset: number;
}

/** One segment file of a partition as a reader on another thread needs it. */
export interface SegmentSpan {
  /** The file, which that reader maps itself. */
  readonly logPath: string;
  /** The offset of the segment's first record (its file name). */
  readonly baseOffset: number;
  /** How many bytes from the start of the file are visible: whole batches below the hw. */
  readonly readableBytes: number;
}

/** One partition of a topic. */
export interface LogPartition {
  readonly topic: string;
  readonly partition: number;
  /** Random id given at creation; a different epoch is a different history. */
  readonly epoch: string;
  /** First offset still stored (retention moves it). */
  readonly startOffset: number;
  /** High watermark: the offset after the last record readers may see. */
  readonly hw: number;
  /**
   * Appends one whole RecordBatch v2 (validated: lengths, magic, CRC), assigning its
   * offsets by writing baseOffset in place. The caller must not change `batch` afterwards.
   */
  append(batch: Uint8Array): Promise<AppendResult>;
  /**
   * Whole batches from the one holding `offset`, up to `maxBytes` (at least one batch), all
   * from one segment; null when `offset` is the hw. OffsetOutOfRangeError below the start
   * or above the hw; `gap` set when `offset` falls in a run lost to damage; UNAVAILABLE
   * (CORRUPT_STORED_BATCH) when a batch to hand out is damaged.
   */
  read(offset: number, maxBytes: number): ReadResult | null;
  /** Offset of the first visible record with timestamp >= `timestamp`, or hw when none is. */
  offsetForTime(timestamp: number): number;
  /** Listens for newly visible batches; returns the function that stops listening. */
  onCommit(listener: CommitListener): () => void;
  /**
   * The segment files that hold the visible batches, oldest first, with the bytes of each a
   * reader may see: what another thread maps for itself (engine/partition-reader.ts), kept
   * up to date from then on by the commit listeners' segment and position.
   */
  segmentSpans(): SegmentSpan[];
}

export type TopicEvent = { type: 'created'; topic: string } | { type: 'deleted'; topic: string };
export type TopicListener = (event: TopicEvent) => void;

/** A committed consumer-group position (Kafka's OffsetCommit), kept durably by the log. */
export interface CommittedOffset {
  topic: string;
  partition: number;
  /** The next offset the group will read. */
  offset: number;
  metadata: string | null;
  committedAt: number;
}

/**
 * Consumer-group offsets, stored where the log is (a file beside the local engine's data,
 * a key-value bucket in cluster mode), so they survive a restart and, in a cluster, a node.
 */
export interface OffsetStore {
  /** Every offset the group has committed. */
  fetch(group: string): Promise<CommittedOffset[]>;
  /** Stores the offsets durably (under the log's durability) before resolving. */
  commit(group: string, offsets: CommittedOffset[]): Promise<void>;
  /**
   * Drops every group's offsets of `topic`, durably. The log calls it when the topic is
   * deleted, so that a topic created again under the name (a new history, offsets from 0)
   * does not inherit positions from the old one.
   */
  forgetTopic(topic: string): Promise<void>;
}

export interface Log {
  hasTopic(topic: string): boolean;
  /** Topic names, sorted. */
  listTopics(): string[];
  /** UnknownTopicError when the topic does not exist. */
  partitionCount(topic: string): number;
  /** UnknownTopicError when the topic does not exist. */
  describe(topic: string): TopicInfo;
  /** BadRequestError (TOPIC_EXISTS) when it exists; resolves once every node would see it. */
  createTopic(topic: string, opts: CreateTopicOptions): Promise<TopicInfo>;
  /** UnknownTopicError when the topic does not exist. Also forgets the topic's committed group offsets. */
  deleteTopic(topic: string): Promise<void>;
  /**
   * Topic created or deleted, by this process or (cluster mode) by another node. A deleted
   * event is sent after the topic is gone from `hasTopic` and before its files are removed.
   */
  onTopicEvent(listener: TopicListener): () => void;
  /** UnknownTopicError for an unknown topic, BadRequestError (BAD_PARTITION) for a bad partition. */
  partition(topic: string, partition: number): LogPartition;
  /** Consumer-group offsets. */
  readonly offsets: OffsetStore;
  /** Finishes appends in flight, syncs, releases files. */
  close(): Promise<void>;
}

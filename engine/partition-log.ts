/**
 * One partition: an ordered list of segments, the last one active. Offsets are dense and
 * assigned here, by writing each batch's baseOffset in place before it is appended.
 *
 * Two ends matter to readers: `nextOffset` (the log end: everything written) and `hw`
 * (the high watermark: what readers may see). Under `flush: always` hw moves only after
 * the fdatasync covering a batch, so nobody is shown a record a power cut could take back;
 * under `interval` and `never` it moves as soon as the batch is written.
 *
 * Readers get Buffers that are views of the mmap'd segment, bounded by what is readable.
 *
 * In cluster mode the log is a node's mirror of a JetStream stream, which assigns the
 * offsets: `appendStamped` stores a batch at the offsets it already carries, and
 * `resetTo`/`truncateTo` bring the mirror back in line with its source when they disagree.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type BatchHeader, checkBatch, readBatchHeader, setBaseOffset } from './codec/record-batch.ts';
import { storedBatchDamaged } from './batch-verification.ts';
import { firstOffsetAtTime, readRun, segmentIndexFor } from './segment-search.ts';
import { BadRequestError, CorruptBatchError, OffsetOutOfRangeError, TooLargeError, UnavailableError, storageError } from './errors.ts';
import { type FlushPolicy, type FlushTarget, Flusher, type PendingAppend } from './flush.ts';
import type { FdReserve } from './fd-reserve.ts';
import { batchBytesMax, flushMsDefault, segmentBytesDefault, segmentFds, segmentMsDefault, timestampAheadMsDefault } from './limits.ts';
import type { AppendResult, CommitListener, LogPartition, ReadResult, SegmentSpan } from './log.ts';
import type { Logger } from './logger.ts';
import { loadSegments, recoverSegment } from './recovery.ts';
import { activeSegmentExpired, expiredSegmentCount } from './retention.ts';
import { Segment, segmentFileName } from './segment.ts';

export interface PartitionLogOptions {
  segmentBytes?: number;
  segmentMs?: number;
  /** -1 or absent: keep everything. */
  retentionBytes?: number;
  retentionMs?: number;
  flush?: FlushPolicy;
  flushMs?: number;
  /**
   * How far a record timestamp may be ahead of the server's clock (validated at produce);
   * retention judges a segment by its newest timestamp, capped at its last append plus this.
   */
  timestampAheadMs?: number;
  logger?: Logger;
  /** The server's clock, in ms (tests pass their own). */
  clock?: () => number;
  /** The process's file descriptor reserve: a new segment is refused below it. */
  fds?: FdReserve;
}

/** A read of the local engine: the segment is the engine's own. */
export interface SegmentReadResult extends ReadResult {
  segment: Segment;
}

type Pending = PendingAppend<Segment>;

export class PartitionLog implements LogPartition {
  private segments: Segment[] = [];
  private nextOffsetValue = 0;
  private hwValue = 0;
  private readonly listeners = new Set<CommitListener>();
  private readonly flusher: Flusher<Segment>;
  private closed = false;
  readonly segmentBytes: number;
  readonly segmentMs: number;
  retentionBytes: number;
  retentionMs: number;
  readonly flush: FlushPolicy;
  readonly timestampAheadMs: number;
  private readonly logger: Logger | undefined;
  private readonly clock: () => number;
  private readonly fds: FdReserve | undefined;
  /** When a roll was last put off for want of descriptors (logged once a minute at most). */
  private rollDeferredLoggedAt = -Infinity;

  private constructor(
    readonly dir: string,
    readonly topic: string,
    readonly partition: number,
    readonly epoch: string,
    opts: PartitionLogOptions,
  ) {
    this.segmentBytes = opts.segmentBytes ?? segmentBytesDefault;
    this.segmentMs = opts.segmentMs ?? segmentMsDefault;
    this.retentionBytes = opts.retentionBytes ?? -1;
    this.retentionMs = opts.retentionMs ?? -1;
    this.flush = opts.flush ?? 'always';
    this.timestampAheadMs = opts.timestampAheadMs ?? timestampAheadMsDefault;
    this.logger = opts.logger;
    this.clock = opts.clock ?? Date.now;
    this.fds = opts.fds;
    const target: FlushTarget<Segment> = {
      commit: (e) => this.commit(e),
      rollBack: (first, batches, failure) => this.rollBack(first, batches, failure),
      syncFailure,
    };
    this.flusher = new Flusher(this.flush, target, {
      flushMs: opts.flushMs ?? flushMsDefault,
      onIntervalError: (err) => this.logger?.error({ err, topic, partition }, 'interval fsync failed'),
    });
  }

  /** Opens the partition directory; recovery.ts decides which segments to trust and which to walk (creates one when none). */
  static open(dir: string, topic: string, partition: number, epoch: string, opts: PartitionLogOptions = {}): PartitionLog {
    fs.mkdirSync(dir, { recursive: true });
    const log = new PartitionLog(dir, topic, partition, epoch, opts);
    try {
      log.segments = loadSegments(dir, log.mapBytesHint(), { topic, partition, logger: log.logger });
    } catch (err) {
      log.flusher.stop();
      throw err;
    }
    const active = log.active;
    log.nextOffsetValue = Math.max(active.nextOffset, active.baseOffset);
    log.hwValue = log.nextOffsetValue;
    return log;
  }

  private mapBytesHint(): number {
    return Math.min(this.segmentBytes, 1 << 30) + 1024 * 1024;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1];
  }

  /** First offset still stored. */
  get startOffset(): number {
    return this.segments[0].baseOffset;
  }

  /** Offset after the last record written. */
  get nextOffset(): number {
    return this.nextOffsetValue;
  }

  /** Offset after the last record readers may see. */
  get hw(): number {
    return this.hwValue;
  }

  get bytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Listens for newly visible batches; returns the function that stops listening. */
  onCommit(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The segment files with their visible bytes, oldest first (see LogPartition.segmentSpans). */
  segmentSpans(): SegmentSpan[] {
    this.assertOpen();
    return this.segments.map((s) => ({ logPath: s.logPath, baseOffset: s.baseOffset, readableBytes: s.readable }));
  }

  /**
   * Appends one whole RecordBatch v2 (checked here: lengths, magic, CRC), assigning its
   * offsets. Resolves once the batch is visible under the flush policy. The caller must not
   * change `batch` afterwards: its bytes are handed to commit listeners as they are.
   */
  append(batch: Uint8Array): Promise<AppendResult> {
    return this.appendWith(batch, true);
  }

  /**
   * Appends a batch whose offsets were assigned elsewhere (cluster mode: the JetStream stream
   * is the source of truth and this log its mirror), byte for byte: its baseOffset must be
   * this log's next offset, or BadRequestError (OFFSET_GAP) and nothing is written. Resolves
   * as `append` does. `checked` is the header `checkBatch` returned for these very bytes
   * (CRC included), when the caller checked them already: they are not checked again.
   */
  appendStamped(batch: Uint8Array, checked?: BatchHeader): Promise<AppendResult> {
    return this.appendWith(batch, false, checked);
  }

  private appendWith(batch: Uint8Array, stamp: boolean, checked?: BatchHeader): Promise<AppendResult> {
    let entry: Pending;
    try {
      entry = this.appendNow(batch, stamp, checked);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.flusher.add(entry);
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError(`partition ${this.topic}-${this.partition} is closed`, 'CLOSED');
  }

  private appendNow(batch: Uint8Array, stamp: boolean, checked?: BatchHeader): Pending {
    this.assertOpen();
    if (batch.length > batchBytesMax) throw new TooLargeError(`batch of ${batch.length} bytes exceeds ${batchBytesMax}`);
    const h: BatchHeader = checked ?? checkBatch(batch, 0, batch.length, batchBytesMax);
    if (h.size !== batch.length) throw new BadRequestError('bytes after the batch', 'TRAILING_BYTES');
    const baseOffset = this.nextOffsetValue;
    if (stamp) {
      setBaseOffset(batch, 0, baseOffset);
      h.baseOffset = baseOffset;
    } else if (h.baseOffset !== baseOffset) {
      throw new BadRequestError(`batch starts at offset ${h.baseOffset}, the log at ${baseOffset}`, 'OFFSET_GAP');
    }
    const now = this.clock();
    this.maybeRoll(batch.length, now);
    const seg = this.active;
    const start = seg.append(batch, h, now);
    this.nextOffsetValue = baseOffset + h.recordCount;
    const result = { baseOffset, lastOffset: baseOffset + h.recordCount - 1, recordCount: h.recordCount };
    return { segment: seg, start, end: seg.size, nextOffset: this.nextOffsetValue, bytes: batch, firstOffset: baseOffset, result };
  }

  /** Shows a written batch to readers. */
  private commit(e: Pending): void {
    e.segment.readable = e.end;
    this.hwValue = e.nextOffset;
    for (const l of this.listeners) {
      try {
        l(e.bytes, e.firstOffset, e.nextOffset, e.segment, e.start);
      } catch (err) {
        this.logger?.error({ err }, 'commit listener threw');
      }
    }
  }

  /**
   * After a failed fsync, cuts the log back to the first pending batch, so that
   * what follows is written again at the same offsets. Segments rolled since then held only
   * pending batches and go too.
   */
  private rollBack(first: Pending, batches: number, failure: Error): void {
    this.logger?.error({ topic: this.topic, partition: this.partition, from: first.firstOffset, batches, err: failure }, 'fsync failed: cutting the unsynced tail');
    while (this.segments.length > 1 && this.active !== first.segment) this.segments.pop()!.delete();
    try {
      first.segment.truncateFile(first.start);
      recoverSegment(first.segment);
      first.segment.readable = Math.min(first.segment.readable, first.segment.size);
      this.nextOffsetValue = first.firstOffset;
    } catch (err) {
      // Cannot even cut the tail: refuse further writes until the partition is reopened.
      this.closed = true;
      this.logger?.error({ err, topic: this.topic, partition: this.partition }, 'cannot cut the unsynced tail; the partition is closed');
    }
  }

  /**
   * Rolls when the batch would not fit (it must), or when the active segment is older than
   * segmentMs by the server's clock (it may: short of descriptors, the segment grows on).
   */
  private maybeRoll(incoming: number, now: number): void {
    const seg = this.active;
    if (seg.size === 0) return;
    if (seg.size + incoming > this.segmentBytes) this.roll();
    else if (now - seg.rollStartMs > this.segmentMs) this.rollIfRoom('segmentMs');
  }

  /** A roll that can wait (by age, for retention): put off while the descriptor reserve is reached. */
  private rollIfRoom(why: string): void {
    if (this.fds && !this.fds.hasRoomFor(segmentFds)) {
      const now = this.clock();
      if (now - this.rollDeferredLoggedAt >= 60_000) {
        this.rollDeferredLoggedAt = now;
        this.logger?.warn({ topic: this.topic, partition: this.partition, why, limit: this.fds.limit, reserve: this.fds.reserve }, 'segment roll put off: the file descriptor reserve is reached');
      }
      return;
    }
    this.roll();
  }

  /**
   * Starts a new active segment at the log end; the old one is synced by the next commit.
   * UNAVAILABLE (TOO_MANY_OPEN_FILES) when its three descriptors would eat into the reserve.
   */
  roll(): void {
    const old = this.active;
    if (old.size === 0) return;
    this.fds?.assertRoomFor(segmentFds, `create a segment of ${this.topic}-${this.partition}`);
    let seg: Segment;
    try {
      seg = Segment.open(this.dir, this.nextOffsetValue, this.mapBytesHint());
    } catch (err) {
      throw storageError(err, 'cannot create a segment');
    }
    try {
      syncDir(this.dir);
    } catch (err) {
      seg.delete();
      throw storageError(err, 'cannot create a segment');
    }
    if (this.flush !== 'always') this.flusher.markDirty(old);
    this.segments.push(seg);
  }

  /**
   * Empties the log and starts it again at `offset`: every segment is deleted (views already
   * handed out stay readable: the kernel keeps a deleted file while it is mapped) and a new
   * empty one is opened at `offset`. For a mirror whose source no longer holds what follows
   * its end, or holds something else. Appends waiting for a sync are rejected. Readers below
   * the new start then get OffsetOutOfRangeError, which the fronts turn into a `gap`.
   */
  resetTo(offset: number): void {
    this.assertOpen();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`bad offset ${offset}`);
    this.flusher.discard(new UnavailableError(`partition ${this.topic}-${this.partition} was reset`, 'CLOSED'));
    for (const s of this.segments) s.delete();
    this.segments = [];
    let seg: Segment;
    try {
      seg = Segment.open(this.dir, offset, this.mapBytesHint());
      syncDir(this.dir);
    } catch (err) {
      this.closed = true;
      throw storageError(err, 'cannot create segment');
    }
    seg.readable = 0;
    this.segments.push(seg);
    this.nextOffsetValue = offset;
    this.hwValue = offset;
    this.logger?.warn({ topic: this.topic, partition: this.partition, offset }, 'log reset: it starts again, empty');
  }

  /**
   * Cuts the log back to the batch boundary at or below `offset`, for a mirror found to
   * disagree with its source from there on; returns the new end. Segments wholly above go;
   * the one holding the cut is copied up to it into a new file that is renamed over the old
   * one, never shrunk in place: a mapped file cut under a reader is SIGBUS, while the old
   * file stays whole for whoever still maps it or holds its descriptor. `hw` moves back.
   */
  truncateTo(offset: number): number {
    this.assertOpen();
    if (offset >= this.nextOffsetValue) return this.nextOffsetValue;
    if (offset <= this.startOffset) {
      this.resetTo(Math.max(0, offset));
      return this.nextOffsetValue;
    }
    this.flusher.discard(new UnavailableError(`partition ${this.topic}-${this.partition} was cut back`, 'CLOSED'));
    while (this.segments.length > 1 && this.active.baseOffset >= offset) this.segments.pop()!.delete();
    const old = this.active;
    const cut = old.positionOf(offset);
    if (cut < old.size) {
      const file = old.logPath;
      const tmp = `${file}.cut`;
      try {
        const fd = fs.openSync(tmp, 'w', 0o644);
        try {
          const bytes = cut > 0 ? old.view(0, cut) : Buffer.alloc(0);
          for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
          fs.fdatasyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        old.close();
        for (const ext of ['index', 'timeindex'] as const) fs.rmSync(path.join(this.dir, segmentFileName(old.baseOffset, ext)), { force: true });
        fs.renameSync(tmp, file);
        syncDir(this.dir);
        const seg = Segment.open(this.dir, old.baseOffset, this.mapBytesHint());
        recoverSegment(seg);
        seg.readable = seg.size;
        this.segments[this.segments.length - 1] = seg;
      } catch (err) {
        this.closed = true;
        throw storageError(err, `cannot cut ${file}`);
      }
    }
    this.nextOffsetValue = Math.max(this.active.nextOffset, this.active.baseOffset);
    this.hwValue = this.nextOffsetValue;
    this.logger?.warn({ topic: this.topic, partition: this.partition, offset, end: this.nextOffsetValue }, 'log cut back');
    return this.nextOffsetValue;
  }

  /**
   * Whole batches from the one holding `offset`, up to `maxBytes` (at least one batch), all
   * from one segment; null when `offset` is the high watermark. An offset below the start
   * or above the hw throws OffsetOutOfRangeError.
   */
  read(offset: number, maxBytes: number): SegmentReadResult | null {
    // Closed segments have no file to map: without this, an uncoded EBADF from mmap.
    this.assertOpen();
    if (!Number.isSafeInteger(offset) || offset < this.startOffset) {
      throw new OffsetOutOfRangeError(`offset ${offset} is below the log start ${this.startOffset}`);
    }
    if (offset > this.hwValue) throw new OffsetOutOfRangeError(`offset ${offset} is above the high watermark ${this.hwValue}`);
    if (offset === this.hwValue) return null;
    let i = segmentIndexFor(this.segments, offset);
    for (; i < this.segments.length; i++) {
      const seg = this.segments[i];
      try {
        const run = readRun(seg, offset, maxBytes);
        if (run !== null) return run;
      } catch (err) {
        throw this.damaged(err, seg, offset);
      }
    }
    return null;
  }

  /**
   * A stored batch that fails its checks is the server's fault, never the reader's request:
   * UNAVAILABLE (CORRUPT_STORED_BATCH), logged with where it lies.
   */
  private damaged(err: unknown, seg: Segment, offset: number): unknown {
    return err instanceof CorruptBatchError ? storedBatchDamaged(err, { topic: this.topic, partition: this.partition, logger: this.logger }, seg.logPath, offset) : err;
  }

  /** Offset of the first visible record with timestamp >= `timestamp`, or hw when none is. */
  offsetForTime(timestamp: number): number {
    this.assertOpen();
    for (const seg of this.segments) {
      if (seg.maxTimestamp < timestamp) continue;
      try {
        const found = firstOffsetAtTime(seg, seg.positionForTime(timestamp), timestamp);
        if (found !== null) return found;
      } catch (err) {
        throw this.damaged(err, seg, seg.baseOffset);
      }
    }
    return this.hwValue;
  }

  /**
   * Deletes whole old segments past the retention limits (retention.ts decides which); offsets
   * stay as they are. The active segment is rolled first when it alone is past the time limit.
   */
  enforceRetention(now = this.clock()): number {
    // A closed log must not roll (create a file) or delete anything.
    if (this.closed) return 0;
    if (activeSegmentExpired(this.active, this, now, this.flusher.pendingCount > 0)) this.rollIfRoom('retentionMs');
    const deleted = expiredSegmentCount(this.segments, this.hwValue, this, now);
    for (const seg of this.segments.splice(0, deleted)) seg.delete();
    if (deleted > 0) this.logger?.info({ topic: this.topic, partition: this.partition, deleted, start: this.startOffset }, 'retention deleted segments');
    return deleted;
  }

  /** Waits for pending syncs, syncs everything, closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flusher.drain();
    this.closed = true;
    this.flusher.stop();
    for (const s of this.segments) {
      try {
        if (this.flush !== 'never' || this.flusher.isDirty(s)) s.syncNow();
      } catch (err) {
        this.logger?.error({ err, topic: this.topic, partition: this.partition }, 'fsync at close failed');
      }
      s.close();
    }
    this.listeners.clear();
  }

  /** Closes and removes the partition's directory. */
  async destroy(): Promise<void> {
    this.release();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Closes the files without syncing or waiting (a failed open or create gives them back). */
  release(): void {
    this.closed = true;
    this.flusher.stop();
    for (const s of this.segments) s.close();
    this.listeners.clear();
  }
}

/** How a failed fsync reads to the appends that waited on it. */
function syncFailure(err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  return new UnavailableError(`fsync failed: ${e.code ?? e.message}`, e.code === 'ENOSPC' ? 'DISK_FULL' : 'FSYNC_FAILED');
}

export function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

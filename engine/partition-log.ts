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
import { type BatchHeader, checkBatch, decodeBatchRecords, setBaseOffset } from './codec/record-batch.ts';
import { BadRequestError, OffsetOutOfRangeError, TooLargeError, UnavailableError } from './errors.ts';
import { type FlushPolicy, GroupCommit } from './flush.ts';
import { batchBytesMax, segmentBytesDefault, segmentMsDefault, flushMsDefault } from './limits.ts';
import type { AppendResult, CommitListener, LogPartition, ReadResult } from './log.ts';
import type { Logger } from './logger.ts';
import { recoverSegment } from './recovery.ts';
import { Segment, parseSegmentFileName } from './segment.ts';

export interface PartitionLogOptions {
  segmentBytes?: number;
  segmentMs?: number;
  /** -1 or absent: keep everything. */
  retentionBytes?: number;
  retentionMs?: number;
  flush?: FlushPolicy;
  flushMs?: number;
  logger?: Logger;
}

/** A read of the local engine: the segment is the engine's own. */
export interface SegmentReadResult extends ReadResult {
  segment: Segment;
}

interface Pending {
  segment: Segment;
  /** Where the batch starts and ends in `segment`. */
  start: number;
  end: number;
  nextOffset: number;
  bytes: Uint8Array;
  firstOffset: number;
  result: AppendResult;
  /** Under `flush: always`: settles the append once its sync succeeded or failed. */
  resolve?: (r: AppendResult) => void;
  reject?: (err: Error) => void;
}

export class PartitionLog implements LogPartition {
  private segments: Segment[] = [];
  private nextOffsetValue = 0;
  private hwValue = 0;
  private readonly pending: Pending[] = [];
  private readonly dirty = new Set<Segment>();
  private readonly listeners = new Set<CommitListener>();
  private readonly groupCommit: GroupCommit;
  private intervalTimer: NodeJS.Timeout | null = null;
  private closed = false;
  readonly segmentBytes: number;
  readonly segmentMs: number;
  retentionBytes: number;
  retentionMs: number;
  readonly flush: FlushPolicy;
  private readonly logger: Logger | undefined;

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
    this.logger = opts.logger;
    this.groupCommit = new GroupCommit(() => this.syncDirty());
    if (this.flush === 'interval') {
      this.intervalTimer = setInterval(() => {
        if (this.dirty.size > 0) this.groupCommit.sync().catch((err) => this.logger?.error({ err, topic, partition }, 'interval fsync failed'));
      }, opts.flushMs ?? flushMsDefault);
      this.intervalTimer.unref();
    }
  }

  /** Opens the partition directory, recovering the newest segment (creates it when absent). */
  static open(dir: string, topic: string, partition: number, epoch: string, opts: PartitionLogOptions = {}): PartitionLog {
    fs.mkdirSync(dir, { recursive: true });
    const log = new PartitionLog(dir, topic, partition, epoch, opts);
    const names = fs.readdirSync(dir);
    const bases = names.map(parseSegmentFileName).filter((b): b is number => b !== null).sort((a, b) => a - b);
    // Index files whose log is gone are leftovers of a deletion cut short.
    for (const n of names) {
      const m = /^(\d{20})\.(index|timeindex)$/.exec(n);
      if (m && !bases.includes(Number(m[1]))) fs.rmSync(path.join(dir, n), { force: true });
    }
    const mapHint = log.mapBytesHint();
    if (bases.length === 0) bases.push(0);
    for (let i = 0; i < bases.length; i++) {
      const seg = Segment.open(dir, bases[i], mapHint);
      const newest = i === bases.length - 1;
      // The newest segment may hold a torn tail: walk it whole. Older ones were synced at
      // roll; trust their indexes when sane and walk only past the last entry.
      const trusted =
        !newest &&
        seg.offsetIndex.isSane(seg.size) &&
        seg.loadTail() &&
        seg.timeIndex.isSane(seg.nextOffset - seg.baseOffset) &&
        seg.timeIndexMatches();
      if (!trusted) {
        const report = recoverSegment(seg);
        if (report.truncatedBytes > 0) {
          log.logger?.warn({ topic, partition, ...report }, 'recovery cut a damaged or torn segment tail');
        }
      }
      seg.readable = seg.size;
      log.segments.push(seg);
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
   * as `append` does.
   */
  appendStamped(batch: Uint8Array): Promise<AppendResult> {
    return this.appendWith(batch, false);
  }

  private appendWith(batch: Uint8Array, stamp: boolean): Promise<AppendResult> {
    let entry: Pending;
    try {
      entry = this.appendNow(batch, stamp);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.flush !== 'always') return Promise.resolve(entry.result);
    // Settled by syncDirty: committed after its sync, or rejected when a sync failed and
    // the tail was cut. The group commit's own promise says nothing about this entry.
    const settled = new Promise<AppendResult>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this.groupCommit.sync().catch(() => {});
    return settled;
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError(`partition ${this.topic}-${this.partition} is closed`, 'CLOSED');
  }

  private appendNow(batch: Uint8Array, stamp: boolean): Pending {
    this.assertOpen();
    if (batch.length > batchBytesMax) throw new TooLargeError(`batch of ${batch.length} bytes exceeds ${batchBytesMax}`);
    const h: BatchHeader = checkBatch(batch, 0, batch.length, batchBytesMax);
    if (h.size !== batch.length) throw new BadRequestError('bytes after the batch', 'TRAILING_BYTES');
    const baseOffset = this.nextOffsetValue;
    if (stamp) {
      setBaseOffset(batch, 0, baseOffset);
      h.baseOffset = baseOffset;
    } else if (h.baseOffset !== baseOffset) {
      throw new BadRequestError(`batch starts at offset ${h.baseOffset}, the log at ${baseOffset}`, 'OFFSET_GAP');
    }
    this.maybeRoll(batch.length, h.baseTimestamp);
    const seg = this.active;
    const start = seg.append(batch, h);
    this.nextOffsetValue = baseOffset + h.recordCount;
    const result = { baseOffset, lastOffset: baseOffset + h.recordCount - 1, recordCount: h.recordCount };
    const entry: Pending = { segment: seg, start, end: seg.size, nextOffset: this.nextOffsetValue, bytes: batch, firstOffset: baseOffset, result };
    if (this.flush === 'always') {
      this.pending.push(entry);
      this.dirty.add(seg);
    } else {
      if (this.flush === 'interval') this.dirty.add(seg);
      this.commit(entry);
    }
    return entry;
  }

  private commit(e: Pending): void {
    e.segment.readable = e.end;
    this.hwValue = e.nextOffset;
    for (const l of this.listeners) {
      try {
        l(e.bytes, e.firstOffset, e.nextOffset);
      } catch (err) {
        this.logger?.error({ err }, 'commit listener threw');
      }
    }
  }

  private async syncDirty(): Promise<void> {
    const upTo = this.pending.length;
    const segs = [...this.dirty];
    this.dirty.clear();
    try {
      await Promise.all(segs.map((s) => s.sync()));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const failure = new UnavailableError(`fsync failed: ${e.code ?? e.message}`, e.code === 'ENOSPC' ? 'DISK_FULL' : 'FSYNC_FAILED');
      this.rollBackPending(failure);
      throw failure;
    }
    for (const e of this.pending.splice(0, upTo)) {
      this.commit(e);
      e.resolve?.(e.result);
    }
  }

  /**
   * After a failed fsync nothing unsynced can be trusted to be on disk (Linux may already have
   * dropped the dirty pages), and nobody has seen it: cut the log back to the first pending
   * batch, so that what follows is written again at the same offsets, and reject every
   * pending append. Segments rolled since then held only pending batches and go too.
   */
  private rollBackPending(failure: Error): void {
    const dropped = this.pending.splice(0);
    if (dropped.length === 0) return;
    const first = dropped[0];
    this.logger?.error({ topic: this.topic, partition: this.partition, from: first.firstOffset, batches: dropped.length, err: failure }, 'fsync failed: cutting the unsynced tail');
    while (this.segments.length > 1 && this.active !== first.segment) this.segments.pop()!.delete();
    try {
      first.segment.truncateFile(first.start);
      recoverSegment(first.segment);
      first.segment.readable = Math.min(first.segment.readable, first.segment.size);
      this.dirty.clear();
      this.nextOffsetValue = first.firstOffset;
    } catch (err) {
      // Cannot even cut the tail: refuse further writes until the partition is reopened.
      this.closed = true;
      this.logger?.error({ err, topic: this.topic, partition: this.partition }, 'cannot cut the unsynced tail; the partition is closed');
    }
    for (const e of dropped) e.reject?.(failure);
  }

  private maybeRoll(incoming: number, timestamp: number): void {
    const seg = this.active;
    if (seg.size === 0) return;
    const full = seg.size + incoming > this.segmentBytes;
    const old = timestamp - seg.firstTimestamp > this.segmentMs;
    if (full || old) this.roll();
  }

  /** Starts a new active segment at the log end; the old one is synced by the next commit. */
  roll(): void {
    const old = this.active;
    if (old.size === 0) return;
    let seg: Segment;
    try {
      seg = Segment.open(this.dir, this.nextOffsetValue, this.mapBytesHint());
      syncDir(this.dir);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new UnavailableError(`cannot create segment: ${e.code ?? e.message}`, e.code === 'ENOSPC' ? 'DISK_FULL' : 'IO_ERROR');
    }
    if (this.flush !== 'always') this.dirty.add(old);
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
    this.rejectPending(new UnavailableError(`partition ${this.topic}-${this.partition} was reset`, 'CLOSED'));
    for (const s of this.segments) s.delete();
    this.segments = [];
    this.dirty.clear();
    let seg: Segment;
    try {
      seg = Segment.open(this.dir, offset, this.mapBytesHint());
      syncDir(this.dir);
    } catch (err) {
      this.closed = true;
      const e = err as NodeJS.ErrnoException;
      throw new UnavailableError(`cannot create segment: ${e.code ?? e.message}`, e.code === 'ENOSPC' ? 'DISK_FULL' : 'IO_ERROR');
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
    this.rejectPending(new UnavailableError(`partition ${this.topic}-${this.partition} was cut back`, 'CLOSED'));
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
        for (const ext of ['index', 'timeindex']) fs.rmSync(file.replace(/\.log$/, `.${ext}`), { force: true });
        fs.renameSync(tmp, file);
        syncDir(this.dir);
        const seg = Segment.open(this.dir, old.baseOffset, this.mapBytesHint());
        recoverSegment(seg);
        seg.readable = seg.size;
        this.segments[this.segments.length - 1] = seg;
      } catch (err) {
        this.closed = true;
        const e = err as NodeJS.ErrnoException;
        throw new UnavailableError(`cannot cut ${file}: ${e.code ?? e.message}`, e.code === 'ENOSPC' ? 'DISK_FULL' : 'IO_ERROR');
      }
    }
    this.dirty.clear();
    this.nextOffsetValue = Math.max(this.active.nextOffset, this.active.baseOffset);
    this.hwValue = this.nextOffsetValue;
    this.logger?.warn({ topic: this.topic, partition: this.partition, offset, end: this.nextOffsetValue }, 'log cut back');
    return this.nextOffsetValue;
  }

  private rejectPending(err: Error): void {
    for (const e of this.pending.splice(0)) e.reject?.(err);
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
    let i = this.segmentIndexFor(offset);
    for (; i < this.segments.length; i++) {
      const seg = this.segments[i];
      const start = seg.positionOf(offset);
      if (start >= seg.readable) continue;
      let end = start;
      let next = offset;
      while (end < seg.readable) {
        const size = seg.batchSizeAt(end);
        if (end > start && end + size - start > maxBytes) break;
        next = seg.batchNextOffsetAt(end);
        end += size;
      }
      const bytes = seg.view(start, end - start);
      const firstOffset = seg.batchBaseOffsetAt(start);
      return { bytes, segment: seg, position: start, firstOffset, nextOffset: next };
    }
    return null;
  }

  private segmentIndexFor(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.segments[mid].baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Offset of the first visible record with timestamp >= `timestamp`, or hw when none is. */
  offsetForTime(timestamp: number): number {
    this.assertOpen();
    for (const seg of this.segments) {
      if (seg.maxTimestamp < timestamp) continue;
      let pos = seg.positionForTime(timestamp);
      while (pos < seg.readable) {
        const h = seg.headerAt(pos);
        if (h.maxTimestamp >= timestamp) {
          for (const r of decodeBatchRecords(seg.view(pos, h.size), 0)) if (r.timestamp >= timestamp) return r.offset;
        }
        pos += h.size;
      }
    }
    return this.hwValue;
  }

  /**
   * Deletes whole old segments past the retention limits; offsets stay as they are. The
   * active segment is rolled first when it alone is past the time limit.
   */
  enforceRetention(now = Date.now()): number {
    // A closed log must not roll (create a file) or delete anything.
    if (this.closed) return 0;
    let deleted = 0;
    const deletable = (seg: Segment): boolean => seg !== this.active && seg.readable === seg.size && seg.nextOffset <= this.hwValue;
    if (this.retentionMs >= 0) {
      const active = this.active;
      if (active.size > 0 && active.readable === active.size && now - active.maxTimestamp > this.retentionMs && this.pending.length === 0) {
        this.roll();
      }
      while (this.segments.length > 1 && deletable(this.segments[0]) && now - this.segments[0].maxTimestamp > this.retentionMs) {
        this.segments.shift()!.delete();
        deleted++;
      }
    }
    if (this.retentionBytes >= 0) {
      let total = this.bytes;
      while (this.segments.length > 1 && deletable(this.segments[0]) && total - this.segments[0].size >= this.retentionBytes) {
        const seg = this.segments.shift()!;
        total -= seg.size;
        seg.delete();
        deleted++;
      }
    }
    if (deleted > 0) this.logger?.info({ topic: this.topic, partition: this.partition, deleted, start: this.startOffset }, 'retention deleted segments');
    return deleted;
  }

  /** Waits for pending syncs, syncs everything, closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.flush === 'always' && this.pending.length > 0) await this.groupCommit.sync().catch(() => {});
    this.closed = true;
    if (this.intervalTimer) clearInterval(this.intervalTimer);
    for (const s of this.segments) {
      try {
        if (this.flush !== 'never' || this.dirty.has(s)) s.syncNow();
      } catch (err) {
        this.logger?.error({ err, topic: this.topic, partition: this.partition }, 'fsync at close failed');
      }
      s.close();
    }
    this.listeners.clear();
  }

  /** Closes and removes the partition's directory. */
  async destroy(): Promise<void> {
    this.closed = true;
    if (this.intervalTimer) clearInterval(this.intervalTimer);
    for (const s of this.segments) s.close();
    this.listeners.clear();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

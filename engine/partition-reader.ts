/**
 * A partition's segments as a thread that does not write them sees them: it maps the files
 * itself and reads committed batches from them, so that a commit notice from the log
 * thread is an offset and a position, never a copy of the bytes.
 *
 * It starts from the partition's segment spans (LogPartition.segmentSpans: each file with
 * its visible bytes) and is then kept up to date by its owner in order: `commit` for each
 * run of batches that became visible (a segment the notice names that it has not seen is a
 * newly rolled one), `setStart` when retention moved the start. Reads are bounded by what it
 * was told, so it may lag the log thread by a notice but never reads past it.
 *
 * `read` and `offsetForTime` keep PartitionLog's contract (whole batches from the one
 * holding the offset, all from one segment; OffsetOutOfRangeError below the start or
 * above the hw; `gap` set when the offset falls in a run of offsets no segment holds, lost to
 * storage damage before the log opened; a stored batch that fails its checks, CRC included,
 * is UNAVAILABLE CORRUPT_STORED_BATCH, logged). A segment that retention deleted before this
 * thread mapped it moves the start past it: the read is then below the start, and the
 * caller says so (a `gap`).
 */
import { CorruptBatchError, OffsetOutOfRangeError, UnavailableError } from './errors.ts';
import type { ReadResult, SegmentFile, SegmentSpan } from './log.ts';
import type { Logger } from './logger.ts';
import { SegmentGoneError, SegmentReader } from './segment-reader.ts';
import { storedBatchDamaged } from './batch-verification.ts';
import { readRun, segmentIndexFor } from './segment-search.ts';

export interface SegmentReadView extends ReadResult {
  segment: SegmentReader & SegmentFile;
}

/** Who the partition is, for what a reader logs (a damaged batch). */
export interface PartitionReaderOptions {
  topic: string;
  partition: number;
  logger?: Logger;
}

export class PartitionReader {
  private segments: SegmentReader[] = [];
  /** First offset still stored, as last told (or found: a segment that was gone). */
  start: number;
  /** The offset after the last visible record, as last told. */
  hw: number;
  private closed = false;

  constructor(
    /** The partition's directory: segments the notices name are found there. */
    readonly dir: string,
    spans: readonly SegmentSpan[],
    start: number,
    hw: number,
    private readonly opts: PartitionReaderOptions,
  ) {
    this.start = start;
    this.hw = hw;
    for (const s of spans) {
      const seg = new SegmentReader(dir, s.baseOffset);
      seg.readable = s.readableBytes;
      this.segments.push(seg);
    }
  }

  /** Bytes visible in the segments known here. */
  get bytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.readable;
    return n;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** The segments known here with their visible bytes (see LogPartition.segmentSpans). */
  spans(): SegmentSpan[] {
    return this.segments.map((s) => ({ logPath: s.logPath, baseOffset: s.baseOffset, readableBytes: s.readable }));
  }

  /**
   * Batches `[position, end)` of the segment whose first offset is `segmentBase`, offsets
   * `[firstOffset, nextOffset)`, became visible. Returns the segment, for a view of them.
   */
  commit(segmentBase: number, position: number, end: number, firstOffset: number, nextOffset: number): SegmentReader {
    let seg = this.segments[this.segments.length - 1];
    if (seg === undefined || seg.baseOffset !== segmentBase) {
      seg = this.segments.find((s) => s.baseOffset === segmentBase) ?? this.addSegment(segmentBase);
    }
    seg.committed(firstOffset, position, end);
    if (nextOffset > this.hw) this.hw = nextOffset;
    return seg;
  }

  private addSegment(baseOffset: number): SegmentReader {
    const seg = new SegmentReader(this.dir, baseOffset);
    this.segments.push(seg);
    this.segments.sort((a, b) => a.baseOffset - b.baseOffset);
    return seg;
  }

  /** Retention moved the start: segments wholly below it are let go. */
  setStart(start: number): void {
    if (start <= this.start) return;
    this.start = start;
    while (this.segments.length > 1 && this.segments[1].baseOffset <= start) this.segments.shift()!.close();
  }

  /** See LogPartition.read. */
  read(offset: number, maxBytes: number): SegmentReadView | null {
    if (this.closed) throw new OffsetOutOfRangeError(`partition reader of ${this.dir} is closed`);
    if (!Number.isSafeInteger(offset) || offset < this.start) throw new OffsetOutOfRangeError(`offset ${offset} is below the log start ${this.start}`);
    if (offset > this.hw) throw new OffsetOutOfRangeError(`offset ${offset} is above the high watermark ${this.hw}`);
    if (offset === this.hw) return null;
    for (let i = segmentIndexFor(this.segments, offset); i < this.segments.length; i++) {
      const seg = this.segments[i];
      try {
        const run = readRun(seg, offset, maxBytes);
        if (run !== null) return run;
      } catch (err) {
        if (err instanceof CorruptBatchError) throw this.damaged(err, seg, offset);
        if (!(err instanceof SegmentGoneError)) throw err;
        // Retention took it (and every older one) before it was mapped here.
        const after = this.segments[i + 1]?.baseOffset ?? this.hw;
        this.setStart(after);
        throw new OffsetOutOfRangeError(`offset ${offset} is below the log start ${this.start}`);
      }
    }
    return null;
  }

  /** See LogPartition.offsetForTime. */
  offsetForTime(timestamp: number): number {
    for (const seg of this.segments) {
      try {
        const o = seg.offsetForTime(timestamp);
        if (o !== null && o >= this.start) return o;
      } catch (err) {
        if (err instanceof CorruptBatchError) throw this.damaged(err, seg, seg.baseOffset);
        if (!(err instanceof SegmentGoneError)) throw err;
      }
    }
    return this.hw;
  }

  /**
   * A stored batch that fails its checks is the server's fault, never the reader's request:
   * UNAVAILABLE (CORRUPT_STORED_BATCH), logged with where it lies, as on the log thread.
   */
  private damaged(err: CorruptBatchError, seg: SegmentReader, offset: number): UnavailableError {
    return storedBatchDamaged(err, this.opts, seg.logPath, offset);
  }

  close(): void {
    this.closed = true;
    for (const s of this.segments) s.close();
    this.segments = [];
  }
}

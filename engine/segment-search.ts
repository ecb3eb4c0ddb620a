/**
 * Searches shared by the log thread's partition (partition-log.ts) and a front thread's
 * reader of it (partition-reader.ts): the segment an offset falls in, the run of batches a
 * read hands out from one segment, and the first record at or after a time from a batch
 * boundary of one segment.
 */
import { readBatchHeader } from './codec/record-batch.ts';
import { NO_RECORD_LIMITS, scanBatchRecords } from './codec/record-scan.ts';

/** Index of the last segment whose base is at or below `offset` (0 when none is), by bisection of segments sorted by base. */
export function segmentIndexFor(segments: readonly { baseOffset: number }[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (segments[mid].baseOffset <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** What a time search needs of a segment, on either thread. */
export interface ScannableSegment {
  readonly readable: number;
  /** The run of whole batches from `start`, each checked once (batch-verification.ts); maxBytes 0 = one batch. */
  checkedRun(start: number, maxBytes: number): { end: number; nextOffset: number };
  view(position: number, length: number): Uint8Array;
}

/**
 * Offset of the first record with timestamp >= `timestamp`, walking batches from `position`
 * (a batch boundary) to the end of what is readable; null when none is. Each batch is checked
 * (CRC included, once) and walked without decoding its records.
 */
export function firstOffsetAtTime(seg: ScannableSegment, position: number, timestamp: number): number | null {
  let pos = position;
  while (pos < seg.readable) {
    const { end } = seg.checkedRun(pos, 0);
    const view = seg.view(pos, end - pos);
    const h = readBatchHeader(view, 0);
    if (h.maxTimestamp >= timestamp) {
      let found = -1;
      scanBatchRecords(view, 0, h, NO_RECORD_LIMITS, (delta, ts) => {
        if (ts < timestamp) return false;
        found = h.baseOffset + delta;
        return true;
      });
      if (found >= 0) return found;
    }
    pos = end;
  }
  return null;
}

/** What a read needs of a segment, on either thread. */
export interface ReadableSegment extends ScannableSegment {
  readonly baseOffset: number;
  /** Position of the batch holding `offset`, or `readable` when none below it does. */
  positionOf(offset: number): number;
  batchBaseOffsetAt(position: number): number;
  view(position: number, length: number): Buffer;
}

/** One read's answer from a segment (engine/log.ts ReadResult, typed with the segment). */
export interface SegmentRun<S> {
  bytes: Buffer;
  segment: S;
  position: number;
  firstOffset: number;
  nextOffset: number;
  gap?: { from: number; to: number };
}

/**
 * The whole batches from the one holding `offset` (up to `maxBytes`, at least one), checked
 * (batch-verification.ts), or null when the segment holds nothing readable there. Segments
 * are contiguous unless one was lost to damage (found at open): a segment that starts past
 * `offset` says so with a `gap`.
 */
export function readRun<S extends ReadableSegment>(seg: S, offset: number, maxBytes: number): SegmentRun<S> | null {
  const start = seg.positionOf(offset);
  if (start >= seg.readable) return null;
  const { end, nextOffset } = seg.checkedRun(start, maxBytes);
  const run: SegmentRun<S> = { bytes: seg.view(start, end - start), segment: seg, position: start, firstOffset: seg.batchBaseOffsetAt(start), nextOffset };
  if (seg.baseOffset > offset) run.gap = { from: offset, to: seg.baseOffset };
  return run;
}

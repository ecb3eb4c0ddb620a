/**
 * Stored batches are checked once before any reader is handed them: a segment file may have
 * been damaged on disk since it was written (or since the log trusted it on its indexes at
 * open), and a batch that fails its checks must never reach a client as if it were data.
 * Both readers of segment files use this: the log thread's (segment.ts) and the one of a
 * thread that maps the files itself (segment-reader.ts). Each remembers which byte ranges it
 * has found sound, so a batch is checked (its CRC computed) once per reader, not per read.
 */
import { BATCH_HEADER_BYTES, checkBatch } from './codec/record-batch.ts';
import { CorruptBatchError, UnavailableError } from './errors.ts';
import { batchBytesMax, verifiedRangesMax } from './limits.ts';
import type { Logger } from './logger.ts';

/**
 * Byte ranges [start, end) of whole batches known to be sound (CRC included): appended by
 * this process after validation, walked by recovery, or checked by an earlier read. Sorted,
 * disjoint, merged when they touch; at most verifiedRangesMax of them (past it the older
 * ones are forgotten, and checked again when read).
 */
export class VerifiedRanges {
  /** Flattened pairs: start, end, start, end, ... */
  private v: number[] = [];

  /** How many disjoint ranges are remembered. */
  get count(): number {
    return this.v.length / 2;
  }

  /** Records that the whole batches in [start, end) are sound. */
  mark(start: number, end: number): void {
    if (end <= start) return;
    const v = this.v;
    const n = v.length;
    // Appends and commit notices extend the last range, or start one past it: no copy.
    if (n > 0 && v[n - 2] <= start && start <= v[n - 1]) {
      if (end > v[n - 1]) v[n - 1] = end;
      return;
    }
    if (n === 0 || v[n - 1] < start) {
      if (n + 2 > 2 * verifiedRangesMax) this.v = [start, end];
      else v.push(start, end);
      return;
    }
    // Ranges are few (one per place reads started); merge [start, end) in.
    const out: number[] = [];
    let i = 0;
    while (i < v.length && v[i + 1] < start) out.push(v[i++], v[i++]);
    let s = start;
    let e = end;
    while (i < v.length && v[i] <= e) {
      s = Math.min(s, v[i]);
      e = Math.max(e, v[i + 1]);
      i += 2;
    }
    out.push(s, e);
    while (i < v.length) out.push(v[i++]);
    // Bounded: past this many ranges, keep the one just added (the rest is checked again).
    this.v = out.length > 2 * verifiedRangesMax ? [s, e] : out;
  }

  /** The end of the sound range holding `position`, or `position` when none does. */
  endOf(position: number): number {
    const v = this.v;
    for (let i = 0; i < v.length; i += 2) if (v[i] <= position && position < v[i + 1]) return v[i + 1];
    return position;
  }

  /** The file was cut to `bytes`: nothing at or past it is known any more. */
  cutAt(bytes: number): void {
    const v: number[] = [];
    for (let i = 0; i < this.v.length; i += 2) {
      if (this.v[i] < bytes) v.push(this.v[i], Math.min(bytes, this.v[i + 1]));
    }
    this.v = v;
  }

  clear(): void {
    this.v = [];
  }
}

/** What `checkedRun` reads of a segment file: its visible bytes, as its reader maps them. */
export interface StoredBatches {
  readonly logPath: string;
  /** Bytes from the start of the file that may be read: whole, visible batches. */
  readonly readable: number;
  /** The batch's length field plus the 12 bytes before it (no check). */
  batchSizeAt(position: number): number;
  /** The offset after the batch's last record (no check). */
  batchNextOffsetAt(position: number): number;
  view(position: number, length: number): Uint8Array;
}

/**
 * The run of whole batches from `start` (a batch boundary below `readable`) that a read
 * hands out: up to `maxBytes` (at least one batch), each one's length bounded
 * (`size >= 61`, `position + size <= readable`) before it is trusted, and each one not yet
 * known sound checked whole (magic, CRC) on the mapped bytes, then marked sound. A damaged
 * batch throws CorruptBatchError: the bytes on disk are not what was written, and no reader
 * gets them (the log turns it into UNAVAILABLE, CORRUPT_STORED_BATCH).
 */
export function checkedRun(src: StoredBatches, verified: VerifiedRanges, start: number, maxBytes: number): { end: number; nextOffset: number } {
  const readable = src.readable;
  let end = start;
  let next = -1;
  let sound = verified.endOf(start);
  while (end < readable) {
    const size = boundedSizeAt(src, end, readable);
    if (end > start && end + size - start > maxBytes) break;
    if (end >= sound) {
      checkBatch(src.view(end, size), 0, size, batchBytesMax);
      verified.mark(end, end + size);
      sound = verified.endOf(end);
    }
    next = src.batchNextOffsetAt(end);
    end += size;
  }
  return { end, nextOffset: next };
}

/**
 * The length of the batch at `position` once bounded (`>= 61`, ending at or before `limit`):
 * a length field damaged on disk must neither send a walk past the file nor stall it in place.
 */
export function boundedSizeAt(src: Pick<StoredBatches, 'logPath' | 'batchSizeAt'>, position: number, limit: number): number {
  if (position + BATCH_HEADER_BYTES > limit) throw new CorruptBatchError(`stored batch at ${position} of ${src.logPath} is cut short`, 'TRUNCATED');
  const size = src.batchSizeAt(position);
  if (size < BATCH_HEADER_BYTES || position + size > limit) {
    throw new CorruptBatchError(`stored batch at ${position} of ${src.logPath} has length ${size}, out of range`, 'BAD_LENGTH');
  }
  return size;
}

/**
 * A stored batch that fails its checks is the server's fault, never the reader's request:
 * UNAVAILABLE (CORRUPT_STORED_BATCH), logged with where it lies, on whichever thread read it.
 */
export function storedBatchDamaged(err: CorruptBatchError, where: { topic: string; partition: number; logger?: Logger }, logPath: string, offset: number): UnavailableError {
  const { topic, partition, logger } = where;
  logger?.error({ topic, partition, segment: logPath, offset, reason: err.reason, err }, 'a stored batch is damaged: reads from it fail until the segment is repaired or set aside');
  return new UnavailableError(`partition ${topic}-${partition} holds a damaged batch near offset ${offset} (${err.message})`, 'CORRUPT_STORED_BATCH');
}

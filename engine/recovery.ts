/**
 * What a partition's files are worth when it opens, and the walk that repairs them.
 *
 * `loadSegments` makes the open-time decision for each segment: trust it or rebuild it.
 * The newest segment may hold a torn tail (the process stopped mid-append): it is always
 * walked whole. Older ones were synced when the log rolled past them: their indexes are
 * trusted when they pass a sanity check, and only the batches after the last index entry
 * are walked; any doubt and the segment is walked whole, like the newest.
 *
 * `recoverSegment` is that walk, as a log segment's recovery is done in the Kafka format:
 * from the start, bounding each length before trusting it (`size <= batchBytesMax`,
 * `position + size <= fileBytes`), then magic, CRC and offset continuity; stop at the first
 * bad batch, cut the file there and rebuild both indexes from what survived. Never throws
 * for damaged bytes: it reports what it cut.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkBatch } from './codec/record-batch.ts';
import { CorruptBatchError } from './errors.ts';
import { batchBytesMax } from './limits.ts';
import type { Logger } from './logger.ts';
import { Segment, parseSegmentFileName } from './segment.ts';

/** Who the segments belong to, for the log lines recovery writes. */
export interface LoadContext {
  topic: string;
  partition: number;
  logger?: Logger;
}

/**
 * Opens every segment of a partition directory, oldest first, trusting or rebuilding each
 * (see above); creates segment 0 when there is none. Index files whose log is gone are
 * leftovers of a deletion cut short and are removed: they are derived data.
 */
export function loadSegments(dir: string, mapBytesHint: number, ctx: LoadContext): Segment[] {
  const names = fs.readdirSync(dir);
  const bases = names.map(parseSegmentFileName).filter((b): b is number => b !== null).sort((a, b) => a - b);
  for (const n of names) {
    const m = /^(\d{20})\.(index|timeindex)$/.exec(n);
    if (m && !bases.includes(Number(m[1]))) fs.rmSync(path.join(dir, n), { force: true });
  }
  if (bases.length === 0) bases.push(0);
  const segments: Segment[] = [];
  try {
    for (let i = 0; i < bases.length; i++) {
      const seg = Segment.open(dir, bases[i], mapBytesHint);
      segments.push(seg);
      if (!(i < bases.length - 1 && indexesTrusted(seg))) {
        const report = recoverSegment(seg);
        if (report.truncatedBytes > 0) {
          ctx.logger?.warn({ topic: ctx.topic, partition: ctx.partition, ...report }, 'recovery cut a damaged or torn segment tail');
        }
      }
      seg.readable = seg.size;
    }
  } catch (err) {
    // Out of descriptors, or an I/O error: give back what was opened before failing.
    for (const seg of segments) seg.close();
    throw err;
  }
  return segments;
}

/**
 * An older segment's indexes are trusted when the offset index is sane, the batches after
 * its last entry walk cleanly (loading the segment's end and newest timestamp), and the time
 * index is sane and agrees with the offset index.
 */
function indexesTrusted(seg: Segment): boolean {
  return seg.offsetIndex.isSane(seg.size) && seg.loadTail() && seg.timeIndex.isSane(seg.nextOffset - seg.baseOffset) && seg.timeIndexMatches();
}

export interface RecoveryReport {
  segment: string;
  validBytes: number;
  truncatedBytes: number;
  batches: number;
  /** Why the walk stopped early, when it did. */
  reason?: string;
}

export function recoverSegment(seg: Segment): RecoveryReport {
  const fileBytes = seg.fileBytes();
  seg.resetForRebuild();
  const buf = fileBytes > 0 ? seg.view(0, fileBytes) : new Uint8Array(0);
  let pos = 0;
  let batches = 0;
  let expected = seg.baseOffset;
  let reason: string | undefined;
  while (pos < fileBytes) {
    try {
      const h = checkBatch(buf, pos, fileBytes, batchBytesMax);
      // The first batch starts the segment exactly; later ones continue without a gap.
      if (batches === 0 ? h.baseOffset !== seg.baseOffset : h.baseOffset !== expected) {
        throw new CorruptBatchError(`batch at ${pos} has baseOffset ${h.baseOffset}, expected ${expected}`, 'OFFSET_GAP');
      }
      seg.indexBatch(pos, h);
      seg.size = pos + h.size;
      expected = h.baseOffset + h.recordCount;
      pos += h.size;
      batches++;
    } catch (err) {
      reason = err instanceof CorruptBatchError ? err.reason : String(err);
      break;
    }
  }
  if (pos < fileBytes) seg.truncateFile(pos);
  return { segment: seg.logPath, validBytes: pos, truncatedBytes: fileBytes - pos, batches, reason };
}

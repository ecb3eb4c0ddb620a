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
 * (see above), then checks that they follow on from each other (`checkContinuity`); creates
 * segment 0 when there is none. Index files whose log is gone are leftovers of a deletion
 * cut short and are removed: they are derived data.
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
  const walked = new Set<Segment>();
  const lostFound = lostFoundOf(dir);
  const walk = (seg: Segment, older: boolean): void => {
    const report = recoverSegment(seg, older ? lostFound : undefined);
    walked.add(seg);
    if (report.truncatedBytes === 0) return;
    if (older) {
      ctx.logger?.error({ topic: ctx.topic, partition: ctx.partition, ...report, keptIn: lostFound }, 'an older segment is damaged: it was cut at the damage, the bytes cut kept in lost+found/; readers get a gap there');
    } else {
      ctx.logger?.warn({ topic: ctx.topic, partition: ctx.partition, ...report }, 'recovery cut a damaged or torn segment tail');
    }
  };
  try {
    for (let i = 0; i < bases.length; i++) {
      const seg = Segment.open(dir, bases[i], mapBytesHint);
      segments.push(seg);
      const older = i < bases.length - 1;
      if (!(older && indexesTrusted(seg))) walk(seg, older);
    }
    const kept = checkContinuity(segments, dir, ctx);
    // When the newest segment was set aside, the one now newest was trusted as an older
    // one; as the newest it may hold a torn tail, so it is walked whole too.
    const newest = kept[kept.length - 1];
    if (!walked.has(newest)) walk(newest, false);
    for (const seg of kept) seg.readable = seg.size;
    return kept;
  } catch (err) {
    // Out of descriptors, or an I/O error: give back what was opened before failing.
    for (const seg of segments) seg.close();
    throw err;
  }
}

/** Where the bytes of a partition directory that recovery sets aside go: `<dataDir>/lost+found/<topic>-<partition>/`. */
function lostFoundOf(dir: string): string {
  return path.join(path.dirname(dir), 'lost+found', path.basename(dir));
}

/**
 * Each segment must start where the one before it ends. What does not is never deleted:
 * - an empty segment anywhere but last, or last but not at the log end (a stray
 *   `…999999.log` would otherwise move the log end, and the hw, to 999999): set aside;
 * - a segment that starts inside the one before it (an overlap: a file copied in): set
 *   aside, the earlier one kept;
 * - a segment that starts after the end of the one before it: a hole, offsets lost with a
 *   deleted or damaged segment. Kept, logged loudly, and reported to every reader that
 *   reaches it as a gap (PartitionLog.read), never skipped in silence.
 * Set aside means moved to `<dataDir>/lost+found/<topic>-<partition>/`, beside what the
 * log manager sets aside. Returns the segments kept, oldest first (at least one).
 */
function checkContinuity(segments: Segment[], dir: string, ctx: LoadContext): Segment[] {
  const kept: Segment[] = [];
  const aside = (seg: Segment, why: string): void => {
    const dest = lostFoundOf(dir);
    seg.moveTo(dest);
    ctx.logger?.error({ topic: ctx.topic, partition: ctx.partition, segment: path.basename(seg.logPath), bytes: seg.size, movedTo: dest, why }, 'a segment that does not fit the log was set aside in lost+found/ (not deleted)');
  };
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const last = i === segments.length - 1;
    if (kept.length === 0) {
      // The oldest: empty with others after it, it holds nothing and would misstate the start.
      if (seg.size === 0 && !last) aside(seg, 'an empty segment before others');
      else kept.push(seg);
      continue;
    }
    const end = kept[kept.length - 1].nextOffset;
    if (seg.size === 0) {
      if (last && seg.baseOffset === end) kept.push(seg);
      else aside(seg, seg.baseOffset > end ? `an empty segment beyond the log end ${end}` : `an empty segment inside the log (which runs to ${end})`);
      continue;
    }
    if (seg.baseOffset < end) {
      aside(seg, `it starts at ${seg.baseOffset}, inside the segment before it (which ends at ${end})`);
      continue;
    }
    if (seg.baseOffset > end) {
      ctx.logger?.error(
        { topic: ctx.topic, partition: ctx.partition, from: end, to: seg.baseOffset, before: path.basename(seg.logPath) },
        `offsets ${end}..${seg.baseOffset - 1} are missing: a segment was lost; readers get a gap there`,
      );
    }
    kept.push(seg);
  }
  return kept;
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

/**
 * `keepCutIn`: a directory where the bytes cut are first copied (as
 * `<baseOffset>.log.cut-at-<position>`). Given for older segments: they were synced when the
 * log rolled past them, so what fails there is damage to data that was whole, not a tail
 * torn by a crash, and it is kept for someone to look at rather than thrown away.
 */
export function recoverSegment(seg: Segment, keepCutIn?: string): RecoveryReport {
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
  if (pos < fileBytes) {
    if (keepCutIn !== undefined) {
      fs.mkdirSync(keepCutIn, { recursive: true });
      fs.writeFileSync(path.join(keepCutIn, `${path.basename(seg.logPath)}.cut-at-${pos}`), buf.subarray(pos, fileBytes));
    }
    seg.truncateFile(pos);
  }
  // Every batch left was walked whole, CRC included.
  seg.markVerified(0, pos);
  return { segment: seg.logPath, validBytes: pos, truncatedBytes: fileBytes - pos, batches, reason };
}

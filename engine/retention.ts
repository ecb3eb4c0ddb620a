/**
 * Retention: which of a partition's oldest segments may go. Whole segments only, never the
 * active one, never one a reader cannot fully see yet (unsynced bytes under `flush: always`,
 * or offsets above the hw), so retention cannot take back what was never shown nor cut a
 * batch in half. Offsets are not touched: the log start moves, the offsets after it stay.
 *
 * Two limits, either or both (-1 turns one off):
 * - time: a segment goes once its newest record is older than `retentionMs` (see
 *   `segmentTime` for a timestamp too far in the future). The active
 *   segment is rolled first when it alone is past the limit, so that an idle partition's
 *   last segment can go too (on the next pass);
 * - bytes: the oldest segments go while what is left stays at or above `retentionBytes`.
 *
 * The decisions live here, as functions of what a segment says about itself; the partition
 * log acts on them (rolls, unlinks, moves its start).
 */

export interface RetentionSettings {
  /** -1 keeps everything. */
  retentionMs: number;
  retentionBytes: number;
  /** How far a record timestamp may be ahead of the server's clock (see `segmentTime`). */
  timestampAheadMs: number;
}

/** What retention needs to know about a segment. */
export interface RetainedSegment {
  /** Bytes of whole batches in the file. */
  readonly size: number;
  /** Bytes readers may see (below `size` while an append waits for its fsync). */
  readonly readable: number;
  /** The offset after its last record. */
  readonly nextOffset: number;
  /** Largest record timestamp it holds, -Infinity when empty. */
  readonly maxTimestamp: number;
  /** Server time of its last append. */
  readonly lastAppendMs: number;
}

/**
 * The time retention judges a segment by: its newest record's timestamp, but never later
 * than its last append plus the tolerance producers get. Records are refused further ahead
 * than that, so for what was validated this is the newest timestamp itself; a timestamp
 * written before that check (the year 2100, say) would otherwise keep the segment, and
 * every segment after it, for ever.
 */
export function segmentTime(seg: RetainedSegment, settings: RetentionSettings): number {
  return Math.min(seg.maxTimestamp, seg.lastAppendMs + settings.timestampAheadMs);
}

/**
 * True when the active segment alone is past the time limit and should roll so a later
 * pass can delete it: it holds something, all of it visible, and no append waits on it.
 */
export function activeSegmentExpired(active: RetainedSegment, settings: RetentionSettings, now: number, appendsPending: boolean): boolean {
  if (settings.retentionMs < 0 || appendsPending) return false;
  return active.size > 0 && active.readable === active.size && now - segmentTime(active, settings) > settings.retentionMs;
}

/**
 * How many of the oldest `segments` (oldest first, the active one last) retention deletes
 * now: first those past the time limit, then, of what is left, those the byte limit lets go.
 */
export function expiredSegmentCount(segments: readonly RetainedSegment[], hw: number, settings: RetentionSettings, now: number): number {
  const last = segments.length - 1;
  // Never the active segment; never one with bytes or offsets readers have not seen.
  const deletable = (i: number): boolean => i < last && segments[i].readable === segments[i].size && segments[i].nextOffset <= hw;
  let n = 0;
  if (settings.retentionMs >= 0) {
    while (deletable(n) && now - segmentTime(segments[n], settings) > settings.retentionMs) n++;
  }
  if (settings.retentionBytes >= 0) {
    let total = 0;
    for (let i = n; i <= last; i++) total += segments[i].size;
    while (deletable(n) && total - segments[n].size >= settings.retentionBytes) {
      total -= segments[n].size;
      n++;
    }
  }
  return n;
}

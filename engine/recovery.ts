/**
 * Recovery of a segment after an unclean stop, as Kafka's LogSegment.recover does it:
 * walk the batches from the start, bounding each length before trusting it
 * (`size <= batchBytesMax`, `position + size <= fileBytes`), then magic, CRC and offset
 * continuity; stop at the first bad batch, cut the file there and rebuild both indexes
 * from what survived. Never throws for damaged bytes: it reports what it cut.
 */
import { checkBatch } from './codec/record-batch.ts';
import { CorruptBatchError } from './errors.ts';
import { batchBytesMax } from './limits.ts';
import type { Segment } from './segment.ts';

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

/**
 * One segment file as a reader on another thread sees it (partition-reader.ts). The log
 * thread appends to the file and says in commit notices how far it may be read
 * (`readable`); this side maps the file itself and never touches a byte at or past
 * `readable`, so that bytes being written, or cut again after a failed fsync, are never
 * read (and a page past the file's end, which would raise SIGBUS, never touched).
 *
 * Finding the batch that holds an offset works as in segment.ts, from a sparse index and a
 * walk over batch headers, but this side cannot trust the index files as their writer
 * does: they may be rewritten while read, or hold entries past `readable`. So an entry
 * from the `.index` file is checked against the log before it is used — it must point
 * inside the readable bytes at a batch header naming the offset it claims — and dropped
 * when it does not. The commit notices add exact entries of their own (`note`).
 *
 * Batches are checked before they are handed out as on the log thread (batch-verification.ts):
 * those a commit notice covered were validated by the log thread before it wrote them; any
 * other (a segment trusted on its indexes when the log opened) is checked whole, CRC
 * included, when first read here, and a damaged one throws CorruptBatchError. Every length
 * read from the file is bounded before a walk trusts it.
 *
 * The file descriptor is closed once the file is mapped: the mapping does not need it, and
 * every thread holding one per segment would eat into the process's descriptor budget. A
 * file found shorter than what was told readable, or replaced by another file under its name
 * since it was first mapped (a mirror cut back in cluster mode renames a new file over the
 * old one), is not mapped: reading it would touch pages past its end (SIGBUS) or other
 * bytes. The reader then says the segment is gone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { VerifiedRanges, boundedSizeAt, checkedRun } from './batch-verification.ts';
import { BATCH_HEADER_BYTES, MAGIC, readBatchHeader } from './codec/record-batch.ts';
import { firstOffsetAtTime } from './segment-search.ts';
import { indexIntervalBytes } from './limits.ts';
import { OFFSET_ENTRY_BYTES } from './offset-index.ts';
import { mapReadOnly, pageRound, segmentFileName } from './segment.ts';
import { TIME_ENTRY_BYTES } from './time-index.ts';

/** The smallest mapping made: an active segment then grows into it without a new mapping. */
const mapBytesMin = 64 * 1024 * 1024;

/**
 * The segment file is gone (retention or a topic deletion removed it before it was mapped
 * here), or is no longer the file this reader was told about (shorter, or another file).
 */
export class SegmentGoneError extends Error {
  constructor(readonly logPath: string) {
    super(`segment ${logPath} is gone`);
    this.name = 'SegmentGoneError';
  }
}

export class SegmentReader {
  /** Bytes from the start of the file that may be read: whole, visible batches. */
  readable = 0;
  private map: Buffer | null = null;
  private mapView: DataView | null = null;
  private mapCapacity = 0;
  /** Batch starts told by commit notices, ascending: exact. */
  private readonly noteOffsets: number[] = [];
  private readonly notePositions: number[] = [];
  /** Entries of the `.index` file, ascending relative offsets: checked before use. */
  private diskRel: number[] = [];
  private diskPos: number[] = [];
  private indexBytesRead = 0;
  /** `readable` when the `.index` file was last read: it is read again only after more became visible. */
  private indexReadAt = -1;
  /** The file first mapped (device and inode): a later mapping must be of the same file. */
  private fileId: string | null = null;
  /** Byte ranges known sound: told by commit notices, or checked by a read here. */
  readonly verified = new VerifiedRanges();

  constructor(
    readonly dir: string,
    readonly baseOffset: number,
  ) {}

  get logPath(): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, 'log'));
  }

  /** A view of `[position, position + length)`, which must lie below `readable`. */
  view(position: number, length: number): Buffer {
    const end = position + length;
    if (end > this.mapCapacity || this.map === null) this.remap(end);
    return this.map!.subarray(position, end);
  }

  private dataView(end: number): DataView {
    if (end > this.mapCapacity || this.mapView === null) this.remap(end);
    return this.mapView!;
  }

  private remap(atLeast: number): void {
    let fd: number;
    try {
      fd = fs.openSync(this.logPath, fs.constants.O_RDONLY);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SegmentGoneError(this.logPath);
      throw err;
    }
    try {
      const st = fs.fstatSync(fd);
      const id = `${st.dev}:${st.ino}`;
      if ((this.fileId !== null && id !== this.fileId) || st.size < this.readable) throw new SegmentGoneError(this.logPath);
      this.fileId = id;
      const cap = pageRound(Math.max(mapBytesMin, this.mapCapacity * 2, atLeast * 2));
      this.map = mapReadOnly(fd, cap);
      this.mapView = new DataView(this.map.buffer, this.map.byteOffset, this.map.byteLength);
      this.mapCapacity = cap;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Whole bytes of the batch at `position` (a batch boundary below `readable`). */
  batchSizeAt(position: number): number {
    return this.dataView(position + 12).getInt32(position + 8) + 12;
  }

  batchBaseOffsetAt(position: number): number {
    const dv = this.dataView(position + 8);
    return dv.getInt32(position) * 4294967296 + dv.getUint32(position + 4);
  }

  /** The offset after the last record of the batch at `position`. */
  batchNextOffsetAt(position: number): number {
    return this.batchBaseOffsetAt(position) + this.dataView(position + 27).getInt32(position + 23) + 1;
  }

  /**
   * Batches [position, end) became visible, the first holding `offset` first (a commit
   * notice): exact, and sound (the log thread validated them before writing them).
   */
  committed(offset: number, position: number, end: number): void {
    if (end > this.readable) this.readable = end;
    this.verified.mark(position, end);
    this.note(offset, position);
  }

  /** A batch that starts at `position` and holds `offset` first, from a commit notice: exact. */
  private note(offset: number, position: number): void {
    const n = this.notePositions.length;
    if (n > 0 && position - this.notePositions[n - 1] < indexIntervalBytes) return;
    if (n > 0 && offset <= this.noteOffsets[n - 1]) return;
    this.noteOffsets.push(offset);
    this.notePositions.push(position);
  }

  /** True when a batch lies whole below `readable` at `position` and starts at `offset`. */
  private holds(offset: number, position: number): boolean {
    if (position + BATCH_HEADER_BYTES > this.readable) return false;
    const dv = this.dataView(position + BATCH_HEADER_BYTES);
    if (dv.getInt8(position + 16) !== MAGIC) return false;
    const size = dv.getInt32(position + 8) + 12;
    return size >= BATCH_HEADER_BYTES && position + size <= this.readable && this.batchBaseOffsetAt(position) === offset;
  }

  /** Reads what was added to the `.index` file since the last read (all of it after a rewrite). */
  private readIndexFile(): void {
    this.indexReadAt = this.readable;
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path.join(this.dir, segmentFileName(this.baseOffset, 'index')));
    } catch {
      return; // no index (yet, or any more): notes and walks still find every batch
    }
    if (bytes.length < this.indexBytesRead) {
      this.diskRel = [];
      this.diskPos = [];
      this.indexBytesRead = 0;
    }
    const n = Math.floor(bytes.length / OFFSET_ENTRY_BYTES);
    for (let i = this.indexBytesRead / OFFSET_ENTRY_BYTES; i < n; i++) {
      const rel = bytes.readUInt32BE(i * OFFSET_ENTRY_BYTES);
      const pos = bytes.readUInt32BE(i * OFFSET_ENTRY_BYTES + 4);
      const k = this.diskRel.length;
      // Not ascending: the file was rewritten under us; what follows is read again next time.
      if (k > 0 && (rel <= this.diskRel[k - 1] || pos <= this.diskPos[k - 1])) break;
      this.diskRel.push(rel);
      this.diskPos.push(pos);
      this.indexBytesRead = (i + 1) * OFFSET_ENTRY_BYTES;
    }
  }

  /** Where a walk for `offset` may start: the closest known batch at or before it. */
  private scanStart(offset: number): number {
    let best = 0;
    const i = lastAtOrBelow(this.noteOffsets, offset);
    if (i >= 0) best = this.notePositions[i];
    const rel = offset - this.baseOffset;
    if (this.indexReadAt !== this.readable && (this.diskRel.length === 0 || this.diskRel[this.diskRel.length - 1] < rel)) this.readIndexFile();
    const j = lastAtOrBelow(this.diskRel, rel);
    if (j < 0 || this.diskPos[j] <= best) return best;
    if (this.holds(this.baseOffset + this.diskRel[j], this.diskPos[j])) return this.diskPos[j];
    // An entry that points at no such batch: the file is being rewritten (its writer found
    // it bad). Forget what was read of it, and read it again once more became visible.
    this.diskRel = [];
    this.diskPos = [];
    this.indexBytesRead = 0;
    return best;
  }

  /**
   * Position of the batch holding `offset` (at or after this segment's base), or `readable`
   * when it is not below it. CorruptBatchError when a length on the way is out of range.
   */
  positionOf(offset: number): number {
    let pos = this.scanStart(offset);
    while (pos < this.readable) {
      const size = boundedSizeAt(this, pos, this.readable);
      if (this.batchNextOffsetAt(pos) > offset) return pos;
      pos += size;
    }
    return this.readable;
  }

  /** The run of whole batches a read from `start` hands out, checked (batch-verification.ts). */
  checkedRun(start: number, maxBytes: number): { end: number; nextOffset: number } {
    return checkedRun(this, this.verified, start, maxBytes);
  }

  /**
   * The offset of the first visible record of this segment with timestamp >= `timestamp`, or
   * null when there is none. The walk starts where the `.timeindex` says every record before
   * is older (an entry (T, r): records before relative offset r are at most T).
   */
  offsetForTime(timestamp: number): number | null {
    let from = this.baseOffset;
    try {
      const bytes = fs.readFileSync(path.join(this.dir, segmentFileName(this.baseOffset, 'timeindex')));
      for (let i = 0; i + TIME_ENTRY_BYTES <= bytes.length; i += TIME_ENTRY_BYTES) {
        const t = bytes.readInt32BE(i) * 4294967296 + bytes.readUInt32BE(i + 4);
        if (t >= timestamp) break;
        from = Math.max(from, this.baseOffset + bytes.readUInt32BE(i + 8));
      }
    } catch {
      // no time index: walk the whole segment
    }
    return firstOffsetAtTime(this, this.positionOf(from), timestamp);
  }

  /** Lets the mapping go (it is unmapped once the views handed out are collected). */
  close(): void {
    this.map = null;
    this.mapView = null;
    this.mapCapacity = 0;
  }
}

/** The index of the last element <= `x` in an ascending array, or -1. */
function lastAtOrBelow(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/**
 * One segment of a partition log: `<baseOffset>.log`, a plain concatenation of whole
 * RecordBatch v2, with its `.index` and `.timeindex` beside it.
 *
 * Writes go through `fs.writeSync` at the end of the file (sequential, ~4 GB/s here);
 * reads go through one read-only MAP_SHARED mapping of the file, larger than the file,
 * and return Buffers that are views of it (no copy). Nothing ever reads past `size`, the
 * bytes known written, so shrinking the file (recovery, a failed write) never lets anyone
 * touch a page beyond its end. Deleting the file leaves existing views valid: the kernel
 * keeps the inode until the last mapping is gone.
 *
 * After a crash the tail may be torn: `recover()` (recovery.ts) walks and cuts it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { VerifiedRanges, boundedSizeAt, checkedRun } from './batch-verification.ts';
import { BATCH_HEADER_BYTES, type BatchHeader, LOG_OVERHEAD, MAGIC, batchSizeAt, readBatchHeader } from './codec/record-batch.ts';
import { UnavailableError, storageError } from './errors.ts';
import { indexIntervalBytes } from './limits.ts';
import { OffsetIndex } from './offset-index.ts';
import { TimeIndex } from './time-index.ts';

const require = createRequire(import.meta.url);
const mmap = require('mmap-io') as {
  map(size: number, prot: number, flags: number, fd: number, offset?: number, advise?: number): Buffer;
  PROT_READ: number;
  MAP_SHARED: number;
  MADV_SEQUENTIAL: number;
};

const PAGE = 4096;

/**
 * A read-only MAP_SHARED mapping of `bytes` (a multiple of the page size) of the file `fd`
 * from its start, which may reach past the file's end: pages past the end must never be
 * touched (SIGBUS). Stays valid after `fd` is closed, until every view of it is collected.
 */
export function mapReadOnly(fd: number, bytes: number): Buffer {
  return mmap.map(bytes, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0);
}

/** `bytes` rounded up to whole pages. */
export function pageRound(bytes: number): number {
  return Math.ceil(bytes / PAGE) * PAGE;
}

export function segmentFileName(baseOffset: number, ext: 'log' | 'index' | 'timeindex'): string {
  return `${String(baseOffset).padStart(20, '0')}.${ext}`;
}

export function parseSegmentFileName(name: string): number | null {
  const m = /^(\d{20})\.log$/.exec(name);
  return m ? Number(m[1]) : null;
}

export class Segment {
  /** Bytes of whole batches in the file. */
  size = 0;
  /** Bytes readers may see: all of `size` once synced under `flush: always`, else `size`. */
  readable = 0;
  /** The offset after the last record in this segment. */
  nextOffset: number;
  /** Largest record timestamp in the segment, -Infinity when empty. */
  maxTimestamp = -Infinity;
  /**
   * Server time of the first append, from which the segment's age (for roll by segmentMs)
   * counts. Never a record timestamp: a producer that dates each batch a day after the last
   * would otherwise roll a segment (three files) per batch. For a segment found on disk it
   * is the file's creation time when the file system reports one, else its last change.
   */
  rollStartMs: number;
  /** Server time of the last append (for a segment found on disk: the file's last change). */
  lastAppendMs: number;
  readonly offsetIndex: OffsetIndex;
  readonly timeIndex: TimeIndex;
  private bytesSinceIndexEntry = 0;
  private map: Buffer | null = null;
  /** A DataView over all of `map`, for header fields read in place on the read path. */
  private mapView: DataView | null = null;
  private mapCapacity = 0;
  private fd: number;
  private deleted = false;
  /**
   * Byte ranges of whole batches known to be sound (CRC included): appended by this process
   * after validation, or walked by recovery, or checked by an earlier read. A segment trusted
   * on its indexes at open has none until it is read: its batches are checked then, once
   * (see `checkedRun`).
   */
  readonly verified = new VerifiedRanges();

  private constructor(
    readonly dir: string,
    readonly baseOffset: number,
    fd: number,
    readonly mapBytesHint: number,
  ) {
    this.fd = fd;
    this.nextOffset = baseOffset;
    this.rollStartMs = this.lastAppendMs = Date.now();
    this.offsetIndex = OffsetIndex.open(path.join(dir, segmentFileName(baseOffset, 'index')));
    try {
      this.timeIndex = TimeIndex.open(path.join(dir, segmentFileName(baseOffset, 'timeindex')));
    } catch (err) {
      this.offsetIndex.close();
      throw err;
    }
  }

  get logPath(): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, 'log'));
  }

  /** The file descriptor of the log file, for sendfile(2). Valid until close(). */
  get logFd(): number {
    return this.fd;
  }

  /**
   * Opens an existing segment or creates an empty one. Call `recover` or `loadTail` after.
   * Holds three descriptors (log, index, time index); when one cannot be opened (EMFILE),
   * those already opened are closed again before the error is thrown.
   */
  static open(dir: string, baseOffset: number, mapBytesHint: number): Segment {
    const file = path.join(dir, segmentFileName(baseOffset, 'log'));
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    let seg: Segment;
    try {
      seg = new Segment(dir, baseOffset, fd, mapBytesHint);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    const st = fs.fstatSync(fd);
    seg.size = st.size;
    if (st.size > 0) {
      const now = Date.now();
      seg.lastAppendMs = Math.min(st.mtimeMs, now);
      // birthtime is 0 (or the ctime) where the file system keeps none; never after mtime.
      seg.rollStartMs = st.birthtimeMs > 0 ? Math.min(st.birthtimeMs, seg.lastAppendMs) : seg.lastAppendMs;
    }
    return seg;
  }

  /** Bytes currently in the file, torn tail included. */
  fileBytes(): number {
    return fs.fstatSync(this.fd).size;
  }

  /** A view of `[position, position + length)` of the file; the range must lie within what was written. */
  view(position: number, length: number): Buffer {
    const end = position + length;
    if (end > this.mapCapacity || this.map === null) this.remap(end);
    return this.map!.subarray(position, end);
  }

  private remap(atLeast: number): void {
    // Map well past the end so the active segment rarely needs a new mapping; old views of
    // the previous mapping stay valid until they are collected.
    let cap = Math.max(this.mapBytesHint, this.mapCapacity * 2, atLeast);
    cap = pageRound(cap);
    this.map = mapReadOnly(this.fd, cap);
    this.mapView = new DataView(this.map.buffer, this.map.byteOffset, this.map.byteLength);
    this.mapCapacity = cap;
  }

  private viewTo(end: number): DataView {
    if (end > this.mapCapacity || this.mapView === null) this.remap(end);
    return this.mapView!;
  }

  // The read path walks one header per batch; these read the fields it needs in place,
  // without the Buffer, DataView and object that `headerAt` allocates (at ~180-byte
  // batches that allocation was most of the cost of a read). `position` must be a batch
  // boundary of whole, checked batches below `size`.

  /** Whole bytes of the batch at `position`. */
  batchSizeAt(position: number): number {
    return this.viewTo(position + LOG_OVERHEAD).getInt32(position + 8) + LOG_OVERHEAD;
  }

  batchBaseOffsetAt(position: number): number {
    const dv = this.viewTo(position + 8);
    return dv.getInt32(position) * 4294967296 + dv.getUint32(position + 4);
  }

  /** The offset after the last record of the batch at `position`. */
  batchNextOffsetAt(position: number): number {
    return this.batchBaseOffsetAt(position) + this.viewTo(position + 27).getInt32(position + 23) + 1;
  }

  /** Header of the batch at `position` (which must be a batch boundary below `size`). */
  headerAt(position: number): BatchHeader {
    return readBatchHeader(this.view(position, Math.min(61, this.size - position)), 0);
  }

  /**
   * Appends a whole batch (its baseOffset already assigned) and indexes it; `now` is the
   * server's time, for the segment's age. On a failed
   * write (disk full) the file is cut back to where it was and UnavailableError thrown:
   * the segment is exactly as before.
   */
  append(batch: Uint8Array, h: BatchHeader, now: number): number {
    const position = this.size;
    let done = 0;
    try {
      while (done < batch.length) done += fs.writeSync(this.fd, batch, done, batch.length - done, position + done);
    } catch (err) {
      try {
        fs.ftruncateSync(this.fd, position);
      } catch {
        // The cut failed too; `size` still bounds every read, and recovery cuts it on open.
      }
      throw storageError(err, 'append failed');
    }
    this.indexBatch(position, h);
    this.size = position + batch.length;
    this.verified.mark(position, this.size);
    if (position === 0) this.rollStartMs = now;
    this.lastAppendMs = now;
    return position;
  }

  /** Index bookkeeping for the batch at `position`, in append order. */
  indexBatch(position: number, h: BatchHeader): void {
    if (this.bytesSinceIndexEntry >= indexIntervalBytes) {
      const rel = h.baseOffset - this.baseOffset;
      this.offsetIndex.append(rel, position);
      this.timeIndex.maybeAppend(this.maxTimestamp, rel);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += h.size;
    if (h.maxTimestamp > this.maxTimestamp) this.maxTimestamp = h.maxTimestamp;
    this.nextOffset = h.baseOffset + h.lastOffsetDelta + 1;
  }

  /** Records that the whole batches in [start, end) are sound. */
  markVerified(start: number, end: number): void {
    this.verified.mark(start, end);
  }

  /** The run of whole batches a read from `start` hands out, checked (batch-verification.ts). */
  checkedRun(start: number, maxBytes: number): { end: number; nextOffset: number } {
    return checkedRun(this, this.verified, start, maxBytes);
  }

  /** Resets the in-memory tail state before recovery rebuilds it. */
  resetForRebuild(): void {
    this.offsetIndex.clear();
    this.timeIndex.clear();
    this.bytesSinceIndexEntry = 0;
    this.maxTimestamp = -Infinity;
    this.nextOffset = this.baseOffset;
    this.size = 0;
    this.verified.clear();
  }

  /** Cuts the file to `bytes` (recovery of a torn tail). */
  truncateFile(bytes: number): void {
    fs.ftruncateSync(this.fd, bytes);
    this.size = bytes;
    this.verified.cutAt(bytes);
  }

  /**
   * Loads nextOffset/maxTimestamp of a segment whose indexes look sane by walking the batch
   * headers after the last index entry. Returns false (the caller then recovers the
   * segment, rebuilding its indexes) when the last entry does not point at the batch it
   * names, when the walk finds bytes that are not whole batches in offset order, or when it
   * passes a place where an entry should have been written (a deleted or cut index).
   */
  loadTail(): boolean {
    const fileBytes = this.size;
    const last = this.offsetIndex.last();
    if (last && !this.entryHolds(last.relativeOffset, last.position)) return false;
    let pos = last ? last.position : 0;
    let expected = this.baseOffset + (last ? last.relativeOffset : 0);
    this.maxTimestamp = this.timeIndex.maxTimestamp();
    this.bytesSinceIndexEntry = 0;
    if (fileBytes > 0 && fileBytes < BATCH_HEADER_BYTES) return false;
    while (pos < fileBytes) {
      const size = batchSizeAt(this.view(pos, Math.min(12, fileBytes - pos)), 0);
      if (size < BATCH_HEADER_BYTES || pos + size > fileBytes) return false;
      // indexBatch writes an entry before the first batch this far past the last one.
      if (this.bytesSinceIndexEntry >= indexIntervalBytes) return false;
      const h = this.headerAt(pos);
      if (h.magic !== MAGIC || h.baseOffset !== expected) return false;
      if (h.maxTimestamp > this.maxTimestamp) this.maxTimestamp = h.maxTimestamp;
      this.nextOffset = expected = h.baseOffset + h.lastOffsetDelta + 1;
      this.bytesSinceIndexEntry += h.size;
      pos += size;
    }
    return true;
  }

  /** Every time index entry names an offset index entry, the first one included (they are written together). */
  timeIndexMatches(): boolean {
    const n = this.timeIndex.entries;
    if (n === 0) return this.offsetIndex.entries === 0;
    if (this.timeIndex.relativeOffsetAt(0) !== this.offsetIndex.first()?.relativeOffset) return false;
    for (let i = 1; i < n; i++) {
      const rel = this.timeIndex.relativeOffsetAt(i);
      if (this.offsetIndex.lookup(rel).relativeOffset !== rel) return false;
    }
    return true;
  }

  /** True when the index entry (rel, position) points at the whole batch it names. */
  private entryHolds(rel: number, position: number): boolean {
    if (position + BATCH_HEADER_BYTES > this.size) return false;
    const h = this.headerAt(position);
    return h.magic === MAGIC && h.baseOffset === this.baseOffset + rel && h.size >= BATCH_HEADER_BYTES && position + h.size <= this.size;
  }

  /**
   * Where a scan for relative offset `rel` may start: the position of the last index entry
   * at or before it. Older segments' indexes are only sanity-checked on open (checking
   * every entry would read every page of every segment), so the entry is checked against
   * the log here, where it is about to be used: a byte flipped in an index file must never
   * send a reader into the middle of a batch. A bad entry gets both indexes rebuilt.
   */
  private scanStart(rel: number): number {
    const e = this.offsetIndex.lookup(rel);
    if (e.position === 0 || this.entryHolds(e.relativeOffset, e.position)) return e.position;
    this.rebuildIndexes();
    return this.offsetIndex.lookup(rel).position;
  }

  /** Rewrites both indexes from the batch headers of the (whole, already checked) log. */
  rebuildIndexes(): void {
    const size = this.size;
    this.offsetIndex.clear();
    this.timeIndex.clear();
    this.bytesSinceIndexEntry = 0;
    this.maxTimestamp = -Infinity;
    for (let pos = 0; pos + BATCH_HEADER_BYTES <= size; ) {
      const h = this.headerAt(pos);
      if (h.size < BATCH_HEADER_BYTES || pos + h.size > size) break;
      this.indexBatch(pos, h);
      pos += h.size;
    }
  }

  /** Position of the batch holding `offset` (which must lie in this segment), or `size` if past the end. */
  positionOf(offset: number): number {
    let pos = this.scanStart(offset - this.baseOffset);
    while (pos < this.size) {
      const size = boundedSizeAt(this, pos, this.size);
      if (this.batchNextOffsetAt(pos) > offset) return pos;
      pos += size;
    }
    return this.size;
  }

  /** Position of the first batch whose maxTimestamp >= `timestamp`, or `size`. */
  positionForTime(timestamp: number): number {
    let pos = this.scanStart(this.timeIndex.lookup(timestamp));
    while (pos < this.size) {
      const size = boundedSizeAt(this, pos, this.size);
      const h = this.headerAt(pos);
      if (h.maxTimestamp >= timestamp) return pos;
      pos += size;
    }
    return this.size;
  }

  async sync(): Promise<void> {
    if (this.fd < 0) return;
    const fd = this.fd;
    await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  syncNow(): void {
    if (this.fd >= 0) fs.fdatasyncSync(this.fd);
  }

  close(): void {
    this.offsetIndex.close();
    this.timeIndex.close();
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** Closes the segment and moves its files into `destDir` (created when absent), never over a file there. */
  moveTo(destDir: string): void {
    this.close();
    fs.mkdirSync(destDir, { recursive: true });
    const stamp = fs.existsSync(path.join(destDir, segmentFileName(this.baseOffset, 'log'))) ? `.${Date.now()}` : '';
    for (const ext of ['log', 'index', 'timeindex'] as const) {
      const name = segmentFileName(this.baseOffset, ext);
      try {
        fs.renameSync(path.join(this.dir, name), path.join(destDir, name + stamp));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    this.deleted = true;
  }

  /** Closes and unlinks the files; existing views stay readable. */
  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    this.close();
    for (const ext of ['log', 'index', 'timeindex'] as const) {
      fs.rmSync(path.join(this.dir, segmentFileName(this.baseOffset, ext)), { force: true });
    }
  }
}

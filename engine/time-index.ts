/**
 * The sparse time index of one segment (`<baseOffset>.timeindex`): entries of 12 bytes,
 *   timestamp int64 | relativeOffset u32
 * big-endian, written beside each offset index entry. An entry (T, r) says: every record
 * before relative offset r has a timestamp of at most T. T only grows, so the last entry
 * with T below a target is where a scan for "the first record at or after the target"
 * may safely start.
 *
 * Derived data like the offset index: rebuilt from the log when it is not sane.
 */
import fs from 'node:fs';

export const TIME_ENTRY_BYTES = 12;

export class TimeIndex {
  private ts: Float64Array;
  private rel: Uint32Array;
  private count = 0;

  private constructor(
    readonly path: string,
    private fd: number,
  ) {
    this.ts = new Float64Array(64);
    this.rel = new Uint32Array(64);
  }

  static open(path: string): TimeIndex {
    const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    const idx = new TimeIndex(path, fd);
    const bytes = fs.readFileSync(path);
    const n = Math.floor(bytes.length / TIME_ENTRY_BYTES);
    for (let i = 0; i < n; i++) {
      const o = i * TIME_ENTRY_BYTES;
      idx.push(bytes.readInt32BE(o) * 4294967296 + bytes.readUInt32BE(o + 4), bytes.readUInt32BE(o + 8));
    }
    if (bytes.length !== n * TIME_ENTRY_BYTES) idx.clear();
    return idx;
  }

  get entries(): number {
    return this.count;
  }

  isSane(nextRelativeOffset: number): boolean {
    for (let i = 0; i < this.count; i++) {
      if (this.rel[i] >= nextRelativeOffset) return false;
      if (i > 0 && (this.ts[i] <= this.ts[i - 1] || this.rel[i] <= this.rel[i - 1])) return false;
    }
    return true;
  }

  private push(ts: number, rel: number): void {
    if (this.count === this.ts.length) {
      const t = new Float64Array(this.count * 2);
      const r = new Uint32Array(this.count * 2);
      t.set(this.ts);
      r.set(this.rel);
      this.ts = t;
      this.rel = r;
    }
    this.ts[this.count] = ts;
    this.rel[this.count] = rel;
    this.count++;
  }

  relativeOffsetAt(i: number): number {
    return this.rel[i];
  }

  /** The largest timestamp indexed, or -Infinity. */
  maxTimestamp(): number {
    return this.count === 0 ? -Infinity : this.ts[this.count - 1];
  }

  /** Records that everything before `relativeOffset` has timestamps <= `timestamp`; ignored unless it grows. */
  maybeAppend(timestamp: number, relativeOffset: number): void {
    if (timestamp <= this.maxTimestamp()) return;
    const e = Buffer.allocUnsafe(TIME_ENTRY_BYTES);
    const hi = Math.floor(timestamp / 4294967296);
    e.writeInt32BE(hi, 0);
    e.writeUInt32BE(timestamp - hi * 4294967296, 4);
    e.writeUInt32BE(relativeOffset, 8);
    fs.writeSync(this.fd, e, 0, TIME_ENTRY_BYTES, this.count * TIME_ENTRY_BYTES);
    this.push(timestamp, relativeOffset);
  }

  /**
   * Where a scan for the first record with timestamp >= `timestamp` may start: the
   * relative offset of the last entry whose timestamp is below it (0 when none is).
   */
  lookup(timestamp: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ts[mid] < timestamp) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best < 0 ? 0 : this.rel[best];
  }

  truncateToRelativeOffset(rel: number): void {
    let n = this.count;
    while (n > 0 && this.rel[n - 1] >= rel) n--;
    if (n === this.count) return;
    this.count = n;
    fs.ftruncateSync(this.fd, n * TIME_ENTRY_BYTES);
  }

  clear(): void {
    this.count = 0;
    fs.ftruncateSync(this.fd, 0);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * The sparse offset index of one segment (`<baseOffset>.index`): entries of 8 bytes,
 *   relativeOffset u32 | position u32
 * both big-endian, strictly increasing, one per `indexIntervalBytes` of log, each pointing
 * at the first byte of a batch whose baseOffset is baseOffset + relativeOffset.
 *
 * It is derived data: never fsynced on its own, sanity-checked on open and rebuilt from the
 * log on any doubt (a crash can leave it behind or ahead of the log).
 */
import fs from 'node:fs';

export const OFFSET_ENTRY_BYTES = 8;

export class OffsetIndex {
  private rel: Uint32Array;
  private pos: Uint32Array;
  private count = 0;

  private constructor(
    readonly path: string,
    private fd: number,
  ) {
    this.rel = new Uint32Array(64);
    this.pos = new Uint32Array(64);
  }

  /** Opens (or creates) the index file and loads its entries unchecked; see `isSane`. */
  static open(path: string): OffsetIndex {
    const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    const idx = new OffsetIndex(path, fd);
    const bytes = fs.readFileSync(path);
    const n = Math.floor(bytes.length / OFFSET_ENTRY_BYTES);
    for (let i = 0; i < n; i++) idx.push(bytes.readUInt32BE(i * 8), bytes.readUInt32BE(i * 8 + 4));
    if (bytes.length !== n * OFFSET_ENTRY_BYTES) idx.rewrite();
    return idx;
  }

  get entries(): number {
    return this.count;
  }

  /** Entries strictly increasing, positions inside the log and past its first batch. */
  isSane(logBytes: number): boolean {
    for (let i = 0; i < this.count; i++) {
      if (this.pos[i] === 0 || this.pos[i] >= logBytes) return false;
      if (i > 0 && (this.rel[i] <= this.rel[i - 1] || this.pos[i] <= this.pos[i - 1])) return false;
    }
    return true;
  }

  private push(rel: number, pos: number): void {
    if (this.count === this.rel.length) {
      const r = new Uint32Array(this.count * 2);
      const p = new Uint32Array(this.count * 2);
      r.set(this.rel);
      p.set(this.pos);
      this.rel = r;
      this.pos = p;
    }
    this.rel[this.count] = rel;
    this.pos[this.count] = pos;
    this.count++;
  }

  append(relativeOffset: number, position: number): void {
    const e = Buffer.allocUnsafe(OFFSET_ENTRY_BYTES);
    e.writeUInt32BE(relativeOffset, 0);
    e.writeUInt32BE(position, 4);
    fs.writeSync(this.fd, e, 0, OFFSET_ENTRY_BYTES, this.count * OFFSET_ENTRY_BYTES);
    this.push(relativeOffset, position);
  }

  /** The last entry with relativeOffset <= rel: where a scan for `rel` starts. */
  lookup(relativeOffset: number): { relativeOffset: number; position: number } {
    let lo = 0;
    let hi = this.count - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.rel[mid] <= relativeOffset) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best < 0 ? { relativeOffset: 0, position: 0 } : { relativeOffset: this.rel[best], position: this.pos[best] };
  }

  first(): { relativeOffset: number; position: number } | null {
    return this.count === 0 ? null : { relativeOffset: this.rel[0], position: this.pos[0] };
  }

  last(): { relativeOffset: number; position: number } | null {
    return this.count === 0 ? null : { relativeOffset: this.rel[this.count - 1], position: this.pos[this.count - 1] };
  }

  /** Drops every entry at or past `position` (after the log was cut there). */
  truncateToPosition(position: number): void {
    let n = this.count;
    while (n > 0 && this.pos[n - 1] >= position) n--;
    if (n === this.count) return;
    this.count = n;
    fs.ftruncateSync(this.fd, n * OFFSET_ENTRY_BYTES);
  }

  clear(): void {
    this.count = 0;
    fs.ftruncateSync(this.fd, 0);
  }

  private rewrite(): void {
    const b = Buffer.allocUnsafe(this.count * OFFSET_ENTRY_BYTES);
    for (let i = 0; i < this.count; i++) {
      b.writeUInt32BE(this.rel[i], i * 8);
      b.writeUInt32BE(this.pos[i], i * 8 + 4);
    }
    fs.ftruncateSync(this.fd, 0);
    fs.writeSync(this.fd, b, 0, b.length, 0);
  }

  sync(): void {
    fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

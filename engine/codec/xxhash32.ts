/**
 * xxHash32, for the LZ4 frame's header checksum (and its optional content/block checksums).
 * `xxhash32` is written for small inputs (the frame descriptor is 2-14 bytes); the stream
 * form serves a content checksum read block by block.
 */
const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const u32le = (b: Uint8Array, i: number): number => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;

function round(acc: number, lane: number): number {
  acc = (acc + Math.imul(lane, P2)) | 0;
  return Math.imul(rotl(acc, 13), P1);
}

export function xxhash32(buf: Uint8Array, start = 0, end = buf.length, seed = 0): number {
  let i = start;
  let h: number;
  const len = end - start;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    const limit = end - 16;
    while (i <= limit) {
      v1 = round(v1, u32le(buf, i));
      v2 = round(v2, u32le(buf, i + 4));
      v3 = round(v3, u32le(buf, i + 8));
      v4 = round(v4, u32le(buf, i + 12));
      i += 16;
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + P5) | 0;
  }
  return finish((h + len) | 0, buf, i, end);
}

/** The last (< 16) bytes `buf[i..end)` mixed into `h`, then the final avalanche. */
function finish(h: number, buf: Uint8Array, i: number, end: number): number {
  while (i + 4 <= end) {
    h = (h + Math.imul(u32le(buf, i), P3)) | 0;
    h = Math.imul(rotl(h, 17), P4);
    i += 4;
  }
  while (i < end) {
    h = (h + Math.imul(buf[i], P5)) | 0;
    h = Math.imul(rotl(h, 11), P1);
    i++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * xxHash32 over input given in pieces (an LZ4 frame's content checksum, computed block by
 * block while the frame is read without holding all of its content). Equal to `xxhash32`
 * of the concatenation.
 */
export class Xxhash32Stream {
  private v1: number;
  private v2: number;
  private v3: number;
  private v4: number;
  private total = 0;
  /** Up to 15 bytes not yet folded into a 16-byte stripe. */
  private readonly carry = new Uint8Array(16);
  private carried = 0;

  constructor(private readonly seed = 0) {
    this.v1 = (seed + P1 + P2) | 0;
    this.v2 = (seed + P2) | 0;
    this.v3 = seed | 0;
    this.v4 = (seed - P1) | 0;
  }

  private stripe(buf: Uint8Array, i: number): void {
    this.v1 = round(this.v1, u32le(buf, i));
    this.v2 = round(this.v2, u32le(buf, i + 4));
    this.v3 = round(this.v3, u32le(buf, i + 8));
    this.v4 = round(this.v4, u32le(buf, i + 12));
  }

  update(buf: Uint8Array, start = 0, end = buf.length): void {
    this.total += end - start;
    let i = start;
    if (this.carried > 0) {
      const take = Math.min(16 - this.carried, end - i);
      this.carry.set(buf.subarray(i, i + take), this.carried);
      this.carried += take;
      i += take;
      if (this.carried < 16) return;
      this.stripe(this.carry, 0);
      this.carried = 0;
    }
    for (; i + 16 <= end; i += 16) this.stripe(buf, i);
    if (i < end) {
      this.carry.set(buf.subarray(i, end), 0);
      this.carried = end - i;
    }
  }

  digest(): number {
    let h: number;
    if (this.total >= 16) h = (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0;
    else h = (this.seed + P5) | 0;
    return finish((h + this.total) | 0, this.carry, 0, this.carried);
  }
}

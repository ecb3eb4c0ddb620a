/**
 * Shared pieces of the codec tests: which CRC-32C / LZ4 block implementation is active,
 * seeded randomness that a failure can replay (`SEED=… node --import tsx --test <file>`),
 * small builders for hand-made batches and LZ4 frames, and the oracles from the test
 * dependencies (kafkajs, kafkajs-lz4, lz4).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { TestContext } from 'node:test';
import {
  BATCH_HEADER_BYTES,
  crc32c,
  crc32cPortable,
  portableLz4,
  useCrc32c,
  useLz4BlockCodec,
} from '../../../engine/codec/index.ts';
import { useUtf8Writer, writeUtf8Portable } from '../../../engine/codec/record-batch-builder.ts';
import { writeVarint } from '../../../engine/codec/varint.ts';
import { xxhash32 } from '../../../engine/codec/xxhash32.ts';
import { CorruptBatchError } from '../../../engine/errors.ts';
import { installNativeCodecs } from '../../../engine/native-codecs.ts';

export const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------
// Implementations

export type Impl = 'portable' | 'native';
/** Portable first: installNativeCodecs() cannot be undone within a process. */
export const IMPLS: readonly Impl[] = ['portable', 'native'];

let nativeSelected = false;

/**
 * Makes `impl` the codec's active CRC-32C, LZ4 block and UTF-8 writing implementation. The native ones
 * must load here (the CI machine builds them); a silent fall-back would test nothing.
 */
export function selectImpl(impl: Impl): void {
  if (impl === 'native') {
    assert.deepEqual(installNativeCodecs(), { crc32c: true, lz4: true, utf8: true }, 'native CRC-32C, LZ4 and UTF-8 writer must load');
    nativeSelected = true;
    return;
  }
  if (nativeSelected) throw new Error('installNativeCodecs() cannot be undone: run portable suites before native ones');
  useCrc32c(crc32cPortable);
  useLz4BlockCodec(portableLz4);
  useUtf8Writer(writeUtf8Portable);
}

// ---------------------------------------------------------------------------------------
// Seeds

/** The seed for one test: SEED from the environment, else a fresh one; always reported. */
export function seedFor(t: TestContext): number {
  const env = process.env.SEED;
  const seed = env !== undefined && env !== '' ? Number(env) >>> 0 : (Math.random() * 0x100000000) >>> 0;
  t.diagnostic(`SEED=${seed}`);
  return seed;
}

/** Runs `fn` with a seeded Rng; a failure says how to replay it. */
export async function seeded(t: TestContext, fn: (rng: Rng, seed: number) => void | Promise<void>): Promise<void> {
  const seed = seedFor(t);
  try {
    await fn(new Rng(seed), seed);
  } catch (e) {
    if (e instanceof Error) e.message += `\n  replay with SEED=${seed} (test: ${t.name})`;
    throw e;
  }
}

/** mulberry32: small, fast and good enough to drive fuzzing. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n);
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

export type Fill = 'random' | 'text' | 'runs';

/**
 * `length` bytes from `seed`: random (incompressible), text (compressible, matches at
 * many distances) or runs (long runs of one byte: overlapping matches).
 */
export function makeBytes(seed: number, length: number, fill: Fill): Uint8Array {
  const rng = new Rng(seed);
  if (fill === 'random') return rng.bytes(length);
  const out = new Uint8Array(length);
  if (fill === 'text') {
    const words = ['sluice ', 'record ', 'batch ', 'offset ', 'партиция ', '主题 ', '\u{1F600} ', 'x'];
    const enc = new TextEncoder();
    let p = 0;
    while (p < length) {
      const w = enc.encode(rng.pick(words));
      out.set(w.subarray(0, length - p), p);
      p += w.length;
    }
    return out;
  }
  let p = 0;
  while (p < length) {
    const run = 1 + rng.int(600);
    out.fill(rng.u32() & 0xff, p, Math.min(length, p + run));
    p += run;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Errors

/** Runs `fn` and asserts that it throws a CorruptBatchError (with `reason`, when given). */
export function assertCorrupt(fn: () => unknown, reason?: string | readonly string[], what = ''): CorruptBatchError {
  try {
    fn();
  } catch (e) {
    return expectCorrupt(e, reason, what);
  }
  assert.fail(`expected a CorruptBatchError${reason ? ` (${reason})` : ''}, nothing was thrown ${what}`);
}

/** Asserts that `caught` is a CorruptBatchError (with `reason`, when given). */
export function expectCorrupt(caught: unknown, reason?: string | readonly string[], what = ''): CorruptBatchError {
  if (!(caught instanceof CorruptBatchError)) {
    const err = caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught);
    assert.fail(`expected a CorruptBatchError, got ${err} ${what}`);
  }
  if (reason !== undefined) {
    const allowed = typeof reason === 'string' ? [reason] : reason;
    assert.ok(allowed.includes(caught.reason), `reason ${caught.reason} (${caught.message}), expected ${allowed.join(' or ')} ${what}`);
  }
  return caught;
}

// ---------------------------------------------------------------------------------------
// Hand-made batches and frames

/** A record body as the wire spells it, fields given raw so that tests can break them. */
export interface RawRecord {
  attributes?: number;
  timestampDelta?: number;
  offsetDelta: number;
  key?: Uint8Array | null;
  value?: Uint8Array | null;
  headers?: { key: Uint8Array; value: Uint8Array | null }[];
}

function varint(n: number): Uint8Array {
  const b = new Uint8Array(10);
  return b.slice(0, writeVarint(b, 0, n));
}

/** The bytes of one record after its length: attributes ... headers. */
export function rawRecordBody(r: RawRecord): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([r.attributes ?? 0]), varint(r.timestampDelta ?? 0), varint(r.offsetDelta)];
  const bytes = (b: Uint8Array | null | undefined): void => {
    if (b == null) parts.push(varint(-1));
    else parts.push(varint(b.length), b);
  };
  bytes(r.key);
  bytes(r.value);
  const hs = r.headers ?? [];
  parts.push(varint(hs.length));
  for (const h of hs) {
    parts.push(varint(h.key.length), h.key);
    bytes(h.value);
  }
  return concat(parts);
}

/** One record with its length prefix. */
export function rawRecord(r: RawRecord): Uint8Array {
  const body = rawRecordBody(r);
  return concat([varint(body.length), body]);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

export interface RawBatchFields {
  baseOffset?: number;
  magic?: number;
  attributes?: number;
  lastOffsetDelta?: number;
  recordCount: number;
  baseTimestamp?: number | bigint;
}

/**
 * A batch around `body` (the records region, raw or an LZ4 frame) with a correct CRC, so
 * that whatever is wrong inside reaches the record checks.
 */
export function rawBatch(body: Uint8Array, f: RawBatchFields): Uint8Array {
  const out = new Uint8Array(BATCH_HEADER_BYTES + body.length);
  const dv = new DataView(out.buffer);
  dv.setBigInt64(0, BigInt(f.baseOffset ?? 0));
  dv.setInt32(8, out.length - 12);
  dv.setInt32(12, 0);
  out[16] = f.magic ?? 2;
  dv.setInt16(21, f.attributes ?? 0);
  dv.setInt32(23, f.lastOffsetDelta ?? f.recordCount - 1);
  dv.setBigInt64(27, BigInt(f.baseTimestamp ?? 1_700_000_000_000));
  dv.setBigInt64(35, BigInt(f.baseTimestamp ?? 1_700_000_000_000));
  dv.setBigInt64(43, -1n);
  dv.setInt16(51, -1);
  dv.setInt32(53, -1);
  dv.setInt32(57, f.recordCount);
  out.set(body, BATCH_HEADER_BYTES);
  resealCrc(out);
  return out;
}

/** Recomputes the CRC of the batch at `pos` (portable CRC, independent of the active one). */
export function resealCrc(batch: Uint8Array, pos = 0): void {
  const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const size = dv.getInt32(pos + 8) + 12;
  dv.setUint32(pos + 17, crc32cPortable(batch, pos + 21, pos + size));
}

export function crcField(batch: Uint8Array, pos = 0): number {
  return new DataView(batch.buffer, batch.byteOffset, batch.byteLength).getUint32(pos + 17);
}

/** True when the stored CRC matches the active implementation's. */
export function crcHolds(batch: Uint8Array): boolean {
  return crcField(batch) === crc32c(batch, 21, batch.length);
}

export interface FrameBlock {
  /** The raw bytes as stored (compressed, or the data itself when `stored`). */
  data: Uint8Array;
  stored: boolean;
}

export interface FrameOptions {
  flg?: number;
  /** BD byte; 0x40 = 64 KiB blocks. */
  bd?: number;
  contentSize?: number;
  blockChecksums?: boolean;
  /** The content checksum to write; computed over `content` when `content` is given. */
  contentChecksum?: number;
  content?: Uint8Array;
  /** Bytes after the end mark (and content checksum). */
  trailer?: Uint8Array;
  /** Flip a bit of the header checksum. */
  badHeaderChecksum?: boolean;
}

/**
 * An LZ4 frame around the given blocks, written independently of the codec's encoder so
 * that tests can set any flag. FLG defaults to version 1 + independent blocks, plus the
 * content size / checksum bits when those are given.
 */
export function lz4Frame(blocks: readonly FrameBlock[], o: FrameOptions = {}): Uint8Array {
  let flg = o.flg ?? 0x60;
  if (o.contentSize !== undefined) flg |= 0x08;
  if (o.blockChecksums) flg |= 0x10;
  const wantContentChecksum = o.contentChecksum !== undefined || o.content !== undefined;
  if (wantContentChecksum) flg |= 0x04;
  const header: number[] = [0x04, 0x22, 0x4d, 0x18, flg, o.bd ?? 0x40];
  if (o.contentSize !== undefined) {
    const lo = o.contentSize % 0x100000000;
    const hi = Math.floor(o.contentSize / 0x100000000);
    for (const w of [lo, hi]) header.push(w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, (w >>> 24) & 0xff);
  }
  const hb = new Uint8Array(header);
  let hc = (xxhash32(hb, 4, hb.length) >>> 8) & 0xff;
  if (o.badHeaderChecksum) hc ^= 1;
  const parts: Uint8Array[] = [hb, new Uint8Array([hc])];
  for (const b of blocks) {
    parts.push(u32le(b.data.length | (b.stored ? 0x80000000 : 0)), b.data);
    if (o.blockChecksums) parts.push(u32le(xxhash32(b.data)));
  }
  parts.push(u32le(0));
  if (wantContentChecksum) parts.push(u32le(o.contentChecksum ?? xxhash32(o.content!)));
  if (o.trailer) parts.push(o.trailer);
  return concat(parts);
}

export function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

/** Walks a frame's blocks (tests' own parser, to check what an encoder wrote). */
export function frameBlocks(frame: Uint8Array): { flg: number; bd: number; blocks: FrameBlock[] } {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  assert.equal(dv.getUint32(0, true), 0x184d2204, 'LZ4 frame magic');
  const flg = frame[4];
  const bd = frame[5];
  let ip = 7 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0);
  const blocks: FrameBlock[] = [];
  for (;;) {
    const word = dv.getUint32(ip, true);
    ip += 4;
    if (word === 0) break;
    const n = word & 0x7fffffff;
    blocks.push({ data: frame.subarray(ip, ip + n), stored: (word & 0x80000000) !== 0 });
    ip += n + (flg & 0x10 ? 4 : 0);
  }
  ip += flg & 0x04 ? 4 : 0;
  assert.equal(ip, frame.length, 'the frame ends right after its end mark');
  return { flg, bd, blocks };
}

// ---------------------------------------------------------------------------------------
// Oracles from the test dependencies

export interface KafkaJs {
  Decoder: new (buf: Buffer) => any;
  Encoder: new () => any;
  RecordBatchDecoder: (decoder: any) => Promise<any>;
  RecordBatch: (opts: Record<string, unknown>) => Promise<{ buffer: Buffer }>;
  Record: (opts: Record<string, unknown>) => any;
  Long: { fromValue(v: unknown): any; fromNumber(n: number): any };
  crc32C: (buf: Buffer) => number;
  murmur2: (key: Buffer) => number;
  defaultPartitioner: () => (args: { topic: string; partitionMetadata: { partitionId: number; leader: number }[]; message: { key: Buffer } }) => number;
  Types: { None: number; LZ4: number };
}

let kafkajs: KafkaJs | null = null;

/** kafkajs's record-batch encoder/decoder with kafkajs-lz4 registered as its LZ4 codec. */
export function kafka(): KafkaJs {
  if (kafkajs) return kafkajs;
  const { CompressionCodecs, CompressionTypes } = require('kafkajs');
  const LZ4Codec = require('kafkajs-lz4');
  CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;
  kafkajs = {
    Decoder: require('kafkajs/src/protocol/decoder'),
    Encoder: require('kafkajs/src/protocol/encoder'),
    RecordBatchDecoder: require('kafkajs/src/protocol/recordBatch/v0/decoder'),
    RecordBatch: require('kafkajs/src/protocol/recordBatch/v0').RecordBatch,
    Record: require('kafkajs/src/protocol/recordBatch/record/v0'),
    Long: require('kafkajs/src/utils/long'),
    crc32C: require('kafkajs/src/protocol/recordBatch/crc32C'),
    murmur2: require('kafkajs/src/producer/partitioners/default/murmur2'),
    defaultPartitioner: require('kafkajs/src/producer/partitioners/default'),
    Types: CompressionTypes,
  };
  return kafkajs;
}

export interface Lz4Package {
  encode(input: Buffer, options?: Record<string, unknown>): Buffer;
  decode(input: Buffer): Buffer;
  encodeBlock(src: Buffer, dst: Buffer): number;
  decodeBlock(src: Buffer, dst: Buffer): number;
  encodeBound(n: number): number;
}

export const lz4pkg = (): Lz4Package => require('lz4') as Lz4Package;

export const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

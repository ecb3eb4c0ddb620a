/**
 * Shared pieces of the engine suite.
 *
 * `matrix(name, fn)` runs a test once per permutation of the settings that change how the
 * engine lays bytes down and when it shows them — codec {none, lz4} × flush {always,
 * interval} — as a subtest each, in its own temp dir that is removed afterwards (the shape
 * of NATS's filestore tests). Logs and managers opened through the context are closed even
 * when an assertion fails, so one failure does not leak fds or timers into the next.
 *
 * Randomness is seeded: `SEED=<n>` replays a run; every test that draws prints its seed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { type Codec, type ProducerRecord, type StoredRecord, decodeBatches, encodeRecordBatch } from '../../engine/codec/index.ts';
import type { FlushPolicy } from '../../engine/flush.ts';
import { LogManager, type LogManagerOptions } from '../../engine/log-manager.ts';
import { installNativeCodecs } from '../../engine/native-codecs.ts';
import type { LogPartition } from '../../engine/log.ts';
import { PartitionLog, type PartitionLogOptions } from '../../engine/partition-log.ts';
import { segmentFileName } from '../../engine/segment.ts';
import { type Rng, hashString, int, rng } from '../helpers/random.ts';

export { type Rng, hashString, int, rng };

installNativeCodecs();

export interface Perm {
  codec: Codec;
  flush: FlushPolicy;
}

export const PERMS: readonly Perm[] = [
  { codec: 'none', flush: 'always' },
  { codec: 'none', flush: 'interval' },
  { codec: 'lz4', flush: 'always' },
  { codec: 'lz4', flush: 'interval' },
];

/** Under `interval` the timer runs often enough to be exercised while a test runs. */
export const FLUSH_MS = 20;

export interface Ctx extends Perm {
  /** A fresh directory for this permutation only. */
  root: string;
  /** `<root>/data`: where logs go, so tests can check nothing lands beside it. */
  dir: string;
  t: TestContext;
  /** Opens a partition log under this permutation's flush policy; closed after the test. */
  openLog(dir?: string, opts?: PartitionLogOptions, epoch?: string): PartitionLog;
  openManager(opts?: Partial<LogManagerOptions>): Promise<LogManager>;
  /** Encodes records under this permutation's codec. */
  batch(records: ProducerRecord[], timestamp?: number): Uint8Array;
  /** Registers a cleanup step run after the test, last registered first. */
  defer(fn: () => unknown): void;
  /** This test's seeded generator (its seed printed): SEED, the test name and the permutation. */
  rng(): Rng;
}

/**
 * `concurrency`: how many permutations run at once (default 1), for tests that mostly
 * wait on child processes; each still has its own directory.
 */
export function matrix(name: string, fn: (ctx: Ctx) => Promise<void> | void, opts: { timeout?: number; concurrency?: number } = {}): void {
  const concurrency = opts.concurrency ?? 1;
  test(name, { timeout: opts.timeout ?? 60_000 }, async (t) => {
    const running = new Set<Promise<void>>();
    for (const perm of PERMS) {
      while (running.size >= concurrency) await Promise.race(running);
      const run: Promise<void> = t.test(`codec=${perm.codec} flush=${perm.flush}`, async (st) => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-engine-'));
        const dir = path.join(root, 'data');
        const cleanups: (() => unknown)[] = [];
        const ctx: Ctx = {
          ...perm,
          root,
          dir,
          t: st,
          openLog(d = dir, o = {}, epoch = 'e0') {
            const log = PartitionLog.open(d, 'topic', 0, epoch, { flush: perm.flush, flushMs: FLUSH_MS, ...o });
            cleanups.push(() => log.close());
            return log;
          },
          async openManager(o = {}) {
            const mgr = await LogManager.open({ dataDir: dir, flush: perm.flush, flushMs: FLUSH_MS, retentionCheckMs: 0, ...o });
            cleanups.push(() => mgr.close());
            return mgr;
          },
          batch: (records, timestamp) => encodeRecordBatch(records, { codec: perm.codec, timestamp }),
          defer: (f) => cleanups.push(f),
          rng: () => seeded(st, `${name} ${st.name}`),
        };
        try {
          await fn(ctx);
        } finally {
          for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch(() => {});
          fs.rmSync(root, { recursive: true, force: true });
        }
      });
      running.add(run);
      void run.finally(() => running.delete(run));
    }
    await Promise.all(running);
  });
}

/** The run's seed: `SEED` from the environment, else a fresh one (printed by `seeded`). */
export const SEED = process.env.SEED ? Number(process.env.SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;

/** A seeded generator for one test: derived from SEED and the test's name, and printed. */
export function seeded(t: TestContext, salt: string): Rng {
  t.diagnostic(`SEED=${SEED} (replay with SEED=${SEED})`);
  return rng((SEED ^ hashString(salt)) >>> 0);
}

const enc = new TextEncoder();
const WORDS = ['order', 'created', 'paid', 'shipped', 'cart', 'user', 'eur', 'usd', 'sku', 'warehouse', 'berlin', 'lisbon', 'web', 'ios'];

/** A JSON-ish event of about `size` bytes that compresses like real traffic, not like zeros. */
export function eventValue(r: Rng, n: number, size = int(r, 20, 400)): Uint8Array {
  let s = `{"seq":${n},"type":"${WORDS[int(r, 0, WORDS.length - 1)]}.${WORDS[int(r, 0, WORDS.length - 1)]}","user":"u_${int(r, 1, 5000)}","amount":${(r() * 1000).toFixed(2)},"tags":[`;
  while (s.length < size) s += `"${WORDS[int(r, 0, WORDS.length - 1)]}${int(r, 0, 99)}",`;
  return enc.encode(s.slice(0, size));
}

/** Random records (keys, null values, headers, timestamps inside the batch out of order). */
export function randomRecords(r: Rng, count: number, ts: number, seq = 0): ProducerRecord[] {
  const out: ProducerRecord[] = [];
  for (let i = 0; i < count; i++) {
    const roll = r();
    out.push({
      key: roll < 0.2 ? null : enc.encode(`key-${int(r, 0, 50)}`),
      value: roll > 0.95 ? null : eventValue(r, seq + i),
      headers: roll < 0.3 ? [{ key: 'trace', value: enc.encode(`t-${int(r, 0, 1e6)}`) }, { key: 'empty', value: null }] : [],
      timestamp: ts + int(r, 0, 50) - (i % 3 === 2 ? 20 : 0),
    });
  }
  return out;
}

/** What a record should read back as, in a form `deepEqual` compares exactly. */
export interface Expected {
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: [string, string | null][];
}

const hex = (u: Uint8Array | null | undefined): string | null => (u == null ? null : Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('hex'));

export function normStored(r: StoredRecord): Expected {
  return { offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers: r.headers.map((h) => [h.key, hex(h.value)]) };
}

export function expectedOf(records: ProducerRecord[], baseOffset: number, batchTs: number): Expected[] {
  return records.map((r, i) => ({
    offset: baseOffset + i,
    timestamp: r.timestamp ?? batchTs,
    key: hex(r.key ?? null),
    value: hex(r.value),
    headers: (r.headers ?? []).map((h) => [h.key, hex(h.value)]),
  }));
}

/** One batch as appended: where it went and what it holds. */
export interface Appended {
  baseOffset: number;
  count: number;
  /** The stored bytes (baseOffset assigned), copied at append time. */
  bytes: Buffer;
  records: Expected[];
  maxTimestamp: number;
}

/**
 * Appends `n` random batches of 1..maxRecords records with timestamps from `ts0`, `stepMs`
 * apart, `inFlight` at a time (so group commit is exercised), in call order.
 */
export async function appendRandom(
  ctx: Pick<Ctx, 'batch'>,
  log: PartitionLog,
  r: Rng,
  n: number,
  o: { maxRecords?: number; ts0?: number; stepMs?: number; inFlight?: number } = {},
): Promise<Appended[]> {
  const out: Appended[] = [];
  const ts0 = o.ts0 ?? 1_700_000_000_000;
  const inFlight = o.inFlight ?? 8;
  let pending: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const ts = ts0 + i * (o.stepMs ?? 100);
    const recs = randomRecords(r, int(r, 1, o.maxRecords ?? 20), ts, log.nextOffset);
    const bytes = ctx.batch(recs, ts);
    const base = log.nextOffset;
    const p = log.append(bytes);
    const a: Appended = {
      baseOffset: base,
      count: recs.length,
      bytes: Buffer.from(bytes),
      records: expectedOf(recs, base, ts),
      maxTimestamp: Math.max(...recs.map((x) => x.timestamp ?? ts)),
    };
    out.push(a);
    pending.push(
      p.then((res) => {
        assert.equal(res.baseOffset, base);
        assert.equal(res.recordCount, recs.length);
        assert.equal(res.lastOffset, base + recs.length - 1);
      }),
    );
    if (pending.length >= inFlight) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  return out;
}

export function flat(batches: Appended[]): Expected[] {
  return batches.flatMap((b) => b.records);
}

/** Every record from `from` to the hw, read through `read` in chunks of `maxBytes`, each batch CRC-checked. */
export function readAll(log: PartitionLog, from = log.startOffset, maxBytes = 64 * 1024): Expected[] {
  const out: Expected[] = [];
  let next = from;
  for (let guard = 0; guard < 10_000_000; guard++) {
    const r = log.read(next, maxBytes);
    if (r === null) return out;
    assert.ok(r.nextOffset > next, `read(${next}) made no progress`);
    for (const rec of decodeBatches(r.bytes, next)) out.push(normStored(rec));
    next = r.nextOffset;
  }
  throw new Error('readAll did not finish');
}

/** Asserts that `fn` throws a SluiceError with this code (and reason, when given). */
export function assertCode(fn: () => unknown, code: string, reason?: string): void {
  assert.throws(fn, (err: unknown) => {
    const e = err as { code?: string; reason?: string };
    assert.equal(e.code, code, `code of ${String(err)}`);
    if (reason !== undefined) assert.equal(e.reason, reason, `reason of ${String(err)}`);
    return true;
  });
}

export async function assertRejectsCode(p: Promise<unknown>, code: string, reason?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    const e = err as { code?: string; reason?: string };
    assert.equal(e.code, code, `code of ${String(err)}`);
    if (reason !== undefined) assert.equal(e.reason, reason, `reason of ${String(err)}`);
    return true;
  });
}

/** The segment files of a partition directory, by base offset. */
export function segmentBases(dir: string): number[] {
  return fs
    .readdirSync(dir)
    .map((n) => /^(\d{20})\.log$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

export function segPath(dir: string, base: number, ext: 'log' | 'index' | 'timeindex'): string {
  return path.join(dir, segmentFileName(base, ext));
}

/** Reads from `from` to the hw, following gaps; returns the records and the gaps met. */
export function readWithGaps(log: LogPartition, from = log.startOffset): { records: ReturnType<typeof normStored>[]; gaps: { from: number; to: number }[] } {
  const records: ReturnType<typeof normStored>[] = [];
  const gaps: { from: number; to: number }[] = [];
  let next = from;
  for (let guard = 0; guard < 100_000; guard++) {
    const r = log.read(next, 4096);
    if (r === null) return { records, gaps };
    if (r.gap) {
      assert.equal(r.gap.from, next, 'a gap starts at the offset asked for');
      assert.equal(r.firstOffset, r.gap.to, 'and the bytes start where it ends');
      gaps.push(r.gap);
      next = r.gap.to;
    }
    assert.ok(r.firstOffset <= next, 'no silent jump');
    for (const rec of decodeBatches(r.bytes, next)) records.push(normStored(rec));
    next = r.nextOffset;
  }
  throw new Error('did not finish');
}

/** Offset and byte position of the middle batch of segment `base`. */
export function middleBatch(dir: string, base: number): { position: number; offset: number; size: number } {
  const buf = fs.readFileSync(segPath(dir, base, 'log'));
  const list: { position: number; offset: number; size: number }[] = [];
  for (let pos = 0; pos < buf.length; ) {
    const size = buf.readInt32BE(pos + 8) + 12;
    list.push({ position: pos, offset: Number(buf.readBigInt64BE(pos)), size });
    pos += size;
  }
  return list[list.length >> 1];
}

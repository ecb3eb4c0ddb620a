/**
 * Shared by the hostile-input tests: a seeded generator (the seed is printed; replay a run
 * with `SEED=<n> npm test -- hostile`), the topic names a fuzzer throws at the server, a
 * check that nothing was created outside the data directory, and a read-back of every
 * record the server holds.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ERROR_CODES } from '../../engine/errors.ts';
import { rng } from '../helpers/random.ts';
import { http } from '../helpers/server.ts';

export interface Rng {
  seed: number;
  /** [0, 1) */
  next(): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  bytes(n: number): Buffer;
  chance(p: number): boolean;
}

/** The shared mulberry32 (test/helpers/random.ts) with a printed seed and a few conveniences. */
export function seeded(name: string): Rng {
  const seed = process.env.SEED ? Number(process.env.SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  console.log(`${name}: SEED=${seed}`);
  const next = rng(seed);
  const int = (n: number): number => Math.floor(next() * n);
  return {
    seed,
    next,
    int,
    pick: (xs) => xs[int(xs.length)],
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
    chance: (p) => next() < p,
  };
}

/** Valid names the fuzzers publish to (a few, so that the read-back stays small). */
export const goodTopics = ['fz', 'fz.a', 'fz-b_c', 'F'.repeat(249)] as const;

/** Names that must be refused, each aimed at the file system or the validator. */
export const badTopics = [
  '',
  '.',
  '..',
  '../x',
  '../../etc/passwd',
  'a/b',
  '/abs',
  'a\\b',
  '..\\x',
  'x\0y',
  'F'.repeat(250),
  'ü',
  'topic😀',
  '%2e%2e',
  'a b',
  'meta/../../x',
] as const;

export const errorCodes = new Set<string>(ERROR_CODES);

/**
 * The data directory lives at `<root>/data`; after a fuzz `<root>` must hold only `data`,
 * and `data` only the engine's own entries and `<valid topic>-<partition>` directories.
 */
export function assertNothingEscaped(root: string): void {
  assert.deepEqual(fs.readdirSync(root), ['data'], `something was created beside the data directory in ${root}`);
  const dataDir = path.join(root, 'data');
  for (const e of fs.readdirSync(dataDir, { withFileTypes: true })) {
    if (e.name === 'meta' || e.name === '.lock') continue;
    if (e.name === 'groups') {
      // Consumer-group offsets (engine/offset-store.ts): hex or sha256 file names only.
      for (const f of fs.readdirSync(path.join(dataDir, 'groups'))) assert.match(f, /^([0-9a-f]+|sha256-[0-9a-f]{64})\.json$/, `unexpected group file ${JSON.stringify(f)}`);
      continue;
    }
    assert.ok(e.isDirectory() && /^[a-zA-Z0-9._-]{1,249}-\d+$/.test(e.name), `unexpected entry ${JSON.stringify(e.name)} in the data directory`);
  }
  for (const f of fs.readdirSync(path.join(dataDir, 'meta'))) {
    assert.match(f, /^[a-zA-Z0-9._-]{1,249}\.json$/, `unexpected meta file ${JSON.stringify(f)}`);
  }
}

/** Every record of every partition, read back over the HTTP API: `topic/partition` → count. */
export async function readBack(base: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const get = async (url: string): Promise<any> => {
    const res = await fetch(url, { headers });
    assert.equal(res.status, 200, url);
    return res.json();
  };
  const { topics } = await get(`${base}/v1/topics`);
  for (const t of topics) {
    for (const p of t.partitions) {
      let n = 0;
      let from = p.start;
      for (;;) {
        const r = await get(`${base}/v1/topics/${t.name}/records?partition=${p.partition}&from=${from}&limit=10000`);
        n += r.records.length;
        if (r.records.length === 0 || r.next >= r.hw) break;
        from = r.next;
      }
      assert.equal(n, p.hw - p.start, `${t.name}/${p.partition}: read back ${n} records, hw-start is ${p.hw - p.start}`);
      out.set(`${t.name}/${p.partition}`, n);
    }
  }
  return out;
}

export async function assertAlive(base: string): Promise<void> {
  const r = await http('GET', `${base}/healthz`);
  assert.equal(r.status, 200);
}

export function sumByKey(m: Map<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}

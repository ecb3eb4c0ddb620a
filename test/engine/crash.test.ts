/**
 * Process kills, for real: a child process (fixtures/crash-writer.ts) appends and prints
 * every acknowledged offset; the parent SIGKILLs it at a random moment — mid-append,
 * mid-fsync, mid-roll, sometimes while it is still recovering the previous round's log —
 * then reopens the log and checks that every acknowledged record is there and intact,
 * that every record present is intact, and that appends go on at the hw without reusing
 * an offset. Both flush policies promise that a process kill loses nothing acknowledged
 * (wire contract §1), so both are killed.
 *
 * Rounds per permutation: CRASH_ROUNDS, default 20 under flush=always and 10 under
 * interval (each round is a process start, ~0.3 s of CPU: the suite stays bounded).
 * SEED=<n> replays a run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { decodeBatches, encodeRecordBatch } from '../../engine/codec/record-batch.ts';
import { recordFor } from './fixtures/crash-content.ts';
import { type Ctx, type Expected, expectedOf, int, matrix, normStored } from './helpers.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
const roundsFor = (flush: string): number => Number(process.env.CRASH_ROUNDS ?? (flush === 'always' ? 20 : 10));
const SEGMENT_BYTES = 64 * 1024;

interface Round {
  acked: { base: number; count: number }[];
  readyHw: number | null;
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/**
 * Runs the writer and kills it: after `afterAcks` acknowledgements, or (when `atMs` is
 * set) that many ms after the spawn, whatever it is doing then.
 */
function runAndKill(ctx: Ctx, env: Record<string, string>, kill: { afterAcks: number } | { atMs: number }): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const round: Round = { acked: [], readyHw: null, signal: null, code: null, stderr: '' };
    let buf = '';
    let killed = false;
    const killNow = (): void => {
      if (killed) return;
      killed = true;
      child.kill('SIGKILL');
    };
    const timer = 'atMs' in kill ? setTimeout(killNow, kill.atMs) : null;
    // A writer that never gets going must not hang the suite.
    const watchdog = setTimeout(killNow, 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const [word, a, b] = line.split(' ');
        if (word === 'ready') round.readyHw = Number(a);
        else if (word === 'ack') round.acked.push({ base: Number(a), count: Number(b) });
        else round.stderr += `unexpected output: ${line}\n`;
        if ('afterAcks' in kill && (word === 'ack' || kill.afterAcks === 0) && round.acked.length >= kill.afterAcks) killNow();
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      round.stderr += s;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      clearTimeout(watchdog);
      round.code = code;
      round.signal = signal;
      resolve(round);
    });
  });
}

matrix(
  'SIGKILL at random moments loses no acknowledged record and reuses no offset',
  async (ctx) => {
    const r = ctx.rng();
    const contentSeed = int(r, 1, 2 ** 31);
    const expect = (offset: number): Expected => ({ ...expectedOf([recordFor(contentSeed, offset)], offset, 0)[0], timestamp: 0 });
    /** Offsets below this were read back and checked in an earlier round. */
    let verified = 0;
    let kills = 0;
    let ackedTotal = 0;
    for (let round = 0; round < roundsFor(ctx.flush); round++) {
      const kill = round % 5 === 4 ? { atMs: int(r, 0, 400) } : { afterAcks: int(r, 0, 150) };
      const res = await runAndKill(
        ctx,
        {
          DIR: ctx.dir,
          FLUSH: ctx.flush,
          CODEC: ctx.codec,
          CONTENT_SEED: String(contentSeed),
          SEED: String(int(r, 0, 2 ** 31)),
          SEGMENT_BYTES: String(SEGMENT_BYTES),
        },
        kill,
      );
      const what = `round ${round} (${JSON.stringify(kill)})`;
      assert.equal(res.signal, 'SIGKILL', `${what}: the writer died by the kill, not on its own (code ${res.code}): ${res.stderr}`);
      assert.equal(res.stderr, '', `${what}: the writer reported nothing wrong`);
      kills++;
      ackedTotal += res.acked.length;
      if (res.readyHw !== null) assert.equal(res.readyHw, verified, `${what}: the writer recovered the hw the parent left`);

      const log = ctx.openLog(ctx.dir, { segmentBytes: SEGMENT_BYTES }, 'e');
      const ackedEnd = Math.max(verified, ...res.acked.map((a) => a.base + a.count));
      assert.ok(log.hw >= ackedEnd, `${what}: hw ${log.hw} covers every acknowledged offset (up to ${ackedEnd})`);
      assert.equal(log.startOffset, 0);
      // Every record from the last checked offset on: dense, CRC-checked, each the record written there.
      let next = verified;
      while (next < log.hw) {
        const chunk = log.read(next, 256 * 1024);
        assert.ok(chunk, `${what}: read(${next})`);
        for (const rec of decodeBatches(chunk.bytes, next)) {
          assert.equal(rec.offset, next, `${what}: offsets are dense`);
          assert.deepEqual({ ...normStored(rec), timestamp: 0 }, expect(next), `${what}: record ${next} is intact`);
          next++;
        }
        assert.equal(next, chunk.nextOffset);
      }
      for (const a of res.acked) assert.ok(a.base + a.count <= next, `${what}: acknowledged ${a.base}+${a.count} is present`);
      // The parent appends too: it must land at the hw, not on top of anything the child wrote.
      const hw = log.hw;
      const own = await log.append(encodeRecordBatch([recordFor(contentSeed, hw)], { codec: ctx.codec }));
      assert.equal(own.baseOffset, hw, `${what}: appends continue at the hw`);
      verified = hw + 1;
      await log.close();
    }
    // Once more from the start: nothing checked in an earlier round changed since.
    const log = ctx.openLog(ctx.dir, { segmentBytes: SEGMENT_BYTES }, 'e');
    assert.equal(log.hw, verified);
    let n = 0;
    for (let next = 0; next < log.hw; ) {
      const chunk = log.read(next, 1 << 20)!;
      for (const rec of decodeBatches(chunk.bytes, next)) {
        assert.deepEqual({ ...normStored(rec), timestamp: 0 }, expect(rec.offset));
        n++;
      }
      next = chunk.nextOffset;
    }
    assert.equal(n, verified);
    assert.ok(log.segmentCount > 1, 'the kills also landed on a log that rolls');
    ctx.t.diagnostic(`${kills} kills, ${ackedTotal} acknowledged batches, ${verified} records, ${log.segmentCount} segments`);
  },
  { timeout: 300_000, concurrency: 2 },
);

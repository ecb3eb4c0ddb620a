/**
 * Disk full, for real: a `sluice serve` process whose data directory is on a 32 MiB tmpfs.
 *
 *   1. a filler file takes part of the tmpfs; the server is started on the rest;
 *   2. PRODUCE batches of incompressible values until appends answer UNAVAILABLE;
 *   3. every acknowledged record reads back, byte for byte, and every segment file is a
 *      clean run of whole batches (nothing torn, nothing after the last batch);
 *   4. the server restarts on the full disk and reads the same records back;
 *   5. the filler is deleted, and publishing succeeds again without a restart.
 *
 * Needs root (mount). Where mounting is not permitted the test is skipped with the reason.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { batchSizeAt, checkBatch, encodeRecordBatch } from '../../engine/codec/index.ts';
import { produceFrame } from '../../src/gateway/frames.ts';
import { Client, type ServerProcess, startServer, tempDir } from '../helpers/server.ts';

const TMPFS_BYTES = 32 * 1024 * 1024;
const FILLER_BYTES = 6 * 1024 * 1024;
const VALUE_BYTES = 48 * 1024;
const WINDOW = 8;

function mountTmpfs(dir: string): string | null {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a tmpfs';
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.error) return `mount not available: ${r.error.message}`;
  if (r.status !== 0) return `mount refused: ${r.stderr.trim()}`;
  return null;
}

/** Every segment file must be whole batches back to back, ending exactly at the last one. */
function assertSegmentsClean(dataDir: string): number {
  let batches = 0;
  for (const d of fs.readdirSync(dataDir)) {
    if (!/-\d+$/.test(d)) continue;
    for (const f of fs.readdirSync(path.join(dataDir, d)).filter((f) => f.endsWith('.log'))) {
      const buf = fs.readFileSync(path.join(dataDir, d, f));
      let pos = 0;
      while (pos < buf.length) {
        const size = batchSizeAt(buf, pos, buf.length);
        assert.ok(size > 0, `${d}/${f}: no whole batch at ${pos} of ${buf.length}`);
        checkBatch(buf, pos, pos + size); // lengths and CRC
        pos += size;
        batches++;
      }
      assert.equal(pos, buf.length, `${d}/${f} has bytes after its last batch`);
    }
  }
  return batches;
}

async function readAll(c: Client, topic: string, expected: number): Promise<Map<number, string>> {
  await c.request({ op: 'sub', topic, partition: 0, from: 'earliest' });
  await c.until(() => c.recordsOf(topic, 0).length >= expected, `${expected} records`);
  const out = new Map<number, string>();
  for (const r of c.recordsOf(topic, 0)) out.set(r.offset, crypto.createHash('sha256').update(r.value!).digest('hex'));
  return out;
}

test('disk full: UNAVAILABLE, nothing acked lost, no segment torn, publishing resumes when space returns', async (t) => {
  const root = tempDir('sluice-diskfull-');
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  const why = mountTmpfs(mnt);
  if (why) {
    console.log(`disk-full test skipped: ${why}`);
    fs.rmSync(root, { recursive: true, force: true });
    t.skip(why);
    return;
  }
  let srv: ServerProcess | null = null;
  try {
    const filler = path.join(mnt, 'filler');
    fs.writeFileSync(filler, crypto.randomBytes(FILLER_BYTES));
    const dataDir = path.join(mnt, 'data');
    const args = ['--segment-bytes', String(4 * 1024 * 1024), '--flush', 'always'];
    srv = await startServer({ dataDir, args });
    const c = await Client.connect(srv.url);
    const acked = new Map<number, string>(); // offset → sha256 of the value
    let unavailable: Record<string, any> | null = null;
    let id = 0;
    const sentValues = new Map<number, Buffer>();
    while (unavailable === null) {
      assert.ok(id < 4 * (TMPFS_BYTES / VALUE_BYTES), 'the disk never filled');
      const ids: number[] = [];
      for (let i = 0; i < WINDOW; i++) {
        const value = crypto.randomBytes(VALUE_BYTES);
        sentValues.set(++id, value);
        ids.push(id);
        c.ws.send(produceFrame(id, 'full', 0, encodeRecordBatch([{ value }])));
      }
      for (const fid of ids) {
        const a = await c.waitMessage((m) => m.id === fid, `answer ${fid}`);
        if (a.op === 'ack') acked.set(a.offset, crypto.createHash('sha256').update(sentValues.get(fid)!).digest('hex'));
        else {
          assert.equal(a.code, 'UNAVAILABLE', JSON.stringify(a));
          unavailable ??= a;
        }
        sentValues.delete(fid);
      }
    }
    console.log(`disk full after ${acked.size} acked records: ${JSON.stringify(unavailable)}`);
    // Still full: more publishes are refused the same way, JSON ones too.
    const again = await c.request({ op: 'pub', id: 1_000_000, topic: 'full', value64: crypto.randomBytes(VALUE_BYTES).toString('base64') });
    assert.equal(again.code, 'UNAVAILABLE', JSON.stringify(again));

    // Every acked record reads back, byte for byte; every segment is clean.
    const reader = await Client.connect(srv.url);
    assert.deepEqual(await readAll(reader, 'full', acked.size), acked);
    assert.ok(assertSegmentsClean(dataDir) >= acked.size);
    reader.close();
    c.close();

    // A clean stop on the full disk, then a restart that recovers exactly the acked records.
    assert.equal(await srv.stop(), 0, srv.stderr());
    srv = await startServer({ dataDir, args });
    const r2 = await Client.connect(srv.url);
    assert.deepEqual(await readAll(r2, 'full', acked.size), acked);
    assertSegmentsClean(dataDir);

    // Space returns: publishing resumes by itself (a retry or two while the kernel frees pages).
    fs.rmSync(filler);
    let ok: Record<string, any> | null = null;
    for (let i = 0; i < 50 && ok === null; i++) {
      const a = await r2.request({ op: 'pub', topic: 'full', value: `after ${i}` });
      if (a.op === 'ack') ok = a;
      else {
        assert.equal(a.code, 'UNAVAILABLE');
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    assert.ok(ok, 'publishing did not resume after space was freed');
    assert.equal(ok!.offset, acked.size, 'the first offset after the refusals follows the acked ones: nothing was half-appended');
    await r2.until(() => r2.recordsOf('full', 0).some((r) => r.offset === ok!.offset), 'the new record');
    r2.close();
    assert.equal(await srv.stop(), 0);
    assertSegmentsClean(dataDir);
  } finally {
    await srv?.stop();
    const u = spawnSync('umount', [mnt], { encoding: 'utf8' });
    if (u.status !== 0) spawnSync('umount', ['-l', mnt]);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

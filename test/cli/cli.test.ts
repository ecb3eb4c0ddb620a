/**
 * The everyday CLI tools against a real server, as a shell pipeline uses them: data on
 * stdout only, messages on stderr, exit codes 0 / 1 (failed) / 2 (bad usage).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ServerProcess, startServer } from '../client/server-process.ts';
import { sluice } from '../helpers/cli.ts';

describe('sluice CLI', () => {
  let server: ServerProcess;
  let url: string[];
  before(async () => {
    server = await startServer();
    url = ['--url', server.url];
  });
  after(async () => {
    await server?.stop();
  });

  test('produce then consume: one record per line, in order', async () => {
    const lines = Array.from({ length: 500 }, (_, i) => `line ${i} ✓`);
    const p = await sluice(['produce', ...url, '--topic', 'pipe'], `${lines.join('\n')}\n`);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.stdout, '', 'produce prints nothing without --json');
    const c = await sluice(['consume', ...url, '--topic', 'pipe']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, `${lines.join('\n')}\n`);
    assert.equal(c.stderr, '');
    const j = await sluice(['consume', ...url, '--topic', 'pipe', '--from', '10', '--limit', '2', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const recs = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { offset: number; value: string; partition: number });
    assert.deepEqual(
      recs.map((r) => [r.partition, r.offset, r.value]),
      [
        [0, 10, 'line 10 ✓'],
        [0, 11, 'line 11 ✓'],
      ],
    );
  });

  test('produce --json prints one ack per record; --key places by key', async () => {
    const c = await sluice(['topics', 'create', 'keyed', '--partitions', '3', ...url]);
    assert.equal(c.code, 0, c.stderr);
    const p = await sluice(['produce', ...url, '--topic', 'keyed', '--key', 'same', '--json'], 'a\nb\nc\n');
    assert.equal(p.code, 0, p.stderr);
    const acks = p.stdout.trim().split('\n').map((l) => JSON.parse(l) as { partition: number; offset: number });
    assert.equal(acks.length, 3);
    assert.equal(new Set(acks.map((a) => a.partition)).size, 1);
    assert.deepEqual(acks.map((a) => a.offset), [0, 1, 2]);
  });

  test('topics list / describe / delete, text and --json', async () => {
    await sluice(['produce', ...url, '--topic', 'listed'], 'x\n');
    const list = await sluice(['topics', ...url, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const names = (JSON.parse(list.stdout) as { topics: { name: string }[] }).topics.map((t) => t.name);
    assert.ok(names.includes('listed'));
    const text = await sluice(['topics', 'describe', 'listed', ...url]);
    assert.match(text.stdout, /^TOPIC\s+PARTITION\s+START\s+HW/);
    assert.match(text.stdout, /listed\s+0\s+0\s+1\s/);
    const del = await sluice(['topics', 'delete', 'listed', ...url]);
    assert.equal(del.code, 0, del.stderr);
    const gone = await sluice(['topics', 'describe', 'listed', ...url]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /UNKNOWN_TOPIC/);
    assert.equal(gone.stdout, '');
  });

  test('dump decodes a segment file; replay --raw writes batches dump reads back', async () => {
    await sluice(['topics', 'create', 'dumped', '--partitions', '1', ...url]);
    await sluice(['produce', ...url, '--topic', 'dumped', '--key', 'k'], 'one\ntwo\nthree\n');
    const dir = path.join(server.dataDir, 'dumped-0');
    const seg = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.log'))!);
    const d = await sluice(['dump', seg, '--json']);
    assert.equal(d.code, 0, d.stderr);
    const recs = d.stdout.trim().split('\n').map((l) => JSON.parse(l) as { offset: number; key: string; value: string });
    assert.deepEqual(
      recs.map((r) => [r.offset, r.key, r.value]),
      [
        [0, 'k', 'one'],
        [1, 'k', 'two'],
        [2, 'k', 'three'],
      ],
    );
    const b = await sluice(['dump', seg, '--batches']);
    assert.match(b.stdout, /^position=0 offsets=0\.\.2 count=3 codec=lz4 /);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-'));
    try {
      const raw = path.join(tmp, 'raw.log');
      const r = await sluice(['replay', '--replay-url', `tcp://127.0.0.1:${server.replayPort}`, '--topic', 'dumped', '--raw', '--out', raw]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(fs.readFileSync(raw), fs.readFileSync(seg).subarray(0, fs.statSync(raw).size));
      const back = await sluice(['dump', raw]);
      assert.equal(back.code, 0, back.stderr);
      assert.equal(back.stdout.trim().split('\n').length, 3);
      const text = await sluice(['replay', '--replay-url', `tcp://127.0.0.1:${server.replayPort}`, '--topic', 'dumped', '--from', '1']);
      assert.equal(text.stdout, 'two\nthree\n');
      // A corrupt byte inside the batch: dump names the position and exits 1.
      const bad = Buffer.from(fs.readFileSync(raw));
      bad[bad.length - 3] ^= 0xff;
      fs.writeFileSync(raw, bad);
      const corrupt = await sluice(['dump', raw]);
      assert.equal(corrupt.code, 1);
      assert.match(corrupt.stderr, /bad batch at position 0: CRC-32C mismatch/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('exit codes: 1 with the wire code on stderr, 2 for bad usage', async () => {
    const unknown = await sluice(['consume', ...url, '--topic', 'never-created']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /UNKNOWN_TOPIC/);
    assert.equal(unknown.stdout, '');
    const usage = await sluice(['consume', ...url, '--topic', 't', '--limit', 'lots']);
    assert.equal(usage.code, 2);
    const missing = await sluice(['consume', ...url]);
    assert.equal(missing.code, 2);
    const refused = await sluice(['produce', '--url', 'ws://127.0.0.1:1', '--topic', 't'], 'x\n');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /UNAVAILABLE/);
    const badUrl = await sluice(['consume', '--url', 'ws://127.0.0.1:1,not a url', '--topic', 't']);
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /--url "not a url" is not a URL/);
    const badScheme = await sluice(['topics', '--url', 'ftp://127.0.0.1:1']);
    assert.equal(badScheme.code, 2);
    assert.match(badScheme.stderr, /scheme must be ws, wss, http or https/);
  });

  test('--url takes several addresses: the first that answers is used, for the WebSocket and for HTTP', async () => {
    // Port 1 refuses connections: the tools go on to the next address.
    const urls = ['--url', `ws://127.0.0.1:1,${server.url}`];
    const p = await sluice(['produce', ...urls, '--topic', 'multi', '--json'], 'a\nb\n');
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(p.stdout.trim().split('\n').map((l) => JSON.parse(l).offset), [0, 1]);
    const c = await sluice(['consume', ...urls, '--topic', 'multi']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, 'a\nb\n');
    const t = await sluice(['topics', 'describe', 'multi', ...urls, '--json']);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(JSON.parse(t.stdout).name, 'multi');
    const none = await sluice(['consume', '--url', 'ws://127.0.0.1:1,ws://127.0.0.1:2', '--topic', 'multi']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /UNAVAILABLE.*127\.0\.0\.1:1.*127\.0\.0\.1:2/);
  });
});

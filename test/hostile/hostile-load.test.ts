/**
 * Hostile load (issue 14): each attack that crashed, wedged or ballooned the server, run
 * again against a real server process, one test per defect. Around each attack
 * (./attack.ts): the server answers a `ping` on another connection, and accepts new ones,
 * within a bound while it runs; its anonymous memory (heaps and buffers: RssAnon, without
 * the mapped segment files) stays under a cap; the attack gets the documented code; the
 * server restarts cleanly on its data; and every record acknowledged is there afterwards.
 *
 * The caps are far below what each attack used to cost (GBs) and far above a healthy
 * server (~100 MB); they are memory bounds, not timings.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { PARTITION_ANY, decodeBatches, encodeRecordBatch, produceFrame } from '../../engine/codec/index.ts';
import { segPath, segmentBases } from '../engine/helpers.ts';
import { installNativeCodecs } from '../../engine/native-codecs.ts';
import { replay } from '../../src/client/replay.ts';
import { mintToken } from '../../src/cli/token.ts';
import { headerBomb, rawRecord, timedBatch, wrapRecords } from '../helpers/attack-batches.ts';
import { Client, type ServerProcess, http, startServer, tempDir } from '../helpers/server.ts';
import { type Acked, assertAckedStored, probe, publishAcked, restart } from './attack.ts';

installNativeCodecs();

const MiB = 1024 * 1024;

/** Sends PRODUCE frames and waits for one answer each; returns the answers by id. */
async function produceAll(c: Client, frames: { id: number; topic: string; batch: Uint8Array }[], window = 200): Promise<Map<number, Record<string, any>>> {
  const out = new Map<number, Record<string, any>>();
  for (let i = 0; i < frames.length; i += window) {
    const slice = frames.slice(i, i + window);
    for (const f of slice) c.ws.send(produceFrame(f.id, f.topic, PARTITION_ANY, f.batch));
    await c.until(() => slice.every((f) => c.messages.some((m) => m.id === f.id)), `answers to ${slice.length} PRODUCE frames`);
  }
  for (const m of c.messages) if (typeof m.id === 'number') out.set(m.id, m);
  c.messages.length = 0;
  return out;
}

async function withServer(args: string[], fn: (srv: ServerProcess) => Promise<ServerProcess | void>, opts: { ulimit?: number; dataDir?: string } = {}): Promise<void> {
  let srv = await startServer({ args, ulimit: opts.ulimit, dataDir: opts.dataDir });
  try {
    srv = (await fn(srv)) ?? srv;
    assert.doesNotMatch(srv.stderr(), /"level":60/, 'the server logged a fatal error');
  } finally {
    await srv.stop();
  }
}

test('regression 1: GET …/records over large records answers within a byte budget, says `more`, and continues from `next`', { timeout: 240_000 }, async () => {
  const args = ['--max-frame-bytes', String(2 * MiB), '--max-record-bytes', String(2 * MiB), '--flush', 'never'];
  await withServer(args, async (srv) => {
    const c = await Client.connect(srv.url);
    const N = 160;
    const values = Array.from({ length: N }, (_, i) => crypto.createHash('sha256').update(String(i)).digest('hex'));
    const frames = values.map((v, i) => ({ id: i + 1, topic: 'big', batch: encodeRecordBatch([{ key: Buffer.from(v), value: crypto.randomBytes(MiB) }], { codec: 'none' }) }));
    const answers = await produceAll(c, frames, 20);
    assert.ok([...answers.values()].every((a) => a.op === 'ack'), 'every 1 MiB record acked');
    c.close();
    const acked = await publishAcked(srv, 'small', 20);
    const p = await probe(srv);
    // The attack: limit=10000 over 160 MiB of records, four at once, three rounds.
    for (let round = 0; round < 3; round++) {
      const rs = await Promise.all(Array.from({ length: 4 }, () => http('GET', `${srv.http}/v1/topics/big/records?from=earliest&limit=10000`)));
      for (const r of rs) {
        assert.equal(r.status, 200, r.text.slice(0, 200));
        assert.ok(r.body.records.length >= 1 && r.body.records.length <= 4, `${r.body.records.length} records of 1 MiB in one answer`);
        assert.equal(r.body.more, true, 'the answer says there is more');
        assert.equal(r.body.next, r.body.records.length);
      }
    }
    const result = await p.stop();
    assert.ok(result.rssAnonMaxBytes < 600 * MiB, `RssAnon reached ${result.rssAnonMaxBytes >> 20} MiB`);
    // Following `next` reads every record, whole.
    let next = 0;
    let seen = 0;
    for (let guard = 0; guard < 1000 && next < N; guard++) {
      const r = await http('GET', `${srv.http}/v1/topics/big/records?from=${next}&limit=10000`);
      assert.equal(r.status, 200);
      for (const rec of r.body.records) {
        assert.equal(rec.key, values[rec.offset]);
        assert.equal(Buffer.from(rec.value64, 'base64').length, MiB);
        seen++;
      }
      next = r.body.next;
    }
    assert.equal(seen, N);
    const again = await restart(srv, args);
    await assertAckedStored(again, acked);
    return again;
  });
});

test('regression 2: the LZ4 header bomb is refused (TOO_LARGE) without stalling the server or storing anything', { timeout: 180_000 }, async () => {
  await withServer([], async (srv) => {
    const acked = await publishAcked(srv, 'kept', 20);
    const p = await probe(srv);
    const c = await Client.connect(srv.url);
    // 33.5 M two-byte headers in one record: 64 MiB of content in a ~270 KB frame.
    const bomb = headerBomb(33_500_000);
    const answers = await produceAll(c, Array.from({ length: 8 }, (_, i) => ({ id: i + 1, topic: 'bomb', batch: bomb })), 4);
    for (const a of answers.values()) {
      assert.equal(a.op, 'error');
      assert.equal(a.code, 'TOO_LARGE', a.message);
      assert.match(a.message, /headers/);
    }
    // Within the header limit but past the decoded bytes: 128-header records, 17 MB of them.
    const spread = headerBomb(128, Date.now(), 66_000); // many records of a few headers each
    const more = await produceAll(c, [{ id: 100, topic: 'bomb', batch: spread }]);
    assert.equal(more.get(100)!.code, 'TOO_LARGE');
    c.close();
    const result = await p.stop();
    assert.ok(result.rssAnonMaxBytes < 400 * MiB, `RssAnon reached ${result.rssAnonMaxBytes >> 20} MiB`);
    // Nothing was stored: the topic was not even created.
    assert.equal((await http('GET', `${srv.http}/v1/topics/bomb`)).status, 404);
    const again = await restart(srv);
    await assertAckedStored(again, acked);
    return again;
  });
});

test('regression 3: --max-record-bytes covers key + value + headers on PRODUCE, pub and POST', { timeout: 120_000 }, async () => {
  const args = ['--max-record-bytes', '1024', '--partitions', '1'];
  await withServer(args, async (srv) => {
    const p = await probe(srv);
    const c = await Client.connect(srv.url);
    const huge = new Uint8Array(60 * MiB);
    const big = Buffer.alloc(1025, 97);
    const frames = [
      // 60 MiB of zeros as a key, then as a header value: a few hundred KB of LZ4 frame each.
      { id: 1, topic: 'rb', batch: wrapRecords(rawRecord({ offsetDelta: 0, key: huge }), { codec: 'lz4', recordCount: 1 }) },
      { id: 2, topic: 'rb', batch: wrapRecords(rawRecord({ offsetDelta: 0, headers: [[Buffer.from('h'), huge]] }), { codec: 'lz4', recordCount: 1 }) },
      { id: 3, topic: 'rb', batch: encodeRecordBatch([{ key: big, value: null }]) },
      { id: 4, topic: 'rb', batch: encodeRecordBatch([{ value: Buffer.alloc(600), headers: [{ key: 'h', value: Buffer.alloc(600) }] }]) },
      // Exactly 1024 bytes of key, value and headers: accepted.
      { id: 5, topic: 'rb', batch: encodeRecordBatch([{ key: Buffer.alloc(24), value: Buffer.alloc(900), headers: [{ key: 'hh', value: Buffer.alloc(98) }] }]) },
    ];
    const answers = await produceAll(c, frames);
    for (const id of [1, 2, 3, 4]) assert.equal(answers.get(id)!.code, 'TOO_LARGE', `frame ${id}: ${JSON.stringify(answers.get(id))}`);
    assert.equal(answers.get(5)!.op, 'ack');
    // JSON publishes: key, headers.
    const pubs = [
      { op: 'pub', id: 10, topic: 'rb', key: 'k'.repeat(1025), value: 'v' },
      { op: 'pub', id: 11, topic: 'rb', value: 'v', headers: { h: 'x'.repeat(1025) } },
      { op: 'pub', id: 12, topic: 'rb', value: 'v'.repeat(500), key: 'é'.repeat(300) },
      { op: 'pub', id: 13, topic: 'rb', value: 'v'.repeat(1000), key: 'k'.repeat(24) },
    ];
    for (const m of pubs) c.send(m);
    await c.until(() => [10, 11, 12, 13].every((id) => c.messages.some((m) => m.id === id)), 'pub answers');
    for (const id of [10, 11, 12]) assert.equal(c.messages.find((m) => m.id === id)!.code, 'TOO_LARGE', `pub ${id}`);
    assert.equal(c.messages.find((m) => m.id === 13)!.op, 'ack');
    const post = await http('POST', `${srv.http}/v1/topics/rb/records`, { records: [{ key: 'k'.repeat(2000), value: 'v' }] });
    assert.equal(post.status, 413);
    assert.equal(post.body.code, 'TOO_LARGE');
    c.close();
    const result = await p.stop();
    assert.ok(result.rssAnonMaxBytes < 400 * MiB, `RssAnon reached ${result.rssAnonMaxBytes >> 20} MiB`);
    // Exactly the two accepted records are stored.
    const r = await http('GET', `${srv.http}/v1/topics/rb/records?limit=100`);
    assert.equal(r.body.records.length, 2);
    const again = await restart(srv, args);
    assert.equal((await http('GET', `${again.http}/v1/topics/rb/records?limit=100`)).body.records.length, 2);
    return again;
  });
});

test('regression 4: record timestamps that jump past --segment-ms never roll a segment per batch; segments follow the server clock', { timeout: 180_000 }, async () => {
  const args = ['--segment-ms', '1000', '--flush', 'never', '--partitions', '1'];
  await withServer(args, async (srv) => {
    const fdsBefore = srv.fds();
    const p = await probe(srv);
    const c = await Client.connect(srv.url);
    const t0 = Date.now() - 30 * 86_400_000;
    const N = 3000;
    const started = Date.now();
    // Each batch dated 2 s after the one before: every batch "older than segmentMs".
    const frames = Array.from({ length: N }, (_, i) => ({ id: i + 1, topic: 'jumpy', batch: timedBatch([t0 + i * 2000]) }));
    const answers = await produceAll(c, frames);
    const elapsedS = (Date.now() - started) / 1000;
    assert.ok([...answers.values()].every((a) => a.op === 'ack'), 'past timestamps are accepted');
    c.close();
    const result = await p.stop();
    const info = (await http('GET', `${srv.http}/v1/topics/jumpy`)).body;
    const segments = info.partitions[0].segments;
    assert.ok(segments <= Math.ceil(elapsedS) + 2, `${segments} segments in ${elapsedS.toFixed(1)} s (one per batch used to be ${N})`);
    assert.ok(srv.fds() < fdsBefore + 3 * (Math.ceil(elapsedS) + 3) + 20, `the server holds ${srv.fds()} descriptors`);
    assert.ok(result.rssAnonMaxBytes < 400 * MiB);
    const again = await restart(srv, args);
    const r = await http('GET', `${again.http}/v1/topics/jumpy/records?limit=10000`);
    assert.equal(r.body.records.length, N, 'every acked record is there');
    return again;
  });
});

test('regression 5: an auto-create flood under a low ulimit stops at the descriptor reserve (UNAVAILABLE), never INTERNAL, never a spin; --max-topics refuses with BAD_REQUEST; restart works', { timeout: 240_000 }, async () => {
  const ulimit = 512;
  const args = ['--flush', 'never', '--log-level', 'info'];
  await withServer(
    args,
    async (srv) => {
      // pino writes asynchronously: the line may land just after the listening line.
      for (let i = 0; i < 50 && !/RLIMIT_NOFILE 512/.test(srv.stderr()); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(srv.stderr(), /RLIMIT_NOFILE 512/, 'the limit is logged at start');
      const acked = await publishAcked(srv, 'before', 10);
      const p = await probe(srv);
      const c = await Client.connect(srv.url);
      const T = 400;
      for (let i = 0; i < T; i++) c.send({ op: 'pub', id: i + 1, topic: `flood-${i}`, value: 'x' });
      await c.until(() => c.messages.filter((m) => m.id >= 1 && m.id <= T).length >= T, 'flood answers', 120_000);
      const codes = new Map<string, number>();
      const created: string[] = [];
      for (const m of c.messages) {
        const k = m.op === 'ack' ? 'ack' : `${m.code}`;
        codes.set(k, (codes.get(k) ?? 0) + 1);
        if (m.op === 'ack') created.push(`flood-${m.id - 1}`);
        else assert.equal(m.code, 'UNAVAILABLE', JSON.stringify(m));
      }
      assert.ok((codes.get('ack') ?? 0) >= 30, `acks: ${JSON.stringify(Object.fromEntries(codes))}`);
      assert.ok((codes.get('UNAVAILABLE') ?? 0) > 0, 'the flood reached the reserve');
      // The reserve left room for connections: 40 new ones at once, each answering.
      const fresh = await Promise.all(Array.from({ length: 40 }, () => Client.connect(srv.url)));
      for (const f of fresh) assert.equal((await f.request({ op: 'ping' })).op, 'pong');
      for (const f of fresh) f.close();
      c.close();
      const result = await p.stop();
      assert.ok(result.rssAnonMaxBytes < 400 * MiB);
      const topics = (await http('GET', `${srv.http}/v1/topics`)).body.topics.map((t: { name: string }) => t.name);
      assert.deepEqual(topics.filter((t: string) => t.startsWith('flood-')).sort(), [...created].sort());
      const metas = fs.readdirSync(path.join(srv.dataDir, 'meta')).filter((f) => f.endsWith('.json'));
      assert.equal(metas.length, topics.length, 'no metadata left by a refused create');
      // A restart under the same limit succeeds; then --max-topics caps what is there.
      let again = await restart(srv, args, { ulimit });
      await assertAckedStored(again, acked);
      again = await restart(again, [...args, '--max-topics', String(topics.length)], { ulimit });
      const c2 = await Client.connect(again.url);
      const a = await c2.request({ op: 'pub', topic: 'one-too-many', value: 'x' });
      assert.equal(a.code, 'BAD_REQUEST');
      assert.match(a.message, /--max-topics/);
      c2.close();
      return again;
    },
    { ulimit },
  );
});

test('regression 6: pipelined HTTP requests from a client that never reads do not pile up in the server', { timeout: 120_000 }, async () => {
  const secret = 'hostile-load-secret-hostile-load-secret';
  await withServer(['--auth-secret', secret], async (srv) => {
    const token = await mintToken({ secret, acl: { pub: ['*'], sub: ['*'] } });
    const headers = { authorization: `Bearer ${token}` };
    const acked = await publishAcked(srv, 'kept', 10, headers);
    // The bundle is built on first use: ask once, as a browser would, so the attack meets it ready.
    const first = await fetch(`${srv.http}/sluice-client.js`);
    assert.equal(first.status, 200);
    const bundleBytes = (await first.arrayBuffer()).byteLength;
    assert.ok(bundleBytes > 10_000);
    const p = await probe(srv, headers);
    const sock = net.connect(srv.port, '127.0.0.1');
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    sock.pause(); // never read
    let closed = false;
    sock.on('close', () => (closed = true));
    sock.on('error', () => {});
    const one = Buffer.from('GET /sluice-client.js HTTP/1.1\r\nHost: x\r\n\r\n');
    const chunk = Buffer.concat(Array.from({ length: 1000 }, () => one));
    let sent = 0;
    let maxAnon = 0;
    for (let i = 0; i < 60 && !closed; i++) {
      sock.write(chunk);
      sent += chunk.length;
      maxAnon = Math.max(maxAnon, srv.rssAnon());
      await new Promise((r) => setTimeout(r, 20));
    }
    for (let i = 0; i < 50 && !closed; i++) await new Promise((r) => setTimeout(r, 100));
    maxAnon = Math.max(maxAnon, srv.rssAnon());
    sock.destroy();
    const result = await p.stop();
    assert.ok(closed, `the server closed the connection (after ${sent} bytes of requests)`);
    assert.ok(Math.max(maxAnon, result.rssAnonMaxBytes) < 400 * MiB, `RssAnon reached ${Math.max(maxAnon, result.rssAnonMaxBytes) >> 20} MiB`);
    // A client that reads gets the whole bundle, big as it is, through the same path.
    const again = await fetch(`${srv.http}/sluice-client.js`);
    assert.equal((await again.arrayBuffer()).byteLength, bundleBytes);
    const next = await restart(srv, ['--auth-secret', secret]);
    await assertAckedStored(next, acked, token);
    return next;
  });
});

test('regression 7: WebSocket clients that never read get their connection closed with 1008, never an answer dropped in silence', { timeout: 180_000 }, async () => {
  await withServer(['--partitions', '64'], async (srv) => {
    const acked = await publishAcked(srv, 'kept', 10);
    await http('PUT', `${srv.http}/v1/topics/wide`, { partitions: 64 });
    const p = await probe(srv);
    const SOCKETS = 8;
    const METAS = 4000; // ~3 KB answers each: 12 MB per socket, far past the backlog bound
    const PUBS = 100;
    const conns = await Promise.all(
      Array.from({ length: SOCKETS }, async () => {
        const ws = new WebSocket(srv.url);
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        const state = { ws, answers: [] as Record<string, any>[], closeCode: null as number | null };
        ws.on('message', (d: Buffer, bin: boolean) => {
          if (!bin) state.answers.push(JSON.parse(d.toString()));
        });
        ws.on('close', (code) => (state.closeCode = code));
        (ws as unknown as { _socket: net.Socket })._socket.pause(); // stop reading
        return state;
      }),
    );
    for (const s of conns) {
      for (let i = 0; i < METAS; i++) s.ws.send(JSON.stringify({ op: 'meta', id: i + 1, topic: 'wide' }));
      for (let i = 0; i < PUBS; i++) s.ws.send(JSON.stringify({ op: 'pub', id: 100_000 + i, topic: 'unread', value: `u-${i}` }));
    }
    // Let the server take all of it while nobody reads.
    let maxAnon = 0;
    for (let i = 0; i < 30; i++) {
      maxAnon = Math.max(maxAnon, srv.rssAnon());
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const s of conns) (s.ws as unknown as { _socket: net.Socket })._socket.resume();
    for (const s of conns) {
      const deadline = Date.now() + 60_000;
      while (s.closeCode === null && s.answers.length < METAS + PUBS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    }
    const result = await p.stop();
    let closedWith1008 = 0;
    const ackedUnread: { offset: number; value: string }[] = [];
    for (const s of conns) {
      if (s.closeCode === null) assert.equal(s.answers.length, METAS + PUBS, 'an open connection got every answer');
      else {
        assert.equal(s.closeCode, 1008, 'closed with the policy code');
        closedWith1008++;
      }
      for (const a of s.answers) if (a.op === 'ack') ackedUnread.push({ offset: a.offset, value: `u-${a.id - 100_000}` });
      s.ws.terminate();
    }
    assert.ok(closedWith1008 > 0, 'the unread connections were closed');
    assert.ok(Math.max(maxAnon, result.rssAnonMaxBytes) < 600 * MiB, `RssAnon reached ${Math.max(maxAnon, result.rssAnonMaxBytes) >> 20} MiB`);
    // Every ack that did arrive names a stored record.
    if (ackedUnread.length > 0) {
      const r = await http('GET', `${srv.http}/v1/topics/unread/records?limit=10000`);
      const stored = new Map<number, string>(r.body.records.map((x: { offset: number; value: string }) => [x.offset, x.value]));
      for (const a of ackedUnread) assert.equal(stored.get(a.offset), a.value);
    }
    assert.match(srv.stderr(), /does not read its answers/);
    const again = await restart(srv, ['--partitions', '64']);
    await assertAckedStored(again, acked);
    return again;
  });
});

test('regression 8: a far-future maxTimestamp, or far-future records, are refused; a small clock skew is not', { timeout: 120_000 }, async () => {
  await withServer(['--partitions', '1'], async (srv) => {
    const acked = await publishAcked(srv, 'future', 10);
    const p = await probe(srv);
    const c = await Client.connect(srv.url);
    const now = Date.now();
    const y2100 = Date.UTC(2100, 0, 1);
    const answers = await produceAll(c, [
      { id: 1, topic: 'future', batch: timedBatch([now], { maxTimestamp: y2100 }) },
      { id: 2, topic: 'future', batch: timedBatch([now, y2100]) },
      { id: 3, topic: 'future', batch: timedBatch([now + 2 * 3600_000], { codec: 'lz4' }) },
      { id: 4, topic: 'future', batch: timedBatch([now + 30 * 60_000]) },
    ]);
    assert.equal(answers.get(1)!.code, 'BAD_REQUEST', 'a maxTimestamp the records do not hold');
    assert.match(answers.get(1)!.message, /maxTimestamp/);
    assert.equal(answers.get(2)!.code, 'BAD_REQUEST', 'a record dated 2100');
    assert.match(answers.get(2)!.message, /ahead of the server's clock/);
    assert.equal(answers.get(3)!.code, 'BAD_REQUEST', 'two hours ahead');
    assert.equal(answers.get(4)!.op, 'ack', 'half an hour of skew is taken');
    c.close();
    await p.stop();
    const info = (await http('GET', `${srv.http}/v1/topics/future`)).body;
    assert.equal(info.partitions[0].hw, 11, 'only the good batch was stored');
    const again = await restart(srv, ['--partitions', '1']);
    await assertAckedStored(again, acked);
    return again;
  });
});

test('regression 9: restart after damage: a lost metadata file, a deleted middle segment, a stray …999999.log and a bad CRC are each handled without losing or inventing data', { timeout: 240_000 }, async () => {
  const args = ['--segment-bytes', String(64 * 1024), '--partitions', '1', '--flush', 'never'];
  const dataDir = path.join(tempDir('sluice-damage-'), 'data');
  let srv = await startServer({ dataDir, args });
  let acked: Acked[];
  const fill = async (topic: string): Promise<void> => {
    const c = await Client.connect(srv.url);
    const frames = Array.from({ length: 100 }, (_, i) => ({
      id: i + 1,
      topic,
      batch: encodeRecordBatch(Array.from({ length: 10 }, (_, j) => ({ value: Buffer.from(`${topic}-${i * 10 + j}-${'x'.repeat(300)}`) })), { codec: 'none' }),
    }));
    const answers = await produceAll(c, frames);
    assert.ok([...answers.values()].every((a) => a.op === 'ack'));
    c.close();
  };
  try {
    for (const t of ['nometa', 'hole', 'stray', 'crc']) await fill(t);
    acked = await publishAcked(srv, 'kept', 20);
    const hwOf = async (t: string): Promise<number> => (await http('GET', `${srv.http}/v1/topics/${t}`)).body.partitions[0].hw;
    const hw = { hole: await hwOf('hole'), stray: await hwOf('stray'), crc: await hwOf('crc') };
    assert.equal(await srv.stop(), 0);

    const seg = (t: string): number[] => segmentBases(path.join(dataDir, `${t}-0`));
    const segFile = (t: string, base: number, ext: 'log' | 'index' | 'timeindex' = 'log'): string => segPath(path.join(dataDir, `${t}-0`), base, ext);
    fs.rmSync(path.join(dataDir, 'meta', 'nometa.json'));
    const holeBases = seg('hole');
    assert.ok(holeBases.length >= 4, `${holeBases.length} segments`);
    for (const ext of ['log', 'index', 'timeindex'] as const) fs.rmSync(segFile('hole', holeBases[1], ext));
    fs.writeFileSync(segFile('stray', 999_999), '');
    const crcBases = seg('crc');
    const crcFile = segFile('crc', crcBases[1]);
    const bytes = fs.readFileSync(crcFile);
    // A record byte of the segment's first batch: a CRC failure only (its header still reads
    // right, and it lies before the index entries, so the segment is trusted at open).
    bytes[100] ^= 0x55;
    fs.writeFileSync(crcFile, bytes);

    srv = await startServer({ dataDir, args });
    const p = await probe(srv);
    // The lost metadata: the data is kept aside, loudly, not deleted.
    assert.equal((await http('GET', `${srv.http}/v1/topics/nometa`)).status, 404);
    assert.ok(fs.existsSync(path.join(dataDir, 'lost+found', 'nometa-0')), 'kept in lost+found/');
    assert.match(srv.stderr(), /lost\+found/);
    // The deleted middle segment: a gap over HTTP and over the WebSocket, at the right place.
    const holeFrom = holeBases[1];
    const holeTo = holeBases[2];
    let next = 0;
    let gap: { from: number; to: number } | undefined;
    let count = 0;
    for (let guard = 0; guard < 100 && next < hw.hole; guard++) {
      const r = await http('GET', `${srv.http}/v1/topics/hole/records?from=${next}&limit=10000`);
      assert.equal(r.status, 200);
      if (r.body.gap) gap = r.body.gap;
      count += r.body.records.length;
      next = r.body.next;
    }
    assert.deepEqual(gap, { from: holeFrom, to: holeTo });
    assert.equal(count, hw.hole - (holeTo - holeFrom));
    const replayed: { from: number; to: number }[] = [];
    let replayedRecords = 0;
    for await (const chunk of replay({ url: `tcp://127.0.0.1:${srv.replayPort}`, topic: 'hole', partition: 0, from: 0 })) {
      if (chunk.gap) replayed.push(chunk.gap);
      replayedRecords += decodeBatches(chunk.bytes).length;
    }
    assert.deepEqual(replayed, [{ from: holeFrom, to: holeTo }], 'the replay chunk after the hole says gap');
    assert.equal(replayedRecords, count);
    const ws = await Client.connect(srv.url);
    ws.send({ op: 'sub', topic: 'hole', partition: 0, from: 'earliest' });
    const g = await ws.waitMessage((m) => m.op === 'gap', 'gap');
    assert.deepEqual([g.from, g.to], [holeFrom, holeTo]);
    // The stray segment moved nothing.
    assert.equal(await hwOf('stray'), hw.stray);
    // The bad CRC: the server's fault, on every read path.
    const get = await http('GET', `${srv.http}/v1/topics/crc/records?from=${crcBases[1]}&limit=10000`);
    assert.equal(get.status, 503);
    assert.equal(get.body.code, 'UNAVAILABLE');
    ws.send({ op: 'sub', topic: 'crc', partition: 0, from: { offset: crcBases[1] } });
    const e = await ws.waitMessage((m) => m.op === 'error' && m.topic === 'crc', 'subscription error');
    assert.equal(e.code, 'UNAVAILABLE');
    ws.close();
    await assert.rejects(
      (async () => {
        for await (const _ of replay({ url: `tcp://127.0.0.1:${srv.replayPort}`, topic: 'crc', partition: 0, from: crcBases[1] })) {
          // drain
        }
      })(),
      (err: { code?: string }) => err.code === 'UNAVAILABLE',
    );
    await p.stop();
    await assertAckedStored(srv, acked);
    srv = await restart(srv, args);
    await assertAckedStored(srv, acked);
    assert.equal(await hwOf('hole'), hw.hole);
  } finally {
    await srv.stop();
  }
});

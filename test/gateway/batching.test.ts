/**
 * The core claim of the inbound design: JSON publishes to one partition that arrive within
 * one linger on one thread, from any number of connections, are appended as ONE
 * RecordBatch, and each publisher is answered with its own record's offset inside it. With
 * the front on T threads (SLUICE_THREADS, as the suite runs it) each thread builds its own
 * batch: at most T batches, and every connection's publishes in one of them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeBatchRecords, readBatchHeader } from '../../engine/codec/index.ts';
import { Client, http, startServer } from '../helpers/server.ts';

const CONNECTIONS = 5;
const PER_CONNECTION = 40;

const THREADS = Number(process.env.SLUICE_THREADS ?? 1);

test(`${CONNECTIONS * PER_CONNECTION} JSON publishes from ${CONNECTIONS} connections within one linger become one batch per thread (${THREADS}) on disk`, async () => {
  // A long linger and a large batch so that nothing but the linger ends the batch; the
  // publishes below all leave within a few milliseconds of each other.
  const srv = await startServer({ args: ['--threads', String(THREADS), '--linger-ms', '1000', '--batch-bytes', String(16 * 1024 * 1024), '--flush', 'always'] });
  const clients: Client[] = [];
  try {
    assert.equal((await http('PUT', `${srv.http}/v1/topics/one`, { partitions: 1 })).status, 201);
    for (let i = 0; i < CONNECTIONS; i++) clients.push(await Client.connect(srv.url));
    const ids = clients.map((c, n) => Array.from({ length: PER_CONNECTION }, (_, k) => c.send({ op: 'pub', topic: 'one', key: `c${n}`, value: `c${n}-${k}` })));
    const acks = await Promise.all(
      clients.map(async (c, n) => {
        await c.until(() => c.messages.filter((m) => m.op === 'ack' || m.op === 'error').length === PER_CONNECTION, `acks of connection ${n}`);
        return c.messages.filter((m) => ids[n].includes(m.id));
      }),
    );
    const offsets = acks.flat().map((m) => {
      assert.equal(m.op, 'ack', JSON.stringify(m));
      return m.offset as number;
    });
    assert.deepEqual([...offsets].sort((a, b) => a - b), Array.from({ length: CONNECTIONS * PER_CONNECTION }, (_, i) => i), 'dense, distinct offsets');

    const file = fs.readFileSync(path.join(srv.dataDir, 'one-0', '00000000000000000000.log'));
    const byOffset = new Map<number, string>();
    const batchOf = new Map<number, number>();
    let batches = 0;
    for (let pos = 0; pos < file.length; batches++) {
      const h = readBatchHeader(file, pos);
      for (const r of decodeBatchRecords(file, pos, h)) {
        byOffset.set(r.offset, Buffer.from(r.value!).toString());
        batchOf.set(r.offset, batches);
      }
      pos += h.size;
    }
    if (THREADS === 1) assert.equal(batches, 1, 'the segment holds exactly one batch');
    else assert.ok(batches >= 1 && batches <= THREADS, `${batches} batches from ${THREADS} threads`);
    assert.equal(byOffset.size, CONNECTIONS * PER_CONNECTION);
    clients.forEach((c, n) => {
      // Each publisher's ack names the offset its own value got, and a connection's
      // publishes (all on its one thread) share one batch.
      for (const m of acks[n]) {
        const k = ids[n].indexOf(m.id);
        assert.equal(byOffset.get(m.offset), `c${n}-${k}`);
      }
      assert.equal(new Set(acks[n].map((m) => batchOf.get(m.offset))).size, 1, `connection ${n} in one batch`);
    });
  } finally {
    for (const c of clients) c.close();
    assert.equal(await srv.stop(), 0);
  }
});

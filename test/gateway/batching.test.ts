/**
 * The core claim of the inbound design: JSON publishes to one partition that arrive within
 * one linger, from any number of connections, are appended as ONE RecordBatch, and each
 * publisher is answered with its own record's offset inside it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeBatchRecords, readBatchHeader } from '../../engine/codec/index.ts';
import { Client, http, startServer } from '../helpers/server.ts';

const CONNECTIONS = 5;
const PER_CONNECTION = 40;

test(`${CONNECTIONS * PER_CONNECTION} JSON publishes from ${CONNECTIONS} connections within one linger become exactly one batch on disk`, async () => {
  // A long linger and a large batch so that nothing but the linger ends the batch; the
  // publishes below all leave within a few milliseconds of each other.
  const srv = await startServer({ args: ['--linger-ms', '1000', '--batch-bytes', String(16 * 1024 * 1024), '--flush', 'always'] });
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
    const h = readBatchHeader(file, 0);
    assert.equal(h.size, file.length, 'the segment holds exactly one batch');
    assert.equal(h.recordCount, CONNECTIONS * PER_CONNECTION);
    // Each publisher's ack names the offset its own value got inside that batch.
    const byOffset = new Map(decodeBatchRecords(file, 0, h).map((r) => [r.offset, Buffer.from(r.value!).toString()]));
    clients.forEach((c, n) => {
      for (const m of acks[n]) {
        const k = ids[n].indexOf(m.id);
        assert.equal(byOffset.get(m.offset), `c${n}-${k}`);
      }
    });
  } finally {
    for (const c of clients) c.close();
    assert.equal(await srv.stop(), 0);
  }
});

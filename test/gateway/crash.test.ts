/**
 * "`always` acks and shows a record only after it is fsynced, so neither a process kill nor
 * a power loss loses an acked record": SIGKILL the server while publishers are busy,
 * restart it on the same directory, and read back every acked offset.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeRecordBatch } from '../../engine/codec/index.ts';
import { installNativeCodecs } from '../../engine/index.ts';
import { produceFrame } from '../../src/gateway/frames.ts';
import { Client, http, startServer } from '../helpers/server.ts';

installNativeCodecs();

test('SIGKILL under flush=always loses no acked record (JSON pub and PRODUCE)', async () => {
  const srv = await startServer({ args: ['--flush', 'always', '--partitions', '2'] });
  const acked = new Map<string, string>(); // "partition:offset" -> value
  const clients: Client[] = [];
  let stop = false;
  const pubs = Array.from({ length: 4 }, async (_, n) => {
    const c = await Client.connect(srv.url);
    clients.push(c);
    let seq = 0;
    const sent = new Map<number, string[]>();
    c.ws.on('message', (d: Buffer, bin: boolean) => {
      if (bin) return;
      const m = JSON.parse(d.toString());
      if (m.op !== 'ack') return;
      const vals = sent.get(m.id)!;
      vals.forEach((v, i) => acked.set(`${m.partition}:${m.offset + i}`, v));
    });
    // Keep ~50 publishes in flight per connection until the kill.
    while (!stop && c.closed === null) {
      for (let k = 0; k < 50 && c.ws.readyState === 1; k++) {
        const id = ++seq;
        if (n === 0 && id % 5 === 0) {
          const vals = [`c${n}-${id}-a`, `c${n}-${id}-b`, `c${n}-${id}-c`];
          sent.set(id, vals);
          c.ws.send(produceFrame(id, 'crash', id % 2, encodeRecordBatch(vals.map((v) => ({ value: Buffer.from(v) })))));
        } else {
          const v = `c${n}-${id}`;
          sent.set(id, [v]);
          c.ws.send(JSON.stringify({ op: 'pub', id, topic: 'crash', value: v }));
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  // Kill once a good number of records are acked (bounded wait).
  for (let i = 0; i < 600 && acked.size < 3000; i++) await new Promise((r) => setTimeout(r, 50));
  await srv.kill();
  stop = true;
  await Promise.all(pubs);
  for (const c of clients) c.close();
  const ackedAtKill = new Map(acked);
  assert.ok(ackedAtKill.size >= 3000, `only ${ackedAtKill.size} acked`);

  const again = await startServer({ dataDir: srv.dataDir, args: ['--flush', 'always'] });
  try {
    const stored = new Map<string, string>();
    for (const p of [0, 1]) {
      let from = 0;
      for (let guard = 0; guard < 1000; guard++) {
        const r = await http('GET', `${again.http}/v1/topics/crash/records?partition=${p}&from=${from}&limit=10000`);
        assert.equal(r.status, 200);
        for (const rec of r.body.records) stored.set(`${p}:${rec.offset}`, rec.value);
        if (r.body.next >= r.body.hw) break;
        from = r.body.next;
      }
    }
    let missing = 0;
    for (const [k, v] of ackedAtKill) {
      if (stored.get(k) !== v) missing++;
    }
    assert.equal(missing, 0, `${missing} of ${ackedAtKill.size} acked records missing or different after the kill`);
    // What survived is dense: offsets 0..hw-1 of each partition, none missing.
    const info = await http('GET', `${again.http}/v1/topics/crash`);
    for (const p of info.body.partitions as { partition: number; hw: number }[]) {
      for (let o = 0; o < p.hw; o++) assert.ok(stored.has(`${p.partition}:${o}`), `offset ${o} of partition ${p.partition} is missing below the hw ${p.hw}`);
    }
    // The server goes on from where the log ends: the next record takes the old hw, no offset is reused.
    const hw0 = (info.body.partitions as { partition: number; hw: number }[]).find((p) => p.partition === 0)!.hw;
    const c = await Client.connect(again.url);
    const a = await c.request({ op: 'pub', topic: 'crash', partition: 0, value: 'after' });
    assert.equal(a.offset, hw0);
    const r = await http('GET', `${again.http}/v1/topics/crash/records?partition=0&from=${a.offset}`);
    assert.equal(r.body.records[0].value, 'after');
    c.close();
  } finally {
    assert.equal(await again.stop(), 0);
  }
});

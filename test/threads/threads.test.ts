/**
 * The WebSocket/HTTP front on several threads of one process (--threads), against a real
 * server: connections land on every thread (the kernel spreads them), and still nothing is
 * lost, reordered or duplicated; every subscriber, live or catching up from the segment
 * files its thread maps itself, gets every record in offset order; --max-connections
 * counts over all threads; /metrics sums them; a topic created through one thread is
 * known on all of them when the creation is answered, and its deletion reaches
 * subscribers on every thread. (The whole gateway suite also runs at --threads 2.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, http, refusedUpgrade, startServer } from '../helpers/server.ts';

/** Text LZ4 cannot shrink much, so that the partitions roll segments. */
function noise(chars: number): string {
  let s = '';
  while (s.length < chars) s += Math.random().toString(36).slice(2);
  return s.slice(0, chars);
}

/** Threads seen answering /healthz over fresh connections (each fetch opens its own). */
async function threadsAnswering(base: string, tries: number): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < tries; i++) {
    const res = await fetch(`${base}/healthz`, { headers: { connection: 'close' } });
    seen.add(((await res.json()) as { thread: number }).thread);
  }
  return seen;
}

test('3 threads: 12 publishers and 8 subscribers spread over them; nothing lost, reordered or duplicated', async () => {
  const THREADS = 3;
  const srv = await startServer({ args: ['--threads', String(THREADS), '--flush', 'never', '--segment-bytes', String(64 * 1024)] });
  const clients: Client[] = [];
  try {
    const seen = await threadsAnswering(srv.http, 60);
    assert.deepEqual([...seen].sort(), [0, 1, 2], 'every thread serves (60 connections spread by the kernel)');
    assert.equal((await http('PUT', `${srv.http}/v1/topics/t`, { partitions: 2 })).status, 201);
    const early = await Promise.all(Array.from({ length: 4 }, () => Client.connect(srv.url)));
    clients.push(...early);
    for (const c of early) assert.equal((await c.request({ op: 'sub', topic: 't', from: 'earliest' })).op, 'subbed');
    const pubs = await Promise.all(Array.from({ length: 12 }, () => Client.connect(srv.url)));
    clients.push(...pubs);
    const PER = 200;
    // Keys k0..k2 on each publisher: per key, one partition; per connection, arrival order.
    const sent = pubs.map((c, n) => Array.from({ length: PER }, (_, i) => c.send({ op: 'pub', topic: 't', key: `p${n}k${i % 3}`, value: `p${n}-${i}-${noise(100)}` })));
    await Promise.all(pubs.map((c, n) => c.until(() => c.messages.filter((m) => sent[n].includes(m.id)).length === PER, `acks of publisher ${n}`)));
    for (const c of pubs) for (const m of c.messages) assert.equal(m.op, 'ack', JSON.stringify(m));
    const total = 12 * PER;
    // Late subscribers catch up from the segments (several: 64 KiB each) on their own threads.
    const late = await Promise.all(Array.from({ length: 4 }, () => Client.connect(srv.url)));
    clients.push(...late);
    for (const c of late) await c.request({ op: 'sub', topic: 't', from: 'earliest' });
    const topic = (await http('GET', `${srv.http}/v1/topics/t`)).body;
    assert.equal(topic.partitions[0].hw + topic.partitions[1].hw, total);
    assert.ok(topic.partitions.some((p: { segments: number }) => p.segments > 1), 'the partitions rolled segments');
    for (const [i, c] of [...early, ...late].entries()) {
      await c.until(() => c.records.length >= total, `subscriber ${i}`);
      assert.equal(c.records.length, total, `subscriber ${i}: no duplicate`);
      for (const p of [0, 1]) {
        const offsets = c.recordsOf('t', p).map((r) => r.offset);
        assert.deepEqual(offsets, Array.from({ length: topic.partitions[p].hw }, (_, k) => k), `subscriber ${i} partition ${p}: dense and in order`);
      }
      // Each publisher's records of one key come in the order it sent them.
      const last = new Map<string, number>();
      for (const r of c.records) {
        const [pub, seq] = Buffer.from(r.value!).toString().split('-');
        const k = `${pub}/${r.key && Buffer.from(r.key).toString()}`;
        assert.ok((last.get(k) ?? -1) < Number(seq), `subscriber ${i}: ${k} in order`);
        last.set(k, Number(seq));
      }
    }
  } finally {
    for (const c of clients) c.close();
    assert.equal(await srv.stop(), 0);
  }
});

test('--max-connections counts the connections of every thread', async () => {
  const srv = await startServer({ args: ['--threads', '2', '--max-connections', '6'] });
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 6; i++) clients.push(await Client.connect(srv.url));
    for (let i = 0; i < 4; i++) {
      const r = await refusedUpgrade(srv.url);
      assert.equal(r.status, 503, 'the 7th connection is refused, whichever thread takes it');
      assert.equal(r.body.code, 'UNAVAILABLE');
    }
    clients.pop()!.close();
    // The count is given back when the socket closes: wait for the server to see it.
    let again: Client | null = null;
    for (let i = 0; i < 100 && !again; i++) {
      again = await Client.connect(srv.url).catch(() => null);
      if (!again) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(again, 'a place freed on any thread is taken on any thread');
    clients.push(again);
  } finally {
    for (const c of clients) c.close();
    assert.equal(await srv.stop(), 0);
  }
});

test('/metrics sums every thread, whichever answers', async () => {
  const srv = await startServer({ args: ['--threads', '3', '--flush', 'never'] });
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 9; i++) clients.push(await Client.connect(srv.url));
    for (const [i, c] of clients.entries()) await c.request({ op: 'pub', topic: 'm', value: `v${i}` });
    const value = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    for (let i = 0; i < 6; i++) {
      const text = (await http('GET', `${srv.http}/metrics`)).text;
      assert.equal(value(text, 'sluice_ws_connections'), 9, text.slice(0, 500));
      assert.equal(value(text, 'sluice_records_in_total'), 9);
      assert.ok(value(text, 'sluice_process_cpu_seconds_total') > 0, 'process metrics once, from the log thread');
    }
  } finally {
    for (const c of clients) c.close();
    assert.equal(await srv.stop(), 0);
  }
});

test('a topic created through one thread is known on all of them once answered; its deletion reaches every thread', async () => {
  const srv = await startServer({ args: ['--threads', '3', '--auto-create', 'false'] });
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 12; i++) clients.push(await Client.connect(srv.url));
    for (let round = 0; round < 5; round++) {
      const name = `fresh-${round}`;
      assert.equal((await http('PUT', `${srv.http}/v1/topics/${name}`, { partitions: 1 })).status, 201);
      // At once, on every connection, whatever thread it is on: no UNKNOWN_TOPIC.
      const answers = await Promise.all(clients.map((c) => c.request({ op: 'pub', topic: name, value: 'v' })));
      for (const a of answers) assert.equal(a.op, 'ack', JSON.stringify(a));
      for (const c of clients) assert.equal((await c.request({ op: 'sub', topic: name, from: 'earliest' })).op, 'subbed');
      assert.equal((await http('DELETE', `${srv.http}/v1/topics/${name}`)).status, 200);
      await Promise.all(clients.map((c) => c.waitMessage((m) => m.op === 'error' && m.code === 'UNKNOWN_TOPIC' && m.topic === name, `deletion of ${name}`)));
    }
  } finally {
    for (const c of clients) c.close();
    assert.equal(await srv.stop(), 0);
  }
});

test('threads share their port; another process is refused it, whatever either thread count', async () => {
  for (const [firstThreads, secondThreads] of [
    [2, 1],
    [1, 2],
    [3, 3],
  ]) {
    const first = await startServer({ args: ['--threads', String(firstThreads)] });
    try {
      assert.equal((await http('PUT', `${first.http}/v1/topics/mine`, { partitions: 1 })).status, 201);
      await assert.rejects(startServer({ args: ['--threads', String(secondThreads), '--port', String(first.port)] }), (err: Error) => {
        assert.match(err.message, /the port is already in use/, `${firstThreads} then ${secondThreads} threads`);
        assert.match(err.message, /PORT_IN_USE/);
        return true;
      });
      // Every connection still reaches the first server's threads and its one log.
      for (let i = 0; i < 12; i++) {
        const r = await fetch(`${first.http}/v1/topics`, { headers: { connection: 'close' } });
        assert.deepEqual(((await r.json()) as { topics: { name: string }[] }).topics.map((t) => t.name), ['mine']);
      }
    } finally {
      assert.equal(await first.stop(), 0);
    }
  }
});

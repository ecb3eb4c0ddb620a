/**
 * What every hostile-load regression test checks around its attack (issue 14), against a
 * real server process:
 * - `probe`: while the attack runs, the server answers a `ping` on a connection of its own,
 *   and a fresh connection now and then, each within `pingBoundMs`; its RSS is sampled;
 * - `publishAcked` / `assertAckedStored`: records acknowledged before (or during) the
 *   attack are all there afterwards, after a restart too;
 * - `restart`: a clean stop and a start on the same data directory.
 * The bound is a hang guard sized for a loaded 2-core machine: a server blocked for the
 * 10-18 s the attacks used to cost, or spinning without accepting, fails it; ordinary
 * latency is three orders of magnitude below it.
 */
import assert from 'node:assert/strict';
import { Client, type ServerProcess, http, httpAs, startServer } from '../helpers/server.ts';

/** A ping (or a new connection's first ping) unanswered this long fails the test. */
export const pingBoundMs = 10_000;
/** Time between probes. */
const probeEveryMs = 200;

export interface ProbeResult {
  pings: number;
  /** New connections opened (and pinged) during the attack. */
  connections: number;
  slowestMs: number;
  rssMaxBytes: number;
  /** The largest RssAnon seen: heaps and buffers, without the mapped segment files. */
  rssAnonMaxBytes: number;
}

export interface Probe {
  /** Stops probing; rejects when a ping went unanswered past the bound or a connection failed. */
  stop(): Promise<ProbeResult>;
}

async function pingOnce(c: Client, id: number): Promise<void> {
  c.send({ op: 'ping', id });
  await c.until(() => c.messages.some((m) => m.op === 'pong' && m.id === id), `pong ${id}`, pingBoundMs);
}

/** Starts probing `srv` (headers: the token, when auth is on). */
export async function probe(srv: ServerProcess, headers: Record<string, string> = {}): Promise<Probe> {
  const c = await Client.connect(srv.url, { headers });
  const result: ProbeResult = { pings: 0, connections: 0, slowestMs: 0, rssMaxBytes: srv.rss(), rssAnonMaxBytes: srv.rssAnon() };
  let failure: Error | null = null;
  let running = true;
  let id = 1;
  const loop = (async () => {
    while (running) {
      const t0 = Date.now();
      try {
        if (result.pings % 5 === 4) {
          // A new connection: a server out of descriptors or spinning on accept fails here.
          const fresh = await Promise.race([
            Client.connect(srv.url, { headers }),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no new connection within ${pingBoundMs} ms`)), pingBoundMs)),
          ]);
          await pingOnce(fresh, 1);
          fresh.close();
          result.connections++;
        } else {
          await pingOnce(c, id++);
          c.messages.length = 0;
        }
      } catch (err) {
        failure = err as Error;
        return;
      }
      result.pings++;
      result.slowestMs = Math.max(result.slowestMs, Date.now() - t0);
      try {
        result.rssMaxBytes = Math.max(result.rssMaxBytes, srv.rss());
        result.rssAnonMaxBytes = Math.max(result.rssAnonMaxBytes, srv.rssAnon());
      } catch {
        // exited: the checks after the attack say so
      }
      await new Promise((r) => setTimeout(r, probeEveryMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      c.close();
      if (failure) throw new Error(`the server did not answer during the attack: ${failure.message}`);
      assert.ok(result.pings > 0, 'no ping was answered during the attack');
      return result;
    },
  };
}

export interface Acked {
  topic: string;
  partition: number;
  offset: number;
  value: string;
}

/** Publishes `n` JSON records to `topic` and waits for every ack. */
export async function publishAcked(srv: ServerProcess, topic: string, n: number, headers: Record<string, string> = {}): Promise<Acked[]> {
  const c = await Client.connect(srv.url, { headers });
  try {
    const stamp = Date.now();
    const ids = Array.from({ length: n }, (_, i) => c.send({ op: 'pub', topic, value: `${topic}-${i}-${stamp}` }));
    await c.until(() => c.messages.filter((m) => m.op === 'ack' || m.op === 'error').length >= n, `${n} acks`);
    return ids.map((id, i) => {
      const a = c.messages.find((m) => m.id === id)!;
      assert.equal(a.op, 'ack', `publish ${i} to ${topic}: ${JSON.stringify(a)}`);
      return { topic, partition: a.partition, offset: a.offset, value: `${topic}-${i}` };
    });
  } finally {
    c.close();
  }
}

/** Every acked record reads back, at its offset, with its value (prefix). */
export async function assertAckedStored(srv: ServerProcess, acked: Acked[], token: string | null = null): Promise<void> {
  const byPartition = new Map<string, Acked[]>();
  for (const a of acked) byPartition.set(`${a.topic}\0${a.partition}`, [...(byPartition.get(`${a.topic}\0${a.partition}`) ?? []), a]);
  for (const list of byPartition.values()) {
    const { topic, partition } = list[0];
    const from = Math.min(...list.map((a) => a.offset));
    const seen = new Map<number, string>();
    let next = from;
    for (let guard = 0; guard < 10_000 && seen.size < list.length; guard++) {
      const r = await httpAs(token, 'GET', `${srv.http}/v1/topics/${topic}/records?partition=${partition}&from=${next}&limit=1000`);
      assert.equal(r.status, 200, r.text);
      for (const rec of r.body.records) seen.set(rec.offset, rec.value);
      if (r.body.next >= r.body.hw) break;
      next = r.body.next;
    }
    for (const a of list) {
      const v = seen.get(a.offset);
      assert.ok(v !== undefined && v.startsWith(`${a.value}-`), `${topic}/${partition} offset ${a.offset}: acked, read back ${JSON.stringify(v)}`);
    }
  }
}

/** Stops the server cleanly and starts it again on the same data directory. */
export async function restart(srv: ServerProcess, args: string[] = [], opts: { ulimit?: number } = {}): Promise<ServerProcess> {
  assert.equal(await srv.stop(), 0, `the server did not stop cleanly:\n${srv.stderr().slice(-2000)}`);
  const again = await startServer({ dataDir: srv.dataDir, args, ulimit: opts.ulimit });
  assert.equal((await http('GET', `${again.http}/healthz`)).status, 200);
  return again;
}

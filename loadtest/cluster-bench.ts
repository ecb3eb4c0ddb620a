/**
 * Question: what does cluster mode cost and give, next to a single node and next to the
 * replicated engine underneath it, on this machine and in one run?
 *
 *   npm run bench:cluster [-- --seconds 5 --quick --only ingest,produce,fanout,latency]
 *
 * Targets (each its own processes on 127.0.0.1, this process generating the load):
 *   cluster          3 nats-servers (JetStream, streams at R3) + 2 sluice nodes (--cluster)
 *   single           one sluice node, --flush always (acked = fsynced on its one disk)
 *   jetstream-r3     the same 3 nats-servers, the official client (@nats-io/jetstream), a
 *                    file stream at R3: what sluice's own appends pay, without sluice
 *
 * Scenarios (each bounded in time; the first second is warm-up, not counted):
 *   ingest      JSON `pub` of 100 B from 100 connections, 200 in flight each (cluster: the
 *               connections spread over both nodes); jetstream-r3: js.publish of 100 B
 *   produce     PRODUCE of 1000 x 100 B record batches, 16 in flight per connection
 *               (cluster: one connection per node, each to its own partition);
 *               jetstream-r3: js.publish of the same 100 kB batch as one message
 *   fanout      1 publisher -> 1000 subscribers (cluster: all on one node, the publisher on
 *               the other, so the figure is one node's fan-out), twice: JSON publishes (the
 *               shared scenario: batches form as publishes arrive, so their size, and the
 *               rate, follow the publish-to-deliver latency), and PRODUCE batches of exactly
 *               100 records (the same delivery work on every node); jetstream-r3: 1000 core
 *               NATS subscriptions on the stream's subject, as a web team would fan out from it
 *   latency     publish-to-deliver at 10,000 msg/s, 10 subscribers (cluster: publisher on one
 *               node, subscribers on both), corrected for coordinated omission
 *
 * CPU% is the sum over every process of the target (3 nats-servers + 2 nodes for the cluster),
 * in % of one core, over the whole scenario; the machine has the cores printed below, shared
 * with this load generator.
 */
import fs from 'node:fs';
import os from 'node:os';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { DiscardPolicy, type JetStreamClient, RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { encodeRecordBatch } from '../engine/codec/index.ts';
import { installNativeCodecs } from '../engine/index.ts';
import { produceFrame } from '../src/gateway/frames.ts';
import { type NatsCluster, startNatsCluster } from '../test/cluster/nats-cluster.ts';
import { loadAverage, machine, sleep } from './lib/machine.ts';
import { cpuSeconds } from './lib/proc.ts';
import { scanData } from './lib/sluice-frames.ts';
import { type ServerProcess, startSluice } from './lib/spawn.ts';
import { formatTable, num } from './lib/table.ts';
import { type OnAck, type OnDeliver, PAYLOAD_BYTES, type Publisher, type Target } from './peers/targets.ts';
import { rawConnect } from './raw-ws.ts';
import { type Row, type Settings, fanout, ingest, latency } from './scenarios.ts';

installNativeCodecs();

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : undefined);
const quick = argv.includes('--quick');
const only = opt('only')?.split(',');
const want = (s: string): boolean => !only || only.includes(s);
const settings: Settings = {
  seconds: Number(opt('seconds') ?? (quick ? 2 : 5)),
  ingestConns: 100,
  fanoutSubs: [quick ? 200 : 1000],
  latencyRates: [10_000],
  latencySubs: 10,
  idleConns: 0,
  catchupGiB: 0,
};

/** CPU% (of one core) summed over several processes while `fn` runs. */
/** Records acked per second over the measured window, after a second of warm-up. Each ack counts 1000 records (a PRODUCE of 1000). */
async function ackedRate(acked: () => number): Promise<number> {
  await sleep(1000);
  const a0 = acked();
  const t0 = performance.now();
  await sleep(settings.seconds * 1000);
  return ((acked() - a0) * 1000) / ((performance.now() - t0) / 1000);
}

async function measured<T>(pids: () => number[], fn: () => Promise<T>): Promise<{ value: T; cpuPct: number }> {
  const total = () => pids().reduce((n, pid) => n + safeCpu(pid), 0);
  const c0 = total();
  const t0 = performance.now();
  const value = await fn();
  return { value, cpuPct: ((total() - c0) / ((performance.now() - t0) / 1000)) * 100 };
}

function safeCpu(pid: number): number {
  try {
    return cpuSeconds(pid);
  } catch {
    return 0;
  }
}

async function createTopic(http: string, topic: string, partitions: number): Promise<void> {
  const r = await fetch(`${http}/v1/topics/${topic}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ partitions }) });
  if (r.status !== 201) throw new Error(`creating ${topic}: HTTP ${r.status} ${await r.text()}`);
}

/**
 * Sluice nodes as one Target: publishers go to `pubNodes` in turn, subscribers to `subNodes`
 * in turn; CPU is counted over `pids`.
 */
function sluiceNodesTarget(name: string, pubNodes: ServerProcess[], subNodes: ServerProcess[], topic: string): Target {
  const value = 'x'.repeat(PAYLOAD_BYTES);
  let p = 0;
  let s = 0;
  return {
    name,
    transport: 'WebSocket',
    pid: pubNodes[0].proc.pid!,
    keysAreOffsets: true,
    async publisher(onAck: OnAck): Promise<Publisher> {
      const node = pubNodes[p++ % pubNodes.length];
      const ws = await rawConnect(node.port, '/v1/ws', (d, bin) => {
        if (bin || d[7] !== 0x61) return;
        const str = d.toString('latin1');
        onAck(1, parseInt(str.slice(str.indexOf('"id":') + 5), 10), parseInt(str.slice(str.indexOf('"offset":') + 9), 10));
      });
      return { publish: (seq) => ws.sendText(`{"op":"pub","id":${seq},"topic":"${topic}","partition":0,"value":"${value}"}`), close: () => ws.destroy() };
    },
    async subscriber(onDeliver: OnDeliver) {
      const node = subNodes[s++ % subNodes.length];
      let subbed!: () => void;
      const ready = new Promise<void>((r) => (subbed = r));
      const ws = await rawConnect(node.port, '/v1/ws', (d, bin) => {
        if (!bin) {
          if (d.includes('"subbed"')) subbed();
          return;
        }
        const now = performance.now();
        scanData(d, (base, count) => onDeliver(base, count, now));
      });
      ws.sendText(JSON.stringify({ op: 'sub', id: 1, topic, partition: 0, from: 'latest' }));
      await ready;
      return { close: () => ws.destroy() };
    },
    async stop() {},
  };
}

/** JetStream R3 through the official client: a publisher is a connection doing js.publish; a subscriber a core subscription on the stream's subject. */
function jetstreamTarget(nats: NatsCluster, subject: string): Target {
  const conns: NatsConnection[] = [];
  const servers = nats.urls.split(',');
  let n = 0;
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x78);
  return {
    name: 'jetstream-r3',
    transport: 'NATS (TCP)',
    // The scenarios' own per-process window reads one process; the table's CPU is summed over all three.
    pid: nats.servers.find((x) => x.pid !== null)!.pid!,
    keysAreOffsets: false,
    async publisher(onAck: OnAck): Promise<Publisher> {
      const nc = await natsConnect({ servers: servers[n++ % servers.length] });
      conns.push(nc);
      const js = jetstream(nc);
      return {
        publish(seq) {
          const data = Buffer.from(payload);
          data.writeUInt32BE(seq >>> 0, 0);
          js.publish(subject, data).then(
            () => onAck(1, seq, -1),
            () => {},
          );
        },
        close: () => void nc.close(),
      };
    },
    async subscriber(onDeliver: OnDeliver) {
      const nc = await natsConnect({ servers: servers[n++ % servers.length] });
      conns.push(nc);
      nc.subscribe(subject, { callback: (_e, m) => onDeliver(Buffer.from(m.data.buffer, m.data.byteOffset, 4).readUInt32BE(0), 1, performance.now()) });
      await nc.flush();
      return { close: () => void nc.close() };
    },
    async stop() {
      await Promise.all(conns.map((c) => c.close().catch(() => {})));
    },
  };
}

/** PRODUCE of 1000 x 100 B batches over one connection per (node, partition), 16 in flight each. */
async function produceSluice(conns: { node: ServerProcess; partition: number }[], topic: string): Promise<number> {
  const batch = encodeRecordBatch(Array.from({ length: 1000 }, (_, i) => ({ value: Buffer.alloc(100, i & 0xff) })));
  let acks = 0;
  let running = true;
  const sockets = await Promise.all(
    conns.map(async ({ node, partition }) => {
      const frame = produceFrame(1, topic, partition, batch);
      const ws = await rawConnect(node.port, '/v1/ws', (d) => {
        if (d[7] === 0x61) acks++;
        if (running) ws.sendBinary(frame);
      });
      for (let i = 0; i < 16; i++) ws.sendBinary(frame);
      return ws;
    }),
  );
  const rate = await ackedRate(() => acks);
  running = false;
  await sleep(300);
  for (const ws of sockets) ws.destroy();
  return rate;
}

/**
 * One node's delivery capacity, the same work on a single node and on a cluster node: PRODUCE
 * of batches of 100 x 100 B through `via`, at most `ahead` batches ahead of the subscribers'
 * average progress, so that every node delivers batches of exactly the same size whatever its
 * publish-to-deliver latency (the JSON scenario's batches grow with that latency).
 */
async function fanoutBatches(via: ServerProcess, t: Target, topic: string, n: number, ahead = 64): Promise<Row> {
  const batch = encodeRecordBatch(Array.from({ length: 100 }, (_, i) => ({ value: Buffer.alloc(100, i & 0xff) })));
  const frame = produceFrame(1, topic, 0, batch);
  let delivered = 0;
  let sent = 0;
  let running = false;
  const pub = await rawConnect(via.port, '/v1/ws', () => {});
  const topUp = (): void => {
    while (running && sent - delivered / n / 100 < ahead) {
      pub.sendBinary(frame);
      sent++;
    }
  };
  const subs: { close(): void }[] = [];
  for (let i = 0; i < n; i += 100) {
    subs.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => t.subscriber((_k, count) => ((delivered += count), topUp()))))));
  }
  running = true;
  topUp();
  const kick = setInterval(topUp, 5);
  await sleep(1000);
  const d0 = delivered;
  const t0 = performance.now();
  await sleep(settings.seconds * 1000);
  const rate = (delivered - d0) / ((performance.now() - t0) / 1000);
  running = false;
  clearInterval(kick);
  await sleep(500);
  pub.destroy();
  for (const x of subs) x.close();
  return { scenario: `fanout-${n}`, target: t.name, transport: t.transport, rate, unit: 'msg/s delivered', note: `PRODUCE batches of 100 x 100 B -> ${n} subs, <= ${ahead} batches ahead (same batches on every target)` };
}

/** The same 100 kB batch as one JetStream message, 16 in flight per connection. */
async function produceJetStream(js: JetStreamClient[], subject: string): Promise<number> {
  const batch = encodeRecordBatch(Array.from({ length: 1000 }, (_, i) => ({ value: Buffer.alloc(100, i & 0xff) })));
  let acks = 0;
  let running = true;
  const loop = (c: JetStreamClient): void => {
    c.publish(subject, batch).then(
      () => {
        acks++;
        if (running) loop(c);
      },
      () => running && loop(c),
    );
  };
  for (const c of js) for (let i = 0; i < 16; i++) loop(c);
  const rate = await ackedRate(() => acks);
  running = false;
  await sleep(500);
  return rate;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const add = (r: Row, cpuPct: number): void => {
    rows.push({ ...r, cpuPct });
    console.error(`  ${r.scenario} ${r.target}: ${num(r.rate)} ${r.unit}${r.p99 !== undefined ? ` p50 ${r.p50?.toFixed(1)} p99 ${r.p99?.toFixed(1)} ms` : ''} (${cpuPct.toFixed(0)}% CPU)`);
  };

  // ---- single node, flush=always
  console.error('single node (--flush always)');
  {
    const single = await startSluice({ args: ['--flush', 'always', '--log-level', 'warn'] });
    const pids = () => [single.proc.pid!];
    try {
      const t = sluiceNodesTarget('single (flush=always)', [single], [single], 'bench');
      await createTopic(single.http, 'bench', 1);
      await createTopic(single.http, 'bench-bin', 1);
      if (want('ingest')) {
        const m = await measured(pids, () => ingest(t, settings));
        add({ ...m.value, note: `${settings.ingestConns} conns x 200 in flight, 100 B, 1 partition` }, m.cpuPct);
      }
      if (want('produce')) {
        const m = await measured(pids, () => produceSluice([{ node: single, partition: 0 }], 'bench-bin'));
        add({ scenario: 'produce', target: t.name, transport: 'WebSocket', rate: m.value, unit: 'rec/s acked', note: '1 conn, 1000 x 100 B batches, 16 in flight' }, m.cpuPct);
      }
      if (want('fanout')) {
        for (const n of settings.fanoutSubs) {
          await createTopic(single.http, `fan${n}`, 1);
          const m = await measured(pids, () => fanout(sluiceNodesTarget(t.name, [single], [single], `fan${n}`), n, settings));
          add(m.value, m.cpuPct);
          await createTopic(single.http, `fanb${n}`, 1);
          const b = await measured(pids, () => fanoutBatches(single, sluiceNodesTarget(t.name, [single], [single], `fanb${n}`), `fanb${n}`, n));
          add(b.value, b.cpuPct);
        }
      }
      if (want('latency')) {
        await createTopic(single.http, 'lat', 1);
        const m = await measured(pids, () => latency(sluiceNodesTarget(t.name, [single], [single], 'lat'), settings));
        for (const r of m.value) add(r, m.cpuPct);
      }
    } finally {
      await single.stop();
      fs.rmSync(single.dataDir, { recursive: true, force: true });
    }
  }

  // ---- the cluster: 3 nats-servers (R3) + 2 sluice nodes
  console.error('cluster (3 nats-servers at R3 + 2 sluice nodes)');
  const nats = await startNatsCluster({ name: 'bench' });
  try {
    const natsProcPids = (): number[] => nats.servers.map((s) => s.pid).filter((p): p is number => p !== null);
    const nodes: ServerProcess[] = [];
    for (let i = 0; i < 2; i++) nodes.push(await startSluice({ args: ['--cluster', nats.urls, '--log-level', 'warn'] }));
    const pids = () => [...natsProcPids(), ...nodes.map((n) => n.proc.pid!)];
    try {
      const [a, b] = nodes;
      await createTopic(a.http, 'bench', 1);
      await createTopic(a.http, 'bench-bin', 2);
      await sleep(500);
      const t = sluiceNodesTarget('cluster', [a, b], [a, b], 'bench');
      if (want('ingest')) {
        const m = await measured(pids, () => ingest(t, settings));
        add({ ...m.value, note: `${settings.ingestConns} conns over 2 nodes x 200 in flight, 100 B, 1 partition` }, m.cpuPct);
      }
      if (want('produce')) {
        const one = await measured(pids, () => produceSluice([{ node: a, partition: 0 }], 'bench-bin'));
        add({ scenario: 'produce', target: 'cluster', transport: 'WebSocket', rate: one.value, unit: 'rec/s acked', note: '1 conn to 1 node, 1000 x 100 B batches, 16 in flight' }, one.cpuPct);
        const two = await measured(pids, () => produceSluice([{ node: a, partition: 0 }, { node: b, partition: 1 }], 'bench-bin'));
        add({ scenario: 'produce', target: 'cluster', transport: 'WebSocket', rate: two.value, unit: 'rec/s acked', note: '2 conns, one per node and partition, 16 in flight each' }, two.cpuPct);
      }
      if (want('fanout')) {
        for (const n of settings.fanoutSubs) {
          await createTopic(a.http, `fan${n}`, 1);
          await sleep(300);
          const m = await measured(pids, () => fanout(sluiceNodesTarget('cluster (one node)', [b], [a], `fan${n}`), n, settings));
          add({ ...m.value, note: `${m.value.note}; all subscribers on one node, the publisher on the other` }, m.cpuPct);
          await createTopic(a.http, `fanb${n}`, 1);
          await sleep(300);
          const fb = await measured(pids, () => fanoutBatches(b, sluiceNodesTarget('cluster (one node)', [b], [a], `fanb${n}`), `fanb${n}`, n));
          add({ ...fb.value, note: `${fb.value.note}; all subscribers on one node, the publisher on the other` }, fb.cpuPct);
        }
      }
      if (want('latency')) {
        await createTopic(a.http, 'lat', 1);
        await sleep(300);
        const m = await measured(pids, () => latency(sluiceNodesTarget('cluster', [a], [a, b], 'lat'), settings));
        for (const r of m.value) add({ ...r, note: `${r.note}; publisher on one node, subscribers on both` }, m.cpuPct);
      }
    } finally {
      for (const n of nodes) {
        await n.stop();
        fs.rmSync(n.dataDir, { recursive: true, force: true });
      }
    }

    // ---- JetStream R3 directly, same nats-servers
    console.error('JetStream R3 directly (official client)');
    const admin = await natsConnect({ servers: nats.urls.split(',') });
    try {
      const jsm = await jetstreamManager(admin);
      for (const [name, subj] of [['DIRECT', 'direct.>'], ['DIRECTBIN', 'directbin.>']]) {
        await jsm.streams.add({ name, subjects: [subj], num_replicas: 3, storage: StorageType.File, retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old });
      }
      const pids = natsProcPids;
      const t = jetstreamTarget(nats, 'direct.bench');
      if (want('ingest')) {
        const m = await measured(pids, () => ingest(t, settings));
        add({ ...m.value, target: 'jetstream-r3', note: `${settings.ingestConns} conns x 200 in flight, js.publish 100 B, PubAck each` }, m.cpuPct);
      }
      if (want('produce')) {
        const conns = await Promise.all([0, 1].map(() => natsConnect({ servers: nats.urls.split(',') })));
        const m = await measured(pids, () => produceJetStream(conns.map((c) => jetstream(c)), 'directbin.bench'));
        add({ scenario: 'produce', target: 'jetstream-r3', transport: 'NATS (TCP)', rate: m.value, unit: 'rec/s acked', note: '2 conns, 100 kB messages (1000 x 100 B as one), 16 in flight each' }, m.cpuPct);
        for (const c of conns) await c.close();
      }
      if (want('fanout')) {
        for (const n of settings.fanoutSubs) {
          const m = await measured(pids, () => fanout(jetstreamTarget(nats, `direct.fan${n}`), n, settings));
          add({ ...m.value, note: `${m.value.note}; core NATS subscriptions on the stream's subject` }, m.cpuPct);
        }
      }
      if (want('latency')) {
        const m = await measured(pids, () => latency(jetstreamTarget(nats, 'direct.lat'), settings));
        for (const r of m.value) add({ ...r, note: `${r.note}; delivered by core NATS subscriptions` }, m.cpuPct);
      }
      await t.stop();
    } finally {
      await admin.close();
    }
  } finally {
    await nats.stop();
  }

  const order = ['ingest', 'produce', 'fanout-1000', 'fanout-200', 'latency-10000'];
  rows.sort((x, y) => order.indexOf(x.scenario) - order.indexOf(y.scenario));
  console.log(`\n## Cluster benchmark (${new Date().toISOString().slice(0, 10)})\n`);
  console.log(`Machine: ${machine()}; load before the run: ${loadAverage()}; ${settings.seconds} s measured per scenario\n`);
  console.log(
    formatTable(
      ['scenario', 'target', 'rate', 'unit', 'p50 ms', 'p99 ms', 'CPU % (all processes)', 'note'],
      rows.map((r) => [r.scenario, r.target, num(r.rate), r.unit, r.p50 === undefined ? '' : r.p50.toFixed(1), r.p99 === undefined ? '' : r.p99.toFixed(1), num(r.cpuPct), r.note]),
    ),
  );
  const rate = (sc: string, target: string) => rows.filter((r) => r.scenario === sc && r.target.startsWith(target)).map((r) => r.rate ?? 0);
  const best = (xs: number[]) => (xs.length ? Math.max(...xs) : Number.NaN);
  const lat = rows.find((r) => r.scenario === 'latency-10000' && r.target === 'cluster');
  console.log('\nTargets:');
  console.log(`- cluster PRODUCE >= 1,000,000 rec/s acked: ${num(best(rate('produce', 'cluster')))}`);
  console.log(`- cluster JSON ingest >= 0.5 x single node: ${(best(rate('ingest', 'cluster')) / best(rate('ingest', 'single'))).toFixed(2)} x`);
  console.log(`- cluster p99 <= 50 ms at 10k msg/s: ${lat?.p99?.toFixed(1) ?? '-'} ms`);
  const fanKey = `fanout-${settings.fanoutSubs[0]}`;
  const fan = (target: string, how: string) => rows.find((r) => r.scenario === fanKey && r.target.startsWith(target) && r.note.includes(how))?.rate ?? Number.NaN;
  console.log(`- fan-out per node as a single node: ${(fan('cluster', 'PRODUCE') / fan('single', 'PRODUCE')).toFixed(2)} x with the same batches; ${(fan('cluster', 'ahead,') / fan('single', 'ahead,')).toFixed(2)} x with JSON publishes (batch sizes differ)`);
  console.log(`\nCores: ${os.cpus().length}, shared by every process above and the load generator.`);
}

await main();
process.exit(0);

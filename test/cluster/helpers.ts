/**
 * The cluster tests' world: a real three-server JetStream cluster (nats-cluster.ts) and
 * sluice nodes as real `sluice serve --cluster` processes, each with its own data directory
 * that survives a kill; publishers that mix JSON `pub` and binary PRODUCE and remember what
 * was acked; and the readers and checks every test ends with.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type ProducerRecord, decodeBatches, encodeRecordBatch } from '../../engine/codec/index.ts';
import { produceFrame } from '../../engine/codec/frames.ts';
import { Client, type ServerProcess, http, startServer, tempDir } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';
import { streamName } from '../../src/cluster/names.ts';
import { type NatsCluster, jsz, startNatsCluster } from './nats-cluster.ts';

export { type NatsCluster, startNatsCluster };

export interface SluiceNode {
  readonly name: string;
  readonly dataDir: string;
  /** The running process; null while the node is down. */
  proc: ServerProcess | null;
  readonly running: boolean;
  /** `ws://127.0.0.1:P/v1/ws` of the running process. */
  readonly url: string;
  readonly http: string;
  start(): Promise<void>;
  /** SIGKILL. */
  kill(): Promise<void>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface SluiceCluster {
  nats: NatsCluster;
  nodes: SluiceNode[];
  stop(): Promise<void>;
}

export function sluiceNode(name: string, natsUrls: string, args: string[] = []): SluiceNode {
  const dataDir = tempDir(`sluice-${name}-`);
  const node: SluiceNode = {
    name,
    dataDir,
    proc: null,
    get running() {
      return node.proc !== null && node.proc.proc.exitCode === null && node.proc.proc.signalCode === null;
    },
    get url() {
      assert.ok(node.proc, `${name} is down`);
      return node.proc.url;
    },
    get http() {
      assert.ok(node.proc, `${name} is down`);
      return node.proc.http;
    },
    async start() {
      node.proc = await startServer({ dataDir, args: ['--cluster', natsUrls, ...args] });
    },
    async kill() {
      await node.proc?.kill();
      node.proc = null;
    },
    async stop() {
      const code = (await node.proc?.stop()) ?? null;
      node.proc = null;
      return code;
    },
  };
  return node;
}

/** Three nats-servers and `nodes` sluice nodes over them; `stop()` stops everything, whatever happened. */
export async function startSluiceCluster(opts: { nodes?: number; args?: string[] } = {}): Promise<SluiceCluster> {
  const nats = await startNatsCluster();
  const nodes: SluiceNode[] = [];
  const cluster: SluiceCluster = {
    nats,
    nodes,
    async stop() {
      await Promise.all(nodes.map((n) => n.kill().catch(() => {})));
      await nats.stop();
    },
  };
  try {
    for (let i = 0; i < (opts.nodes ?? 2); i++) {
      const n = sluiceNode(`node${i + 1}`, nats.urls, opts.args);
      nodes.push(n);
      await n.start();
    }
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

export { until };

export async function createTopic(node: SluiceNode, topic: string, partitions: number, extra: Record<string, unknown> = {}): Promise<any> {
  const r = await http('PUT', `${node.http}/v1/topics/${topic}`, { partitions, ...extra });
  assert.equal(r.status, 201, r.text);
  return r.body;
}

export interface PartitionView {
  partition: number;
  epoch: string;
  start: number;
  hw: number;
}

/** The topic's partitions as one node describes them; null when it does not have the topic. */
export async function describe(node: SluiceNode, topic: string): Promise<PartitionView[] | null> {
  const r = await http('GET', `${node.http}/v1/topics/${topic}`);
  if (r.status === 404) return null;
  assert.equal(r.status, 200, r.text);
  return r.body.partitions;
}

export interface Row {
  partition: number;
  offset: number;
  value: string | null;
}

/** Every record of a partition on one node, from its start to its hw, through the HTTP API. */
export async function readPartition(node: SluiceNode, topic: string, partition: number): Promise<Row[]> {
  const out: Row[] = [];
  let from = 0;
  for (let page = 0; page < 10_000; page++) {
    const r = await http('GET', `${node.http}/v1/topics/${topic}/records?partition=${partition}&from=${from}&limit=10000`);
    assert.equal(r.status, 200, r.text);
    for (const rec of r.body.records) out.push({ partition, offset: rec.offset, value: rec.value ?? null });
    if (r.body.next >= r.body.hw) return out;
    from = r.body.next;
  }
  throw new Error('readPartition did not finish');
}

/** Waits until every running node shows the same hw for every partition, at least `atLeast` per partition. */
export async function converged(nodes: SluiceNode[], topic: string, atLeast: Map<number, number> = new Map(), ms = 60_000): Promise<PartitionView[]> {
  let views: (PartitionView[] | null)[] = [];
  await until(
    async () => {
      views = await Promise.all(nodes.filter((n) => n.running).map((n) => describe(n, topic)));
      if (views.some((v) => v === null)) return false;
      const first = views[0]!;
      return views.every((v) => v!.every((p, i) => p.hw === first[i].hw && p.epoch === first[i].epoch)) && first.every((p) => p.hw >= (atLeast.get(p.partition) ?? 0));
    },
    `${topic} to converge on every node`,
    ms,
  );
  return views[0]!;
}

/** The segment files of a topic-partition on a node: name → bytes. */
export function segmentFiles(node: SluiceNode, topic: string, partition: number): Map<string, Buffer> {
  const dir = path.join(node.dataDir, `${topic}-${partition}`);
  const out = new Map<string, Buffer>();
  for (const f of fs.readdirSync(dir).sort()) if (f.endsWith('.log')) out.set(f, fs.readFileSync(path.join(dir, f)));
  return out;
}

export function assertSameSegments(a: SluiceNode, b: SluiceNode, topic: string, partition: number): void {
  const fa = segmentFiles(a, topic, partition);
  const fb = segmentFiles(b, topic, partition);
  assert.deepEqual([...fa.keys()], [...fb.keys()], `segment files of ${topic}-${partition} on ${a.name} and ${b.name}`);
  for (const [f, bytes] of fa) assert.ok(bytes.equals(fb.get(f)!), `${topic}-${partition}/${f} differs between ${a.name} and ${b.name} (${bytes.length} vs ${fb.get(f)!.length} bytes)`);
}

/** An acked record: where the cluster said it went. */
export interface Ack {
  partition: number;
  offset: number;
  value: string;
}

/**
 * Publishes through one node over one WebSocket, mixing JSON `pub` and PRODUCE frames of
 * several records, keeping up to `window` publishes in flight. Values are unique
 * (`<tag>-<n>`); every ack is remembered with its offsets, every error counted by code. A
 * connection that dies leaves its unanswered publishes unacknowledged.
 */
export class Publisher {
  readonly acks: Ack[] = [];
  readonly errors = new Map<string, number>();
  /** Values sent whose answer never came (the connection died): stored or not. */
  readonly unanswered = new Set<string>();
  private n = 0;
  private client: Client | null = null;
  private outstanding = new Map<number, { values: string[] }>();

  constructor(
    readonly tag: string,
    readonly topic: string,
    private readonly opts: { partition?: number; produceEvery?: number; produceRecords?: number; window?: number; maxPerSecond?: number } = {},
  ) {}

  private record(value: string): ProducerRecord {
    return { value: Buffer.from(value), key: null, headers: [] };
  }

  async connect(url: string): Promise<void> {
    this.drop();
    const c = await Client.connect(url);
    this.client = c;
    c.decode = false;
    c.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      const m = JSON.parse(data.toString());
      const pending = this.outstanding.get(m.id);
      if (!pending) return;
      this.outstanding.delete(m.id);
      if (m.op === 'ack') pending.values.forEach((v, i) => this.acks.push({ partition: m.partition, offset: m.offset + i, value: v }));
      else if (m.op === 'error') this.errors.set(m.code, (this.errors.get(m.code) ?? 0) + 1);
      for (const v of pending.values) this.unanswered.delete(v);
    });
    c.ws.on('close', () => {
      if (this.client === c) this.drop();
    });
  }

  /** Forgets the connection: what it left unanswered stays unknown. */
  private drop(): void {
    this.client?.close();
    this.client = null;
    this.outstanding.clear();
  }

  get connected(): boolean {
    return this.client !== null && !this.client.closed;
  }

  get inFlight(): number {
    return this.outstanding.size;
  }

  /** Sends one publish (a JSON pub, or every `produceEvery`-th a PRODUCE of several records). */
  sendOne(): void {
    const c = this.client;
    if (!c || c.closed) return;
    const id = ++this.n;
    const every = this.opts.produceEvery ?? 3;
    if (every > 0 && id % every === 0) {
      const count = this.opts.produceRecords ?? 10;
      const values = Array.from({ length: count }, (_, i) => `${this.tag}-${id}.${i}`);
      const batch = encodeRecordBatch(values.map((v) => this.record(v)), { codec: id % 2 === 0 ? 'lz4' : 'none' });
      this.outstanding.set(id, { values });
      for (const v of values) this.unanswered.add(v);
      c.ws.send(produceFrame(id, this.topic, this.opts.partition ?? 0xffffffff, batch));
    } else {
      const value = `${this.tag}-${id}`;
      this.outstanding.set(id, { values: [value] });
      this.unanswered.add(value);
      c.send({ op: 'pub', id, topic: this.topic, ...(this.opts.partition !== undefined ? { partition: this.opts.partition } : {}), value });
    }
  }

  /** Publishes `count` times, `window` in flight; stops early when the connection dies. */
  async run(count: number, ms = 60_000): Promise<void> {
    let sent = 0;
    await this.runUntil(() => sent++ >= count, ms);
  }

  /**
   * Publishes, `window` in flight, until `done()` says so (asked before each publish) or the
   * connection dies, then waits for the answers still due.
   */
  async runUntil(done: () => boolean, ms = 120_000): Promise<void> {
    const window = this.opts.window ?? 32;
    const deadline = Date.now() + ms;
    const t0 = Date.now();
    let sent = 0;
    // At most maxPerSecond publishes a second: the volume of a run (and of its checks) then
    // does not grow with the machine's speed.
    const allowed = () => (this.opts.maxPerSecond ? ((Date.now() - t0) / 1000) * this.opts.maxPerSecond - sent : Infinity);
    let finished = false;
    while (!finished && this.connected && Date.now() < deadline) {
      while (this.inFlight < window && this.connected && allowed() >= 1) {
        if (done()) {
          finished = true;
          break;
        }
        this.sendOne();
        sent++;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await until(() => this.inFlight === 0 || !this.connected, `${this.tag}'s answers`, ms);
  }
}

/**
 * The checks that close every publishing test: on every node, each partition's offsets are
 * dense from its start; every acked record is there at its acked offset with its value; no
 * two acks name one offset; no value is stored twice.
 */
export async function assertAcksHold(nodes: SluiceNode[], topic: string, acks: Ack[]): Promise<Map<number, Row[]>> {
  const seen = new Map<string, string>();
  for (const a of acks) {
    const k = `${a.partition}/${a.offset}`;
    assert.ok(!seen.has(k), `offset ${k} acked twice: ${seen.get(k)} and ${a.value}`);
    seen.set(k, a.value);
  }
  const atLeast = new Map<number, number>();
  for (const a of acks) atLeast.set(a.partition, Math.max(atLeast.get(a.partition) ?? 0, a.offset + 1));
  const views = await converged(nodes, topic, atLeast);
  let first: Map<number, Row[]> | null = null;
  for (const node of nodes.filter((n) => n.running)) {
    const rows = new Map<number, Row[]>();
    for (const p of views) rows.set(p.partition, await readPartition(node, topic, p.partition));
    const values = new Set<string>();
    for (const [p, list] of rows) {
      list.forEach((r, i) => assert.equal(r.offset, views[p].start + i, `${node.name}: offsets of ${topic}-${p} are dense`));
      for (const r of list) {
        if (r.value === null) continue;
        assert.ok(!values.has(r.value), `${node.name}: value ${r.value} stored twice`);
        values.add(r.value);
      }
    }
    for (const a of acks) {
      const list = rows.get(a.partition)!;
      const r = list[a.offset - views[a.partition].start];
      assert.ok(r, `${node.name}: acked ${a.value} at ${a.partition}/${a.offset} is missing (hw ${views[a.partition].hw})`);
      assert.equal(r.value, a.value, `${node.name}: offset ${a.partition}/${a.offset} holds ${r.value}, acked for ${a.value}`);
    }
    if (first) assert.deepEqual(rows, first, `${node.name} reads the same records as the first node`);
    else first = rows;
  }
  return first!;
}

/** A subscriber from earliest that records (partition, offset, value) in delivery order. */
export async function subscribeAll(node: SluiceNode, topic: string): Promise<Client> {
  const c = await Client.connect(node.url);
  const r = await c.request({ op: 'sub', topic, from: 'earliest' });
  assert.equal(r.op, 'subbed', JSON.stringify(r));
  return c;
}

export function delivered(c: Client, partition = 0): { offset: number; value: string | null }[] {
  return c.records.filter((r) => r.partition === partition).map((r) => ({ offset: r.offset, value: r.value === null ? null : Buffer.from(r.value).toString() }));
}

/** The server_name of the JetStream leader of a stream, asked of any running nats-server. */
export async function streamLeader(nats: NatsCluster, stream: string): Promise<string | null> {
  for (const s of nats.servers.filter((x) => x.running)) {
    try {
      const j = await jsz(s);
      for (const acc of j.account_details ?? []) for (const sd of acc.stream_detail ?? []) if (sd.name === stream && sd.cluster?.leader) return sd.cluster.leader;
    } catch {
      // that server is going down: ask another
    }
  }
  return null;
}

/** The stream of a topic-partition, named by its epoch (src/cluster/names.ts, default cluster name). */
export async function streamOf(node: SluiceNode, topic: string, partition: number): Promise<string> {
  const parts = await describe(node, topic);
  assert.ok(parts, `${topic} exists on ${node.name}`);
  return streamName('sluice', parts[partition].epoch);
}

/**
 * The systems under test behind one small interface, so that every scenario drives sluice and
 * each peer the same way: a publisher that sends 100-byte messages and hears acks, and
 * subscribers that report what they receive. Each target is its own process on 127.0.0.1.
 *
 *   sluice          `sluice serve`; JSON `pub` over WebSocket, acked per record; DATA frames
 *   nats            nats-server, core NATS over its WebSocket listener; acks = PING/PONG per 50
 *   nats-jetstream  the same server, PUB with a reply subject to a file-stored stream (ack per message)
 *   redis           redis-server, PUBLISH/SUBSCRIBE over plain TCP (RESP): Redis has no WebSocket
 *   ws-broadcast    a `ws` server that loops over its subscribers (the naive Node baseline)
 *   uws-topic       uWebSockets.js `app.publish` to a topic, no storage (the fan-out ceiling)
 *
 * Deliveries are reported as (firstKey, count, now): for peers the key is the sequence number
 * the publisher wrote into the payload's first 4 bytes; for sluice it is the record offset (the
 * publisher learns each sequence number's offset from its ack), read from the batch headers
 * without decoding the records.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ChildProcess, spawn } from 'node:child_process';
import { type RawWs, rawConnect } from '../raw-ws.ts';
import { natsConnect } from './nats-ws.ts';
import { type Resp, respConnect } from './resp.ts';
import { findOrInstall, freePort, spawnNodePeer, startSluice, stopChild, track, waitForPort } from '../lib/spawn.ts';
import { scanData } from '../lib/sluice-frames.ts';
import { defaultThreads } from '../../src/common/config.ts';

export const PAYLOAD_BYTES = 100;

export interface Publisher {
  /** Publishes one 100-byte message carrying `seq`. */
  publish(seq: number): void;
  close(): void;
}

/** `n` more publishes confirmed; for sluice also the sequence number and offset of one record. */
export type OnAck = (n: number, seq: number, offset: number) => void;
export type OnDeliver = (firstKey: number, count: number, now: number) => void;

export interface Target {
  name: string;
  /** How clients reach it, for the table. */
  transport: string;
  pid: number;
  /** Delivery keys are record offsets (sluice) rather than sequence numbers. */
  keysAreOffsets: boolean;
  publisher(onAck: OnAck): Promise<Publisher>;
  /** A subscribed connection; resolves once the subscription is in place. */
  subscriber(onDeliver: OnDeliver): Promise<{ close(): void }>;
  stop(): Promise<void>;
}

export type TargetName = 'sluice' | 'nats' | 'nats-jetstream' | 'redis' | 'ws-broadcast' | 'uws-topic';
export const TARGETS: TargetName[] = ['sluice', 'nats', 'nats-jetstream', 'redis', 'ws-broadcast', 'uws-topic'];

const payload = Buffer.alloc(PAYLOAD_BYTES, 0x78);
const withSeq = (seq: number) => (payload.writeUInt32BE(seq >>> 0, 0), payload);

export class Unavailable extends Error {}

// ---- sluice ----

/** sluice's WebSocket front on one thread per core (its default), or on the threads given. */
export async function sluiceTarget(flush: 'always' | 'never', threads = defaultThreads(), topic = 'bench'): Promise<Target> {
  const srv = await startSluice({ args: ['--flush', flush, '--threads', String(threads)] });
  const create = await fetch(`${srv.http}/v1/topics/${topic}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ partitions: 1 }) });
  if (create.status !== 201) throw new Error(`creating ${topic}: HTTP ${create.status}`);
  const value = 'x'.repeat(PAYLOAD_BYTES);
  return {
    name: flush === 'always' ? 'sluice (flush=always)' : threads === defaultThreads() ? 'sluice' : `sluice (${threads} thread${threads === 1 ? '' : 's'})`,
    transport: 'WebSocket',
    pid: srv.proc.pid!,
    keysAreOffsets: true,
    async publisher(onAck) {
      const ws = await rawConnect(srv.port, '/v1/ws', (d, bin) => {
        if (bin) return;
        // {"op":"ack","id":N,"partition":0,"offset":M}: cheap field reads instead of JSON.parse.
        if (d[7] !== 0x61) return; // not an ack (an error): not counted
        const s = d.toString('latin1');
        const id = parseInt(s.slice(s.indexOf('"id":') + 5), 10);
        const offset = parseInt(s.slice(s.indexOf('"offset":') + 9), 10);
        onAck(1, id, offset);
      });
      return {
        publish: (seq) => ws.sendText(`{"op":"pub","id":${seq},"topic":"${topic}","value":"${value}"}`),
        close: () => ws.destroy(),
      };
    },
    async subscriber(onDeliver) {
      let subbed!: () => void;
      const ready = new Promise<void>((r) => (subbed = r));
      const ws = await rawConnect(srv.port, '/v1/ws', (d, bin) => {
        if (!bin) {
          if (d.includes('"subbed"')) subbed();
          return;
        }
        const now = performance.now();
        scanData(d, (base, count) => onDeliver(base, count, now));
      });
      ws.sendText(JSON.stringify({ op: 'sub', id: 1, topic, from: 'latest' }));
      await ready;
      return { close: () => ws.destroy() };
    },
    async stop() {
      await srv.stop();
      fs.rmSync(srv.dataDir, { recursive: true, force: true });
    },
  };
}

// ---- NATS (core and JetStream) over WebSocket ----

export async function natsTarget(jetstream: boolean): Promise<Target> {
  const bin = findOrInstall('nats-server', 'nats-server');
  if (typeof bin !== 'string') throw new Unavailable(bin.missing);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-nats-'));
  const port = await freePort();
  const wsPort = await freePort();
  const conf = path.join(dir, 'nats.conf');
  // JetStream's file store syncs on its own interval (2 min by default), not per message:
  // it is comparable with sluice under --flush never/interval, not with --flush always.
  fs.writeFileSync(conf, `listen: "127.0.0.1:${port}"\nmax_payload: 1048576\nwebsocket {\n  listen: "127.0.0.1:${wsPort}"\n  no_tls: true\n}\n${jetstream ? `jetstream {\n  store_dir: "${dir}/js"\n}\n` : ''}`);
  const proc = track(spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  try {
    await waitForPort(wsPort);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Unavailable(`nats-server did not start: ${(e as Error).message}; ${err.trim().split('\n').pop()}`);
  }
  const subject = jetstream ? 'js.bench' : 'bench';
  if (jetstream) {
    let answer!: (p: Buffer) => void;
    const got = new Promise<Buffer>((r) => (answer = r));
    const admin = await natsConnect(wsPort, { onMsg: (_s, _sid, p) => answer(Buffer.from(p)) });
    admin.sub('_INBOX.admin', 1);
    admin.pub('$JS.API.STREAM.CREATE.BENCH', Buffer.from(JSON.stringify({ name: 'BENCH', subjects: ['js.>'], storage: 'file', retention: 'limits', discard: 'old', num_replicas: 1 })), '_INBOX.admin');
    const reply = JSON.parse((await got).toString());
    admin.close();
    if (reply.error) throw new Unavailable(`JetStream stream create failed: ${JSON.stringify(reply.error)}`);
  }
  let n = 0;
  return {
    name: jetstream ? 'nats-jetstream' : 'nats',
    transport: 'WebSocket',
    pid: proc.pid!,
    keysAreOffsets: false,
    async publisher(onAck) {
      const me = ++n;
      let unpinged = 0;
      const PING_EVERY = 50;
      const c = await natsConnect(wsPort, {
        onPong: jetstream ? undefined : () => onAck(PING_EVERY, -1, -1),
        onMsg: jetstream ? () => onAck(1, -1, -1) : undefined,
      });
      if (jetstream) {
        c.sub(`_INBOX.p${me}`, 1);
        await c.flush();
      }
      return {
        publish(seq) {
          if (jetstream) {
            c.pub(subject, withSeq(seq), `_INBOX.p${me}`);
            return;
          }
          // Core NATS does not answer a PUB: a PING after every 50 is answered once they are processed.
          c.pub(subject, withSeq(seq));
          if (++unpinged === PING_EVERY) {
            unpinged = 0;
            c.ping();
          }
        },
        close: () => c.close(),
      };
    },
    async subscriber(onDeliver) {
      const c = await natsConnect(wsPort, { onMsg: (_s, _sid, p) => onDeliver(p.readUInt32BE(0), 1, performance.now()) });
      c.sub(subject, 1);
      await c.flush();
      return c;
    },
    async stop() {
      await stopChild(proc);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- Redis pub/sub (RESP over TCP) ----

export async function redisTarget(): Promise<Target> {
  const bin = findOrInstall('redis-server', 'redis-server');
  if (typeof bin !== 'string') throw new Unavailable(bin.missing);
  const port = await freePort();
  const proc = track(spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '15000', '--protected-mode', 'no', '--client-output-buffer-limit', 'pubsub 0 0 0'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  try {
    await waitForPort(port);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Unavailable(`redis-server did not start: ${(e as Error).message}`);
  }
  return {
    name: 'redis',
    transport: 'TCP (RESP)',
    pid: proc.pid!,
    keysAreOffsets: false,
    async publisher(onAck) {
      const c = await respConnect(port, () => onAck(1, -1, -1));
      return { publish: (seq) => c.command('PUBLISH', 'bench', withSeq(seq)), close: () => c.close() };
    },
    async subscriber(onDeliver) {
      let subbed!: () => void;
      const ready = new Promise<void>((r) => (subbed = r));
      const c = await respConnect(port, (r: Resp) => {
        const a = r as Resp[];
        if (a[0] instanceof Buffer && a[0].length === 7 /* message */) onDeliver((a[2] as Buffer).readUInt32BE(0), 1, performance.now());
        else subbed();
      });
      c.command('SUBSCRIBE', 'bench');
      await ready;
      return c;
    },
    stop: () => stopChild(proc),
  };
}

// ---- ws broadcast and uWS topic: the Node peers of loadtest/peers/*-server.ts ----

export async function nodePeerTarget(name: 'ws-broadcast' | 'uws-topic'): Promise<Target> {
  const { proc, port } = await spawnNodePeer(`loadtest/peers/${name}-server.ts`);
  return {
    name,
    transport: 'WebSocket',
    pid: proc.pid!,
    keysAreOffsets: false,
    async publisher(onAck) {
      const ws = await rawConnect(port, '/', (_d, bin) => {
        if (!bin) onAck(1, -1, -1);
      });
      return { publish: (seq) => ws.sendBinary(withSeq(seq)), close: () => ws.destroy() };
    },
    async subscriber(onDeliver) {
      let subbed!: () => void;
      const ready = new Promise<void>((r) => (subbed = r));
      const ws: RawWs = await rawConnect(port, '/', (d, bin) => {
        if (bin) onDeliver(d.readUInt32BE(0), 1, performance.now());
        else subbed();
      });
      ws.sendText('sub');
      await ready;
      return { close: () => ws.destroy() };
    },
    stop: () => stopChild(proc as ChildProcess),
  };
}

export async function startTarget(name: TargetName): Promise<Target> {
  switch (name) {
    case 'sluice':
      return sluiceTarget('never');
    case 'nats':
      return natsTarget(false);
    case 'nats-jetstream':
      return natsTarget(true);
    case 'redis':
      return redisTarget();
    case 'ws-broadcast':
    case 'uws-topic':
      return nodePeerTarget(name);
  }
}

/**
 * The WebSocket/HTTP front on several threads (--threads N), seen from the log thread: it
 * serves one uWS app itself (started by server.ts like any front) and starts N-1 worker
 * threads (gateway-thread.ts), each running the same front on its own uWS app, bound to the
 * same port (uWS 20.30 has no way to hand one listening socket to several threads; the
 * kernel spreads connections over the threads' sockets with SO_REUSEPORT).
 *
 * What the threads share, and how:
 * - the log: the log stays on this thread; each worker gets a MessagePort to the LogHost
 *   (engine/log-host.ts) and maps the segment files itself (engine/thread-log.ts);
 * - --max-connections: one counter in a SharedArrayBuffer (src/common/threads.ts);
 * - /metrics: each thread keeps its own registry; whichever thread is asked sums them all,
 *   asking the others through this thread (`peer-metrics`);
 * - auth and every other limit: built in each thread from the same configuration.
 *
 * Shutdown: the workers' fronts are closed first (their appends still need the log); then
 * server.ts closes this thread's fronts and the log, and waits for the workers to end.
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { LogHost } from '../engine/log-host.ts';
import type { Config } from './common/config.ts';
import type { Front, FrontContext } from './common/front.ts';
import type { MetricsJson } from './common/metrics.ts';
import { startWorker } from './common/worker-entry.ts';

/** What a gateway worker thread is started with (its workerData). */
export interface GatewayWorkerData {
  config: Config;
  /** The address and the port the first thread bound: the workers bind the same one. */
  host: string;
  port: number;
  index: number;
  count: number;
  /** The connection counter's SharedArrayBuffer (SharedCounter). */
  connections: SharedArrayBuffer;
  /** This thread's end of the log host's channel. */
  logPort: MessagePort;
}

/** Control messages between this thread and a worker (the log has its own channel). */
export type ToWorker = { type: 'close' } | { type: 'metrics'; id: number } | { type: 'peer-metrics-answer'; id: number; json: MetricsJson[] };
export type FromWorker =
  | { type: 'ready'; port: number }
  | { type: 'failed'; message: string }
  | { type: 'closed' }
  | { type: 'metrics'; id: number; json: MetricsJson }
  | { type: 'peer-metrics'; id: number };

/** How long a thread's metrics may take before /metrics answers without them. */
const metricsWaitMs = 2000;
/** How long a worker's front may take to close (its appends answered) before the log thread goes on. */
const closeWaitMs = 30_000;
/** How long a worker may take to end, once closed, before it is terminated. */
const endWaitMs = 30_000;

/** The workers as a front: `close` closes their fronts; `ended` resolves once the threads are gone. */
export interface GatewayWorkers extends Front {
  ended(): Promise<void>;
}

interface Running {
  index: number;
  worker: Worker;
  detach: () => void;
  exited: Promise<void>;
}

export async function startGatewayWorkers(ctx: FrontContext, host: LogHost, port: number): Promise<GatewayWorkers> {
  const { config, logger, metrics, threads } = ctx;
  const running: Running[] = [];
  let nextId = 1;
  const waiting = new Map<number, (json: MetricsJson) => void>();

  /** This thread's metrics and every worker's but `except`'s, each within metricsWaitMs. */
  const gather = async (except?: Worker): Promise<MetricsJson[]> => {
    const asks = running
      .filter((r) => r.worker !== except)
      .map(
        (r) =>
          new Promise<MetricsJson | null>((resolve) => {
            const id = nextId++;
            const timer = setTimeout(() => {
              waiting.delete(id);
              resolve(null);
            }, metricsWaitMs);
            waiting.set(id, (json) => {
              clearTimeout(timer);
              resolve(json);
            });
            r.worker.postMessage({ type: 'metrics', id } satisfies ToWorker);
          }),
      );
    return (await Promise.all(asks)).filter((j): j is MetricsJson => j !== null);
  };

  const start = (index: number): Promise<Running> => {
    const { port1, port2 } = new MessageChannel();
    const detach = host.attach(port1);
    const data: GatewayWorkerData = { config, host: ctx.host, port, index, count: threads.count, connections: threads.connections.buffer, logPort: port2 };
    const worker = startWorker(import.meta.url, './gateway-thread', { workerData: data, transferList: [port2] });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const r: Running = { index, worker, detach, exited };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'metrics') waiting.get(m.id)?.(m.json);
      else if (m.type === 'peer-metrics') {
        void Promise.all([metrics.json(), gather(worker)]).then(([own, others]) => {
          worker.postMessage({ type: 'peer-metrics-answer', id: m.id, json: [own, ...others] } satisfies ToWorker);
        });
      }
    });
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromWorker): void => {
        if (m.type === 'ready') {
          worker.off('message', onMessage);
          resolve(r);
        } else if (m.type === 'failed') reject(new Error(`gateway thread ${index}: ${m.message}`));
      };
      worker.on('message', onMessage);
      worker.once('error', (err) => {
        logger.error({ err, thread: index }, 'a gateway thread failed');
        reject(err);
      });
      void exited.then(() => {
        detach();
        port1.close();
        reject(new Error(`gateway thread ${index} exited before it was ready`));
      });
    });
  };

  /** Closes every worker's front: resolves once each has answered its appends and let its sockets go (or exited). */
  const closeAll = async (): Promise<void> => {
    await Promise.all(
      running.map(async (r) => {
        const closed = new Promise<void>((resolve) => {
          r.worker.on('message', (m: FromWorker) => m.type === 'closed' && resolve());
        });
        r.worker.postMessage({ type: 'close' } satisfies ToWorker);
        await Promise.race([closed, r.exited, sleep(closeWaitMs)]);
        r.detach();
      }),
    );
  };

  /**
   * Waits for every worker to end. A worker ends on its own once uWS has finished closing
   * its sockets (a peer that never answers the close holds one for up to ~15 s here); it is
   * terminated only past endWaitMs: terminating it while uWS still had a socket closing made
   * uWS dispatch an event into memory already freed (SIGSEGV, seen here).
   */
  const endAll = async (): Promise<void> => {
    await Promise.all(
      running.map(async (r) => {
        if (await Promise.race([r.exited.then(() => false), sleep(endWaitMs).then(() => true)])) {
          logger.warn({ thread: r.index }, 'a gateway thread did not end in time; stopping it');
          await r.worker.terminate();
        }
      }),
    );
  };

  const starts = Array.from({ length: threads.count - 1 }, (_, i) => start(i + 1));
  const results = await Promise.allSettled(starts);
  for (const res of results) if (res.status === 'fulfilled') running.push(res.value);
  const failed = results.find((res): res is PromiseRejectedResult => res.status === 'rejected');
  if (failed) {
    await closeAll();
    await endAll();
    throw failed.reason;
  }
  metrics.setPeers(() => gather());
  for (const r of running) {
    void r.exited.then(() => {
      // Its log channel was let go when it exited (start).
      if (!closing) logger.error({ thread: r.index }, 'a gateway thread exited; its connections are gone, the others serve on');
    });
  }
  let closing: Promise<void> | null = null;
  let ending: Promise<void> | null = null;
  return {
    name: 'gateway-threads',
    port,
    close() {
      closing ??= closeAll();
      return closing;
    },
    ended() {
      ending ??= (closing ?? closeAll()).then(endAll);
      return ending;
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

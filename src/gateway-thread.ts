/**
 * The composition root of one worker thread of the WebSocket/HTTP front (--threads; the
 * log thread's side is gateway-threads.ts): it builds the context a front is started with
 * — the log as this thread sees it (engine/thread-log.ts: appends to the log thread,
 * reads from its own mappings), its own auth verifier, metrics registry and limits, the
 * shared connection counter — and starts the same front the log thread runs, on the same
 * port. It answers the log thread's control messages: metrics, close.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { installNativeCodecs } from '../engine/native-codecs.ts';
import { ThreadLog } from '../engine/thread-log.ts';
import { Activity } from './common/activity.ts';
import { createAuth } from './common/auth.ts';
import { buildInfo } from './common/build-info.ts';
import type { Front, FrontContext } from './common/front.ts';
import { resolveLimits } from './common/limits.ts';
import { createLogger } from './common/logger.ts';
import { Metrics, type MetricsJson } from './common/metrics.ts';
import { SharedCounter } from './common/threads.ts';
import type { FromWorker, GatewayWorkerData, ToWorker } from './gateway-threads.ts';
import { startGateway } from './gateway/gateway.ts';

const data = workerData as GatewayWorkerData;
const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);

async function main(): Promise<void> {
  // Module state is per thread: the native codecs are installed in each.
  installNativeCodecs();
  const logger = createLogger(data.config.logLevel).child({ thread: data.index });
  const log = await ThreadLog.connect(data.logPort, logger);
  const metrics = new Metrics(data.config.metricsTopicsMax, buildInfo(), { process: false });
  // Its own lines (with `thread`) and summary; topics created and deleted are the log thread's to tell.
  const activity = new Activity(logger, metrics, { topics: () => log.listTopics().length });
  activity.startSummaries(data.config.logSummaryMs);
  let nextId = 1;
  const peers = new Map<number, (json: MetricsJson[]) => void>();
  metrics.setPeers(
    () =>
      new Promise((resolve) => {
        const id = nextId++;
        peers.set(id, resolve);
        post({ type: 'peer-metrics', id });
      }),
  );
  const ctx: FrontContext = {
    config: { ...data.config, port: data.port },
    host: data.host,
    log,
    auth: createAuth(data.config),
    metrics,
    logger,
    activity,
    limits: resolveLimits(data.config),
    threads: { index: data.index, count: data.count, connections: new SharedCounter(data.connections) },
  };
  let front: Front;
  try {
    front = await startGateway(ctx);
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message });
    await log.close();
    return;
  }
  let closing = false;
  port.on('message', (m: ToWorker) => {
    if (m.type === 'metrics') void metrics.json().then((json) => post({ type: 'metrics', id: m.id, json }));
    else if (m.type === 'peer-metrics-answer') {
      peers.get(m.id)?.(m.json);
      peers.delete(m.id);
    } else if (m.type === 'close' && !closing) {
      closing = true;
      void front
        .close()
        .catch((err: unknown) => logger.error({ err }, 'the gateway thread did not close cleanly'))
        .then(() => {
          activity.stop();
          return log.close();
        })
        .then(() => {
          logger.flush();
          post({ type: 'closed' });
          // Nothing left to keep this thread's event loop alive: it ends on its own once uWS
          // has finished closing its sockets. (Terminating it while uWS still had a socket
          // closing made uWS dispatch an event into freed memory: SIGSEGV.)
          port.removeAllListeners();
          port.unref();
          data.logPort.close();
        });
    }
  });
  post({ type: 'ready', port: front.port });
}

void main().catch((err: unknown) => post({ type: 'failed', message: (err as Error).stack ?? String(err) }));

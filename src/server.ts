/**
 * The composition root: reads config, opens the log, builds the context every front shares
 * (log, auth, metrics, logger, limits, threads), starts the fronts (gateway, replay, kafka)
 * and, with --threads N > 1, the gateway's N-1 worker threads (gateway-threads.ts; each
 * worker's own root is gateway-thread.ts, which sees the log this file opened through the
 * LogHost), and shuts them down in the reverse order before closing the log. Nothing else
 * wires modules together, and only this file knows which implementation of the log is in use.
 */
import { type Log, LogManager, installNativeCodecs } from '../engine/index.ts';
import { LogHost } from '../engine/log-host.ts';
import { ClusterLog } from './cluster/cluster-log.ts';
import { assertNotClusterMirror } from './cluster/data-dir.ts';
import { Activity } from './common/activity.ts';
import { type Auth, createAuth } from './common/auth.ts';
import { buildInfo } from './common/build-info.ts';
import type { Config } from './common/config.ts';
import type { Front, FrontContext, StartFront } from './common/front.ts';
import { resolveLimits } from './common/limits.ts';
import type { Logger } from './common/logger.ts';
import { Metrics } from './common/metrics.ts';
import { SharedCounter, type ThreadShare, singleThread } from './common/threads.ts';
import { type GatewayWorkers, startGatewayWorkers } from './gateway-threads.ts';
import { startGateway } from './gateway/gateway.ts';
import { startKafka } from './kafka/kafka-server.ts';
import { startReplayServer } from './replay/replay-server.ts';

export interface RunningServer {
  port: number;
  replayPort: number;
  /** -1 when the Kafka listener is off (--kafka-port -1). */
  kafkaPort: number;
  log: Log;
  close(): Promise<void>;
}

export function authEnabled(config: Config): boolean {
  return Boolean(config.authSecret || config.authPublicKey);
}

/** Without auth the server keeps to loopback unless told otherwise (wire contract §6). */
export function resolveHost(config: Config): string {
  return config.host ?? (authEnabled(config) ? '0.0.0.0' : '127.0.0.1');
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** What startup says about auth: the key in use and its weaknesses, or that auth is off (a warning beyond loopback). */
export function authStartupLines(auth: Auth | null, host: string): { level: 'info' | 'warn'; msg: string }[] {
  if (auth) return [{ level: 'info', msg: `auth is on: ${auth.description}` }, ...auth.warnings.map((w) => ({ level: 'warn' as const, msg: w }))];
  if (!isLoopback(host)) return [{ level: 'warn', msg: `auth is off and sluice listens on ${host}, beyond loopback: anyone who can reach it can read and write every topic` }];
  return [{ level: 'info', msg: `auth is off (no --auth-secret or --auth-public-key): every client may do everything, so sluice listens on ${host} only; other machines (or, in a container, anything outside it) cannot reach it unless --host 0.0.0.0 says so explicitly` }];
}

/**
 * Which native codecs took: each is checked against the portable one first and skipped
 * when missing or wrong, so a slower server says so instead of being silently slow.
 */
function logNativeCode(logger: Logger): void {
  const natives = installNativeCodecs();
  const what = {
    crc32c: natives.crc32c ? 'native (@node-rs/crc32)' : 'portable',
    lz4: natives.lz4 ? 'native (lz4 addon)' : 'portable',
    utf8: natives.utf8 ? 'native (Buffer utf8Write)' : 'portable (TextEncoder)',
  };
  if (natives.crc32c && natives.lz4 && natives.utf8) logger.info(what, 'native codecs loaded');
  else logger.warn(what, 'a native codec did not load: the portable code is in use (slower)');
}

/**
 * Opens the log the configuration asks for: with --cluster, the cluster log over NATS
 * JetStream (a mirror in the data directory); otherwise the local engine in the data directory.
 */
async function openLog(config: Config, logger: Logger): Promise<Log> {
  if (config.cluster) {
    return ClusterLog.open({
      servers: config.cluster,
      replicas: config.clusterReplicas,
      clusterName: config.clusterName,
      nodeId: config.nodeId,
      dataDir: config.dataDir,
      segmentBytes: config.segmentBytes,
      segmentMs: config.segmentMs,
      flushMs: config.flushMs,
      retentionMs: config.retentionMs,
      retentionBytes: config.retentionBytes,
      largestBatchBytes: Math.max(config.maxFrameBytes, config.batchBytes + config.maxRecordBytes),
      topicsMax: config.maxTopics,
      logger,
    });
  }
  assertNotClusterMirror(config.dataDir);
  return LogManager.open({
    dataDir: config.dataDir,
    flush: config.flush,
    flushMs: config.flushMs,
    segmentBytes: config.segmentBytes,
    segmentMs: config.segmentMs,
    retentionMs: config.retentionMs,
    retentionBytes: config.retentionBytes,
    topicsMax: config.maxTopics,
    timestampAheadMs: config.maxTimestampAheadMs,
    logger,
  });
}

/** The context every front is started with; metrics report the log's partitions. */
export function createFrontContext(config: Config, log: Log, logger: Logger, auth: Auth | null, host = resolveHost(config), threads: ThreadShare = singleThread()): FrontContext {
  const metrics = new Metrics(config.metricsTopicsMax, buildInfo());
  const activity = new Activity(logger, metrics, { topics: () => log.listTopics().length });
  metrics.setPartitionSource(() => {
    const out: { topic: string; partition: number; bytes: number }[] = [];
    for (const t of log.listTopics()) {
      try {
        for (const p of log.describe(t).partitions) out.push({ topic: t, partition: p.partition, bytes: p.bytes });
      } catch {
        // deleted meanwhile
      }
    }
    return out;
  });
  return { config, host, log, auth, metrics, logger, activity, limits: resolveLimits(config), threads };
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const host = resolveHost(config);
  // The verifier is built once, before the log is opened, and shared by every front: a bad
  // key file stops the server here with a ConfigError naming the file, before any I/O.
  const auth: Auth | null = createAuth(config);
  for (const line of authStartupLines(auth, host)) logger[line.level]({ host }, line.msg);
  logNativeCode(logger);
  const log = await openLog(config, logger);
  // With the WebSocket front on several threads the log is served to them (LogHost), and
  // this thread's fronts use it through the host, so that topic admin resolves once every
  // thread knows the topic.
  const logHost = config.threads > 1 ? new LogHost(log, { logger }) : null;
  const threads: ThreadShare = logHost ? { index: 0, count: config.threads, connections: new SharedCounter() } : singleThread();
  const ctx = createFrontContext(config, logHost?.log ?? log, logger, auth, host, threads);
  // The operator's story: topics created and deleted (by any front, or another node), and a
  // one-line summary every --log-summary-ms.
  const unlistenTopics = log.onTopicEvent((e) => {
    if (e.type === 'deleted') return ctx.activity.topicDeleted(e.topic);
    let partitions = 0;
    try {
      partitions = log.partitionCount(e.topic);
    } catch {
      // deleted again meanwhile
    }
    ctx.activity.topicCreated(e.topic, partitions);
  });
  ctx.activity.startSummaries(config.logSummaryMs);
  const starts: StartFront[] = [startGateway, startReplayServer];
  if (config.kafkaPort >= 0) starts.push(startKafka);
  const fronts: Front[] = [];
  let workers: GatewayWorkers | null = null;
  const closeLog = async (): Promise<void> => {
    logHost?.close();
    await log.close();
    await workers?.ended();
  };
  try {
    for (const start of starts) fronts.push(await start(ctx));
    const portOf = (name: string): number => fronts.find((f) => f.name === name)?.port ?? -1;
    // Started last, so closed first: the workers' appends need this thread's log.
    if (logHost) {
      fronts.push((workers = await startGatewayWorkers(ctx, logHost, portOf('gateway'))));
      logger.info({ threads: config.threads }, 'the WebSocket front runs on several threads');
    }
    let closing: Promise<void> | null = null;
    return {
      port: portOf('gateway'),
      replayPort: portOf('replay'),
      kafkaPort: portOf('kafka'),
      log,
      close() {
        closing ??= (async () => {
          for (const f of [...fronts].reverse()) await f.close().catch((err: unknown) => logger.error({ err, front: f.name }, 'front did not close cleanly'));
          ctx.activity.stop();
          unlistenTopics();
          await closeLog();
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const f of [...fronts].reverse()) await f.close().catch(() => {});
    ctx.activity.stop();
    unlistenTopics();
    await closeLog();
    throw err;
  }
}

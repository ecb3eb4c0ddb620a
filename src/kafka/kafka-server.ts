/**
 * The Kafka protocol front (wire contract §8): the same log, spoken as Kafka, on
 * --kafka-port (default 9092; 0 picks a free port; -1 turns it off, and server.ts then does
 * not start it). Every Kafka client — kcat/librdkafka, kafkajs, the Java client — produces to
 * and consumes from the partitions that browsers follow over the WebSocket.
 *
 *   kafka-server.ts   listens, counts connections, shuts down (this file)
 *   connection.ts     framing, headers, the auth gate, answers in request order, sendfile
 *   protocol/         the schema-driven codec: wire primitives, message definitions, headers
 *   handlers/         one file per API family
 *   groups/           the group coordinator (classic protocol)
 *
 * The front uses the log through its interface only (engine/log.ts): the same code serves the
 * local engine and the cluster log. This node is broker 0 and the leader of every partition.
 */
import net from 'node:net';
import type { Front, FrontContext } from '../common/front.ts';
import { awaitClosed } from '../common/grace.ts';
import { listenTcp } from '../common/listen.ts';
import { loadSendfile } from '../common/sendfile.ts';
import { KafkaConnection } from './connection.ts';
import type { Handler } from './session.ts';
import { GroupCoordinator } from './groups/coordinator.ts';
import { apiVersionsHandler } from './handlers/api-versions.ts';
import { fetchHandler } from './handlers/fetch.ts';
import { describeGroupsHandler, findCoordinatorHandler, heartbeatHandler, listGroupsHandler, joinGroupHandler, leaveGroupHandler, offsetCommitHandler, offsetFetchHandler, syncGroupHandler } from './handlers/groups.ts';
import { listOffsetsHandler } from './handlers/list-offsets.ts';
import { metadataHandler } from './handlers/metadata.ts';
import { produceHandler } from './handlers/produce.ts';
import { saslAuthenticateHandler, saslHandshakeHandler } from './handlers/sasl.ts';
import { createTopicsHandler, deleteTopicsHandler } from './handlers/topics.ts';
import * as limits from './limits.ts';
import { KafkaMetrics } from './metrics.ts';
import { ProducerState } from './producer-state.ts';
import { initProducerIdHandler } from './handlers/init-producer-id.ts';
import { API } from './protocol/messages.ts';
import { saslAuthenticate } from './sasl.ts';
import type { Broker, KafkaShared } from './shared.ts';

/** The Kafka front, with what its tests look at. */
export interface KafkaFront extends Front {
  readonly connections: number;
  /** Consumer groups held in memory now. */
  readonly groups: number;
}

/** The host Metadata names: --kafka-advertised-host, else the bound host (127.0.0.1 for a wildcard). */
export function advertisedHost(ctx: FrontContext): string {
  if (ctx.config.kafkaAdvertisedHost) return ctx.config.kafkaAdvertisedHost;
  return ctx.host === '0.0.0.0' || ctx.host === '::' ? '127.0.0.1' : ctx.host;
}

export async function startKafka(ctx: FrontContext): Promise<KafkaFront> {
  loadSendfile(ctx.logger); // says once why the addon did not load, if it did not
  const metrics = new KafkaMetrics(ctx.metrics);
  const coordinator = new GroupCoordinator();
  const shutdown = new AbortController();
  const connections = new Set<KafkaConnection>();
  const broker: { nodeId: number; host: string; port: number } = { nodeId: 0, host: advertisedHost(ctx), port: -1 };
  const handlers = new Map<number, Handler>();
  const shared: KafkaShared = {
    ctx,
    auth: ctx.auth,
    broker: broker as Broker,
    clusterId: 'sluice',
    handlers,
    metrics,
    producers: new ProducerState(),
    async sasl(session, bytes) {
      const result = await saslAuthenticate(ctx.auth!, session.mechanism, bytes);
      if (result.ok) session.authenticate(result.principal);
      else ctx.logger.info({ clientId: session.clientId, remote: session.remote, reason: result.error.reason }, `kafka SASL authentication failed: ${result.error.message}`);
      return result;
    },
    onConnectionClosed(session) {
      if (connections.delete(session as KafkaConnection)) metrics.connections.dec();
    },
    onSendfileStats(stats) {
      metrics.fetchBytes.inc({ path: stats.path === 'native' ? 'sendfile' : 'fallback' }, stats.bytesSent);
    },
  };
  handlers.set(API.ApiVersions, apiVersionsHandler(ctx.auth !== null));
  handlers.set(API.Metadata, metadataHandler(shared));
  handlers.set(API.Produce, produceHandler(shared));
  handlers.set(API.Fetch, fetchHandler(shared, shutdown.signal));
  handlers.set(API.ListOffsets, listOffsetsHandler(shared));
  handlers.set(API.CreateTopics, createTopicsHandler(shared));
  handlers.set(API.DeleteTopics, deleteTopicsHandler(shared));
  handlers.set(API.FindCoordinator, findCoordinatorHandler(shared));
  handlers.set(API.JoinGroup, joinGroupHandler(coordinator));
  handlers.set(API.SyncGroup, syncGroupHandler(coordinator));
  handlers.set(API.Heartbeat, heartbeatHandler(coordinator));
  handlers.set(API.LeaveGroup, leaveGroupHandler(coordinator));
  handlers.set(API.OffsetCommit, offsetCommitHandler(shared, coordinator));
  handlers.set(API.OffsetFetch, offsetFetchHandler(shared));
  handlers.set(API.DescribeGroups, describeGroupsHandler(coordinator));
  handlers.set(API.ListGroups, listGroupsHandler(coordinator));
  handlers.set(API.InitProducerId, initProducerIdHandler(shared));
  if (ctx.auth !== null) {
    handlers.set(API.SaslHandshake, saslHandshakeHandler());
    handlers.set(API.SaslAuthenticate, saslAuthenticateHandler(shared));
  }

  let closing = false;
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    if (closing || connections.size >= limits.connectionsMax) {
      if (!closing) ctx.logger.warn({ connections: connections.size }, `kafka connection refused: ${limits.connectionsMax} are open`);
      socket.destroy();
      return;
    }
    const conn = new KafkaConnection(socket, shared);
    connections.add(conn);
    metrics.connections.inc();
  });
  server.on('error', (err) => ctx.logger.error({ err }, 'kafka server error'));
  // Claimed like every front's port (src/common/listen.ts): in use → PortInUseError naming --kafka-port.
  broker.port = await listenTcp(server, { front: 'Kafka listener', flag: '--kafka-port', host: ctx.host, port: ctx.config.kafkaPort });

  let closed: Promise<void> | null = null;
  return {
    name: 'kafka',
    port: broker.port,
    get connections() {
      return connections.size;
    },
    get groups() {
      return coordinator.size;
    },
    close() {
      closed ??= (async () => {
        closing = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        // Waiting fetches answer now with what they have; waiting joins and syncs answer
        // NOT_COORDINATOR; appends in flight finish and are answered before connections end.
        shutdown.abort();
        coordinator.close();
        for (const c of connections) c.shutdown();
        await awaitClosed(connections, limits.shutdownGraceMs);
        await stopped;
      })();
      return closed;
    },
  };
}

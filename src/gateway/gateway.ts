/**
 * The HTTP/WebSocket front on uWebSockets.js: wiring only. What each piece does lives in
 * its own file: ws-protocol (control messages), frames (DATA/PRODUCE), connection (per
 * socket), ws-handlers (the ops), batcher (inbound), fanout + subscription (outbound),
 * http-api (§5), ../common/metrics.
 *
 * Shutdown, in order: stop accepting (listen socket closed, /readyz 503), let the batcher
 * append what it gathered and wait for every append in flight (acks go out), then close
 * every socket. The engine is closed after this by server.ts. This uWS has no
 * `app.close()`, so the sockets are tracked here.
 */
import type { WebSocket } from 'uWebSockets.js';
import type { LogManager } from '../../engine/index.ts';
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import { Metrics } from '../common/metrics.ts';
import { Batcher } from './batcher.ts';
import { Connection, type SocketData } from './connection.ts';
import { Fanout } from './fanout.ts';
import { registerHttpApi } from './http-api.ts';
import { LivePage } from './static.ts';
import { loadUws } from './uws.ts';
import { WsHandlers } from './ws-handlers.ts';

export interface GatewayContext {
  config: Config;
  host: string;
  logger: Logger;
  log: LogManager;
}

export interface Front {
  readonly port: number;
  /** Stops accepting, finishes what is in flight, closes connections. */
  close(): Promise<void>;
}

/**
 * uWS 20.30 can lose the payload of a message of 16 KiB or more sent while nothing is
 * buffered, but only on a socket subscribed to no topic (fixed upstream in uWebSockets
 * PR #1662). Every socket joins this topic in `open`; nothing is ever published to it.
 */
const LARGE_SEND_WORKAROUND_TOPIC = 'sluice/large-send-workaround';
/** Seconds without traffic before uWS closes a socket; it pings before that. */
const idleTimeoutSeconds = 120;
/**
 * uWS drops a send (status 2) once a socket holds more than this. sluice keeps each socket
 * near backpressureBytesMax (1 MiB) itself, so this only guards against a bug.
 */
const uwsBackpressureBytesMax = 64 * 1024 * 1024;

/** The most uWS buffers of one incoming message before dropping the connection. */
export function frameHardCapBytes(maxFrameBytes: number): number {
  return Math.min(maxFrameBytes * 2, maxFrameBytes + 64 * 1024 * 1024);
}

export async function startGateway(ctx: GatewayContext): Promise<Front> {
  const { config, log, logger } = ctx;
  if (config.authSecret || config.authPublicKey) {
    // Fail closed: serving without checking tokens would open what the operator meant to protect.
    throw new Error('auth (--auth-secret / --auth-public-key) is not implemented in this build of the gateway');
  }
  const uws = loadUws();
  const app = uws.App();
  const sockets = new Set<WebSocket<SocketData>>();
  let ready = true;

  const metrics = new Metrics({
    partitions: () => {
      const out: { topic: string; partition: number; bytes: number }[] = [];
      for (const t of log.listTopics()) {
        try {
          for (const p of log.describe(t).partitions) out.push({ topic: t, partition: p.partition, bytes: p.bytes });
        } catch {
          // deleted meanwhile
        }
      }
      return out;
    },
    lags: () => [...fanout.subscriptions()].map((s) => ({ topic: s.topic, partition: s.partition, lag: s.lag })),
  });
  const fanout = new Fanout(metrics);
  const batcher = new Batcher(log, { lingerMs: config.lingerMs, batchBytes: config.batchBytes, compression: config.compression, autoCreate: config.autoCreate, partitions: config.partitions }, metrics);
  const handlers = new WsHandlers({ config, log, batcher, fanout, metrics, logger });

  app.ws<SocketData>('/v1/ws', {
    compression: uws.DISABLED,
    // uWS drops a connection whose message exceeds maxPayloadLength without a close frame
    // (the peer sees 1006). So uWS takes up to twice the limit and sluice closes with 1009
    // itself; only frames beyond that hard cap are cut off without the close code.
    maxPayloadLength: frameHardCapBytes(config.maxFrameBytes),
    maxBackpressure: uwsBackpressureBytesMax,
    closeOnBackpressureLimit: 0,
    idleTimeout: idleTimeoutSeconds,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      if (!ready) {
        res.writeStatus('503 Service Unavailable').end('{"code":"UNAVAILABLE","message":"shutting down"}');
        return;
      }
      res.upgrade<SocketData>(
        { conn: null },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      ws.subscribe(LARGE_SEND_WORKAROUND_TOPIC);
      ws.getUserData().conn = new Connection(ws, config.publishRate);
      sockets.add(ws);
      metrics.connections.inc();
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData().conn;
      if (!conn) return;
      if (message.byteLength > config.maxFrameBytes) {
        // "A frame over `--max-frame-bytes` (default 1 MiB) closes the connection (close code 1009)".
        ws.end(1009, 'frame over --max-frame-bytes');
        return;
      }
      try {
        if (isBinary) handlers.onBinary(conn, message);
        else handlers.onText(conn, Buffer.from(message).toString('utf8'));
      } catch (err) {
        // Unreachable by design (every handler answers its own errors); keep the socket and the process.
        logger.error({ err }, 'websocket message handler threw');
        conn.sendError('INTERNAL', 'internal error');
      }
    },
    drain: (ws) => {
      const conn = ws.getUserData().conn;
      if (conn) handlers.onDrain(conn);
    },
    close: (ws) => {
      sockets.delete(ws);
      const conn = ws.getUserData().conn;
      if (conn) handlers.onClose(conn);
      metrics.connections.dec();
    },
  });

  // The live page (GET /) and the SDK bundle it loads; no token needed (§6).
  const livePage = new LivePage();
  for (const urlPath of LivePage.paths) {
    app.get(urlPath, (res) => {
      let aborted = false;
      res.onAborted(() => (aborted = true));
      void livePage.asset(urlPath).then((a) => {
        if (aborted || !a) return;
        res.cork(() => {
          res.writeHeader('content-type', a.contentType).writeHeader('cache-control', 'no-cache').end(a.body);
        });
      });
    });
  }

  registerHttpApi(app, {
    config,
    log,
    batcher,
    metrics,
    logger,
    isReady: () => ready,
    deleteTopic: async (topic) => {
      handlers.topicDeleted(topic);
      await log.deleteTopic(topic);
    },
  });

  const listenSocket = await new Promise<unknown>((resolve, reject) => {
    app.listen(ctx.host, config.port, (s) => (s ? resolve(s) : reject(new Error(`cannot listen on ${ctx.host}:${config.port}`))));
  });
  const port = uws.us_socket_local_port(listenSocket as never);
  let closing: Promise<void> | null = null;
  return {
    port,
    close() {
      closing ??= (async () => {
        ready = false;
        uws.us_listen_socket_close(listenSocket as never);
        await batcher.close();
        for (const ws of [...sockets]) {
          try {
            ws.end(1001, 'server shutting down');
          } catch {
            // already closed
          }
        }
      })();
      return closing;
    },
  };
}

/**
 * The HTTP/WebSocket front on uWebSockets.js: wiring only. What each piece does lives in
 * its own file: ws-protocol (control messages), frames (DATA/PRODUCE), connection (per
 * socket), ws-handlers (the ops), batcher (inbound), fanout (delivery), limits,
 * http-api (§5), ../common/metrics.
 *
 * Shutdown, in order: stop accepting (listen socket closed, /readyz 503), let the batcher
 * append what it gathered and wait for every append in flight (acks go out), then close
 * every socket. The engine is closed after this by server.ts. This uWS has no
 * `app.close()`, so the sockets are tracked here.
 */
import type { WebSocket } from 'uWebSockets.js';
import { type ErrorCode, type ErrorReason, asSluiceError } from '../../engine/errors.ts';
import { authenticate, tokenFromRequest } from '../common/auth.ts';
import type { Front, FrontContext } from '../common/front.ts';
import { listenError, listenProblem, portSharing, portToBind, uwsListenOptions } from '../common/listen.ts';
import { Batcher } from './batcher.ts';
import { Connection, type SocketData } from './connection.ts';
import { OriginPolicy } from './cors.ts';
import { Fanout } from './fanout.ts';
import { registerHttpApi } from './http-api.ts';
import { Reply } from './http-reply.ts';
import { closeCodeAnswersUnread, frameHardCapBytes, uwsBackpressureBytesMax } from './limits.ts';
import { LivePage } from './static.ts';
import { loadUws } from './uws.ts';
import { WsHandlers, closeCodeForbidden, closeCodeUnauthorized } from './ws-handlers.ts';

/**
 * uWS 20.30 can lose the payload of a message of 16 KiB or more sent while nothing is
 * buffered, but only on a socket subscribed to no topic (fixed upstream in uWebSockets
 * PR #1662). Every socket joins this topic in `open`; nothing is ever published to it.
 */
const LARGE_SEND_WORKAROUND_TOPIC = 'sluice/large-send-workaround';
/** How many free ports the threads of a front given port 0 try (another program may take one first). */
const freePortAttempts = 5;
/** uWS counts the idle timeout in whole seconds (0 = off); config.ts keeps it 0 or >= 8 s. */
export function idleTimeoutSeconds(idleTimeoutMs: number): number {
  return Math.round(idleTimeoutMs / 1000);
}

export async function startGateway(ctx: FrontContext): Promise<Front> {
  const { config, log, logger, auth, metrics, limits, activity } = ctx;
  const uws = loadUws();
  const app = uws.App();
  const sockets = new Set<WebSocket<SocketData>>();
  /**
   * Connections open or upgrading (a token being verified) over every thread of the front
   * (--threads): what --max-connections bounds. Taken when an upgrade starts; given back
   * when it is refused over HTTP or aborted, or when the socket closes.
   */
  const connections = ctx.threads.connections;
  let ready = true;

  const origins = new OriginPolicy(config.corsOrigins, config.allowedOrigins);
  const fanout = new Fanout(metrics, activity);
  const removeLagSource = metrics.addLagSource(() => fanout.subscriptions());
  const batcher = new Batcher(log, { lingerMs: config.lingerMs, batchBytes: config.batchBytes, compression: config.compression, autoCreate: config.autoCreate, partitions: config.partitions }, metrics);
  const handlers = new WsHandlers({ config, limits, log, batcher, fanout, metrics, logger, auth, activity });
  // A topic deleted through any front (or, in cluster mode, on another node): "its
  // subscribers get `UNKNOWN_TOPIC`", and publishes waiting for it too.
  // A topic created: the `sub`s waiting for it subscribe (from offset 0).
  const unlistenTopics = log.onTopicEvent((e) => {
    if (e.type === 'deleted') handlers.topicDeleted(e.topic);
    else handlers.topicCreated(e.topic);
  });

  app.ws<SocketData>('/v1/ws', {
    compression: uws.DISABLED,
    // uWS drops a connection whose message exceeds maxPayloadLength without a close frame
    // (the peer sees 1006). So uWS takes up to twice the limit and sluice closes with 1009
    // itself; only frames beyond that hard cap are cut off without the close code.
    maxPayloadLength: frameHardCapBytes(limits.frameBytesMax),
    maxBackpressure: uwsBackpressureBytesMax,
    closeOnBackpressureLimit: 0,
    idleTimeout: idleTimeoutSeconds(limits.idleTimeoutMs),
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      // uWS's HttpRequest is valid only during this call: read everything before any await.
      const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
      /** An upgrade refused with an HTTP status and a {code,message} body; counted and logged (a token or an origin: with its reason). */
      const refuse = (status: string, code: ErrorCode, message: string, reason: ErrorReason = code): void => {
        if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN') activity.authRefused('ws', code, reason, message, { remote, upgrade: true });
        else activity.clientError('ws', code, message, { remote, upgrade: true });
        res.cork(() => {
          res.writeStatus(status).writeHeader('content-type', 'application/json').end(JSON.stringify({ code, message }), true);
        });
      };
      if (!ready) return refuse('503 Service Unavailable', 'UNAVAILABLE', 'shutting down');
      if (!connections.tryIncrement(limits.connectionsMax)) {
        return refuse('503 Service Unavailable', 'UNAVAILABLE', `${limits.connectionsMax} connections are open, the most this server takes (--max-connections)`);
      }
      /** Every refusal from here on gives the count taken above back. */
      const refuseCounted: typeof refuse = (...args) => {
        connections.decrement();
        refuse(...args);
      };
      const origin = req.getHeader('origin');
      if (!origins.upgradeAllowed(origin, req.getHeader('host'))) {
        // Before the token: a page from an origin not listed gets nowhere, whatever it holds.
        return refuseCounted('403 Forbidden', 'FORBIDDEN', `origin ${origin} is not in --allowed-origins`, 'ORIGIN_NOT_ALLOWED');
      }
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      // A browser never sees the status of a refused upgrade (its WebSocket just fails), so a
      // refusal of a request with an Origin (which every browser sends) is told over the
      // socket instead: upgrade, send the error, close with 4001/4003 (see `open`).
      const browser = origin !== '';
      const refuseAuth = (code: 'UNAUTHORIZED' | 'FORBIDDEN', message: string, reason: ErrorReason = code): void => {
        if (!browser) {
          return refuseCounted(code === 'UNAUTHORIZED' ? '401 Unauthorized' : '403 Forbidden', code, message, reason);
        }
        activity.authRefused('ws', code, reason, message, { remote, upgrade: true });
        res.cork(() => {
          res.upgrade<SocketData>({ conn: null, principal: null, remote, refused: { code, message } }, key, protocol, extensions, context);
        });
      };
      if (auth === null) {
        // `open` runs inside upgrade(): the count taken above is the socket's from here on.
        res.upgrade<SocketData>({ conn: null, principal: null, remote }, key, protocol, extensions, context);
        return;
      }
      let token: string | null;
      try {
        token = tokenFromRequest({ query: req.getQuery(), authorization: req.getHeader('authorization') });
      } catch (err) {
        const e = asSluiceError(err);
        return refuseAuth('UNAUTHORIZED', e.message, e.reason);
      }
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      authenticate(auth, token).then(
        (principal) => {
          if (aborted) return connections.decrement();
          if (!ready) return refuseCounted('503 Service Unavailable', 'UNAVAILABLE', 'shutting down');
          res.cork(() => {
            res.upgrade<SocketData>({ conn: null, principal, remote }, key, protocol, extensions, context);
          });
        },
        (err) => {
          if (aborted) return connections.decrement();
          // "missing/bad → HTTP 401 with {code,message} and no upgrade" (browsers: see refuseAuth)
          const e = asSluiceError(err);
          refuseAuth('UNAUTHORIZED', e.message, e.reason);
        },
      );
    },
    open: (ws) => {
      const data = ws.getUserData();
      if (data.refused) {
        // Counted against --max-connections until the close is done, never as a connection.
        sockets.add(ws);
        ws.send(JSON.stringify({ op: 'error', ...data.refused }), false, false);
        ws.end(data.refused.code === 'UNAUTHORIZED' ? closeCodeUnauthorized : closeCodeForbidden, data.refused.code);
        return;
      }
      ws.subscribe(LARGE_SEND_WORKAROUND_TOPIC);
      const conn = new Connection(ws, limits.publishRecordsPerSecond, activity.connectionId(), data.remote, (bufferedBytes) =>
        logger.warn({ bufferedBytes, closeCode: closeCodeAnswersUnread, remote: data.remote }, 'closed a WebSocket whose client does not read its answers'),
      );
      data.conn = conn;
      sockets.add(ws);
      metrics.connections.inc();
      activity.connectionOpened('ws', { conn: conn.id, remote: conn.remote, ...(data.principal?.subject ? { subject: data.principal.subject } : {}) });
      handlers.onOpen(conn, data.principal);
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData().conn;
      if (!conn) return;
      if (message.byteLength > limits.frameBytesMax) {
        // "A frame over `--max-frame-bytes` (default 1 MiB) closes the connection (close code 1009)".
        ws.end(1009, 'frame over --max-frame-bytes');
        return;
      }
      try {
        if (isBinary) handlers.onBinary(conn, message);
        else handlers.onTextFrame(conn, new Uint8Array(message));
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
    close: (ws, code, message) => {
      sockets.delete(ws);
      connections.decrement();
      const conn = ws.getUserData().conn;
      if (!conn) return; // a refused browser upgrade (see `open`)
      const subscriptions = conn.subs.size;
      handlers.onClose(conn);
      metrics.connections.dec();
      activity.connectionClosed('ws', { conn: conn.id, remote: conn.remote, code, reason: Buffer.from(message).toString(), subscriptions, lifetimeMs: Date.now() - conn.openedAt });
    },
  });

  // The live page (GET /) and the SDK bundle it loads, from the build; no token needed (§6).
  const livePage = new LivePage();
  for (const urlPath of LivePage.paths) {
    app.get(urlPath, (res, req) => {
      const a = livePage.asset(urlPath);
      if (!a) return;
      // Through Reply: written as the client reads (see http-reply.ts), never piled up in uWS.
      // A page elsewhere may load the SDK bundle as a module script: that needs CORS.
      new Reply(res, origins.allowOrigin(req.getHeader('origin'))).send(200, a.body, a.contentType, false, { 'cache-control': 'no-cache' });
    });
  }

  registerHttpApi(app, { config, limits, auth, log, batcher, metrics, logger, origins, activity, isReady: () => ready, thread: ctx.threads.index });

  // The port is this front's alone, or its threads' (src/common/listen.ts decides): with one
  // thread uWS binds it exclusively; with several, each thread's app binds it with
  // SO_REUSEPORT, after the first thread made sure no other socket holds it (a second
  // sluice is refused) or, for port 0, took a free one. The others bind what it got.
  const sharing = portSharing(ctx.threads.count);
  const target = { front: 'gateway', flag: '--port', host: ctx.host, port: config.port };
  // uWS 20.30 takes (host, port, options, cb); its typings only declare (port, options, cb).
  const listen = app.listen as unknown as (host: string, port: number, options: number, cb: (s: unknown) => void) => void;
  const listenOn = (p: number): Promise<unknown> =>
    new Promise((resolve) => {
      listen.call(app, ctx.host, p, uwsListenOptions(sharing), (s) => resolve(s || null));
    });
  const first = ctx.threads.index === 0;
  let listenSocket: unknown = null;
  // A free port may be taken by another program before the bind: then try another.
  const attempts = first && sharing === 'own-threads' && config.port === 0 ? freePortAttempts : 1;
  let tried = config.port;
  for (let i = 0; i < attempts && !listenSocket; i++) {
    tried = first ? await portToBind(target, sharing) : config.port;
    listenSocket = await listenOn(tried);
  }
  if (!listenSocket) throw listenError({ ...target, port: tried }, await listenProblem(ctx.host, tried));
  const port = uws.us_socket_local_port(listenSocket as never);
  let closing: Promise<void> | null = null;
  return {
    name: 'gateway',
    port,
    close() {
      closing ??= (async () => {
        ready = false;
        uws.us_listen_socket_close(listenSocket as never);
        await batcher.close();
        unlistenTopics();
        removeLagSource();
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

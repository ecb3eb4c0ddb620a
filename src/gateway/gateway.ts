/**
 * The HTTP/WebSocket front on uWebSockets.js. This first cut answers the health endpoints;
 * the WebSocket protocol and the HTTP API build on it.
 */
import type { LogManager } from '../../engine/index.ts';
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import { loadUws } from './uws.ts';

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

export async function startGateway(ctx: GatewayContext): Promise<Front> {
  const uws = loadUws();
  const app = uws.App();
  let ready = true;
  app.get('/healthz', (res) => {
    res.writeHeader('content-type', 'application/json').end('{"ok":true}');
  });
  app.get('/readyz', (res) => {
    if (ready) res.writeHeader('content-type', 'application/json').end('{"ok":true}');
    else res.writeStatus('503 Service Unavailable').writeHeader('content-type', 'application/json').end('{"ok":false}');
  });
  const listenSocket = await new Promise<unknown>((resolve, reject) => {
    app.listen(ctx.host, ctx.config.port, (s) => (s ? resolve(s) : reject(new Error(`cannot listen on ${ctx.host}:${ctx.config.port}`))));
  });
  const port = uws.us_socket_local_port(listenSocket as never);
  return {
    port,
    async close() {
      ready = false;
      uws.us_listen_socket_close(listenSocket as never);
    },
  };
}

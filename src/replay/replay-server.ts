/**
 * The TCP bulk replay front (wire contract §4). This first cut binds the port and answers
 * every request line with UNAVAILABLE; the sendfile transfer builds on it.
 */
import net from 'node:net';
import type { LogManager } from '../../engine/index.ts';
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import type { Front } from '../gateway/gateway.ts';

export interface ReplayContext {
  config: Config;
  host: string;
  logger: Logger;
  log: LogManager;
}

export async function startReplayServer(ctx: ReplayContext): Promise<Front> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.once('data', () => {
      const header = Buffer.from(JSON.stringify({ ok: false, code: 'UNAVAILABLE', message: 'replay is not available yet' }));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(header.length);
      socket.end(Buffer.concat([len, header]));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(ctx.config.replayPort, ctx.host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

/**
 * The TCP bulk replay front (wire contract §4): a client sends one JSON request line and
 * gets the stored batches of one partition back as chunks, straight from the segment files
 * with sendfile(2). This file listens and shuts down; replay-connection.ts reads request
 * lines, replay-stream.ts runs the chunk loop.
 *
 *   request   one line of JSON ending in `\n`, at most requestLineBytesMax bytes
 *   chunk     u32 headerLength | header JSON | body
 *             {"ok":true,"bytes":N,"first":baseOffsetOfFirstBatch} + N bytes of whole batches
 *   end       {"ok":true,"end":true,"bytes":0,"next":offset,"hw":offset}
 *   error     {"ok":false,"code","message"}
 *
 * Three files, one concern each: this one listens, counts connections and shuts down
 * (new connections refused, replays ended at their next chunk boundary with UNAVAILABLE,
 * connections still open after limits.shutdownGraceMs destroyed); replay-connection.ts
 * frames request lines, pipelines them and checks tokens; replay-stream.ts runs the chunk
 * loop with sendfile(2) and its retention safety.
 */
import net from 'node:net';
import type { Front, FrontContext } from '../common/front.ts';
import { awaitClosed } from '../common/grace.ts';
import { listenTcp } from '../common/listen.ts';
import { loadSendfile } from '../common/sendfile.ts';
import * as limits from './limits.ts';
import { ReplayConnection, type Shared } from './replay-connection.ts';

/** The replay front, with what its tests and benchmarks look at. */
export interface ReplayFront extends Front {
  /** Replays running now (follow replays included). */
  readonly inFlight: number;
  readonly connections: number;
  /** Whether chunks go out through the sendfile addon (false: the read + write fallback). */
  readonly sendfile: boolean;
}

export async function startReplayServer(ctx: FrontContext): Promise<ReplayFront> {
  // loadSendfile tells the logger once why the addon did not load.
  const native = process.env.SLUICE_SENDFILE !== 'off' && loadSendfile(ctx.logger) !== null;
  if (!native) ctx.logger.warn({ SLUICE_SENDFILE: process.env.SLUICE_SENDFILE }, 'replay sends through the read + write fallback, not sendfile(2)');
  const shared: Shared = {
    ctx,
    logger: ctx.logger,
    auth: ctx.auth,
    onStats: (stats) => ctx.metrics.replayBytes.inc({ path: stats.path === 'native' ? 'sendfile' : 'fallback' }, stats.bytesSent),
    inFlight: 0,
    closing: false,
  };
  const connections = new Set<ReplayConnection>();
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    if (shared.closing) {
      socket.destroy();
      return;
    }
    const conn = new ReplayConnection(socket, shared);
    connections.add(conn);
    ctx.metrics.replayConnections.inc();
    const id = ctx.activity.connectionId();
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const openedAt = Date.now();
    ctx.activity.connectionOpened('replay', { conn: id, remote });
    socket.once('close', (hadError) => {
      connections.delete(conn);
      ctx.metrics.replayConnections.dec();
      ctx.activity.connectionClosed('replay', { conn: id, remote, hadError, bytesWritten: socket.bytesWritten, lifetimeMs: Date.now() - openedAt });
    });
  });
  server.on('error', (err) => ctx.logger.error({ err }, 'replay server error'));
  const port = await listenTcp(server, { front: 'replay server', flag: '--replay-port', host: ctx.host, port: ctx.config.replayPort });
  let closing: Promise<void> | null = null;
  return {
    name: 'replay',
    port,
    sendfile: native,
    get inFlight() {
      return shared.inFlight;
    },
    get connections() {
      return connections.size;
    },
    close() {
      closing ??= (async () => {
        shared.closing = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of connections) c.shutdown();
        // Replays end at their next chunk boundary with UNAVAILABLE; a client that stopped
        // reading would hold us forever, so the grace period is bounded.
        await awaitClosed(connections, limits.shutdownGraceMs);
        await stopped;
      })();
      return closing;
    },
  };
}


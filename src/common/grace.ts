/**
 * The end of a TCP front's shutdown: connections have been told to finish (a replay at its
 * next chunk boundary, a Kafka request with its answer); wait until they have closed, but a
 * client that stopped reading would hold the server forever, so after `graceMs` whatever is
 * still open is destroyed.
 */
import type net from 'node:net';

export interface GracefulConnection {
  readonly socket: net.Socket;
  destroy(): void;
}

export function awaitClosed(connections: Set<GracefulConnection>, graceMs: number): Promise<void> {
  if (connections.size === 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      for (const c of connections) c.destroy();
      resolve();
    }, graceMs);
    const check = (): void => {
      if (connections.size > 0) return;
      clearTimeout(timer);
      resolve();
    };
    // After the front's own 'close' handler has taken the connection out of the set.
    for (const c of connections) c.socket.once('close', () => setImmediate(check));
  });
}

/**
 * The naive Node baseline: a `ws` server that broadcasts every binary message to every socket
 * that said "sub", with a loop of sends, and answers each publish with a one-byte "a" (an
 * ack, as sluice answers each publish). No storage, no backpressure handling.
 * Prints {"port":P} on stdout once listening on 127.0.0.1.
 */
import { WebSocketServer, type WebSocket } from 'ws';

const subs = new Set<WebSocket>();
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1 << 20 });
wss.on('connection', (ws) => {
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (!binary) {
      if (data.toString() === 'sub') {
        subs.add(ws);
        ws.send('subbed');
      }
      return;
    }
    for (const s of subs) s.send(data, { binary: true });
    ws.send('a');
  });
  ws.on('close', () => subs.delete(ws));
  ws.on('error', () => subs.delete(ws));
});
wss.on('listening', () => process.stdout.write(`${JSON.stringify({ port: (wss.address() as { port: number }).port })}\n`));

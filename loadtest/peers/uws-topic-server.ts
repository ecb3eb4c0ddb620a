/**
 * The ceiling for fan-out on this runtime: uWebSockets.js's own topic pub/sub, no storage.
 * A socket that sends "sub" joins topic "t"; a binary message is `app.publish`ed to "t" (one
 * copy per socket, written by uWS in C++) and answered with a one-byte "a". maxBackpressure is
 * high so that publish skips nobody in these runs (it drops silently above it).
 * Prints {"port":P} on stdout once listening on 127.0.0.1.
 */
import { loadUws } from '../../src/gateway/uws.ts';

const uws = loadUws();
const app = uws.App();
app.ws('/*', {
  compression: uws.DISABLED,
  maxPayloadLength: 1 << 20,
  maxBackpressure: 256 * 1024 * 1024,
  idleTimeout: 0,
  message: (ws: any, msg: ArrayBuffer, binary: boolean) => {
    if (!binary) {
      if (Buffer.from(msg).toString() === 'sub') {
        ws.subscribe('t');
        ws.send('subbed');
      }
      return;
    }
    app.publish('t', msg, true);
    ws.send('a');
  },
});
app.listen('127.0.0.1', 0, (token: unknown) => {
  if (!token) throw new Error('uWS could not listen');
  process.stdout.write(`${JSON.stringify({ port: uws.us_socket_local_port(token) })}\n`);
});
